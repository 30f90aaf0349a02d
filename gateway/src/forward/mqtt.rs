//! MQTT delivery: publish each event, QoS 1, on `alarms/{site}/{device}`
//! through the ingest broker, on a connection of its own (client id
//! `{mqtt.client_id}-alarms`); an event leaves the outbox on its PUBACK.

use std::time::Duration;

use anquan_protocol::{AlarmEvent, Topic};
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;
use crate::delivery::Failure;
use crate::ingest::MqttConfig;

/// `[forward.mqtt]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttForwardConfig {
    /// Publish alarm events on `alarms/{site}/{device}`.
    pub enabled: bool,
    /// Longest wait for a PUBACK, ms.
    pub ack_timeout_ms: u64,
}

impl Default for MqttForwardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ack_timeout_ms: 5_000,
        }
    }
}

impl MqttForwardConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ack_timeout_ms == 0 {
            return Err(ConfigError::new(
                "forward.mqtt.ack_timeout_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Ev {
    Sent(u16),
    Acked(u16),
    Down(String),
}

/// The MQTT destination.
#[derive(Debug)]
pub struct MqttDest {
    client: AsyncClient,
    events: mpsc::Receiver<Ev>,
    ack_timeout: Duration,
}

impl MqttDest {
    /// Connects (in the background; `send` fails until connected).
    pub fn new(
        mqtt: &MqttConfig,
        cfg: &MqttForwardConfig,
        client_id: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, ConfigError> {
        let mut opts = mqtt.options(&format!("{client_id}-alarms"))?;
        opts.set_clean_session(true);
        opts.set_manual_acks(false);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, events) = mpsc::channel(256);
        let backoff = mqtt.backoff;
        tokio::spawn(async move {
            let mut b = crate::backoff::Backoff::new(backoff);
            loop {
                let ev = tokio::select! {
                    () = shutdown.cancelled() => return,
                    ev = eventloop.poll() => ev,
                };
                let msg = match ev {
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Some(Ev::Sent(pkid)),
                    Ok(Event::Incoming(Packet::PubAck(a))) => Some(Ev::Acked(a.pkid)),
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        b.reset();
                        None
                    }
                    Ok(_) => None,
                    Err(e) => {
                        let _ = tx.try_send(Ev::Down(e.to_string()));
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(b.next_delay()) => {}
                        }
                        None
                    }
                };
                if let Some(m) = msg
                    && tx.send(m).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(Self {
            client,
            events,
            ack_timeout: Duration::from_millis(cfg.ack_timeout_ms),
        })
    }
}

impl super::Destination for MqttDest {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    async fn send(&mut self, event_json: &[u8]) -> Result<(), Failure> {
        let event = AlarmEvent::decode(event_json)
            .map_err(|e| Failure::Rejected(format!("not an alarm event: {e}")))?;
        let topic = Topic::alarm_topic(&event.site, &event.device);
        // Forget what earlier, timed-out attempts left behind.
        while self.events.try_recv().is_ok() {}
        self.client
            .try_publish(topic.as_str(), QoS::AtLeastOnce, false, event_json.to_vec())
            .map_err(|e| Failure::Retry(format!("mqtt: {e}")))?;
        let wait = async {
            let mut pkid = None;
            while let Some(ev) = self.events.recv().await {
                match ev {
                    Ev::Sent(p) if pkid.is_none() => pkid = Some(p),
                    Ev::Acked(p) if Some(p) == pkid => return Ok(()),
                    Ev::Down(e) => return Err(Failure::Retry(format!("mqtt: {e}"))),
                    _ => {}
                }
            }
            Err(Failure::Retry("mqtt: connection task ended".into()))
        };
        tokio::time::timeout(self.ack_timeout, wait)
            .await
            .map_err(|_| Failure::Retry("mqtt: no PUBACK in time".into()))?
    }
}
