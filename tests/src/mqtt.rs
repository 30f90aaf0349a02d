//! A small MQTT publisher for tests (rumqttc, QoS 1, its own connection
//! thread) that counts the broker's PUBACKs, so a test knows the broker
//! holds every message before it judges the gateway.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

/// A connected publisher.
pub struct Publisher {
    client: Client,
    acked: Arc<AtomicU64>,
    sent: u64,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("sent", &self.sent)
            .finish()
    }
}

impl Publisher {
    /// Connects to 127.0.0.1:`port` as `client_id`.
    pub fn connect(port: u16, client_id: &str) -> Self {
        Self::connect_with(port, client_id, 1_000, true)
    }

    /// Connects, holding up to `queue` messages while the broker is away
    /// (then `publish` blocks), like a device's store-and-forward buffer.
    /// The session is persistent: rumqttc resends the messages in flight
    /// when the link dropped only if the broker still has the session
    /// (with a clean session it drops them).
    pub fn connect_with_queue(port: u16, client_id: &str, queue: usize) -> Self {
        Self::connect_with(port, client_id, queue, false)
    }

    fn connect_with(port: u16, client_id: &str, queue: usize, clean: bool) -> Self {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_inflight(100);
        o.set_clean_session(clean);
        let (client, mut conn) = Client::new(o, queue);
        let acked = Arc::new(AtomicU64::new(0));
        let a = acked.clone();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, Ordering::Release);
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        Self {
            client,
            acked,
            sent: 0,
        }
    }

    /// Publishes QoS 1.
    pub fn publish(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .unwrap_or_else(|e| panic!("publish: {e}"));
        self.sent += 1;
    }

    /// Publishes retained, QoS 1.
    pub fn publish_retained(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload.as_bytes().to_vec())
            .unwrap_or_else(|e| panic!("publish: {e}"));
        self.sent += 1;
    }

    /// Waits until the broker acknowledged everything published.
    pub fn wait_acked(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.acked.load(Ordering::Acquire) < self.sent {
            assert!(
                Instant::now() < deadline,
                "broker acknowledged {} of {}",
                self.acked.load(Ordering::Acquire),
                self.sent
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Messages the broker acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}

/// A gas frame of the wire contract.
pub fn gas_frame(device: &str, seq: u32, ts_ms: u64, lel: f32) -> String {
    format!(
        r#"{{"device":"{device}","kind":"gas","seq":{seq},"ts_ms":{ts_ms},"readings":{{"lel_pct":{lel},"co_ppm":1.0}},"faults":[]}}"#
    )
}

/// `sites/{site}/devices/{device}/telemetry`.
pub fn telemetry_topic(site: &str, device: &str) -> String {
    format!("sites/{site}/devices/{device}/telemetry")
}

/// Unix ms now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
