//! MQTT delivery: publish each event, QoS 1, on `alarms/{site}/{device}`
//! through the ingest broker, on a connection of its own (client id
//! `{mqtt.client_id}-alarms`), up to `window` publishes awaiting their
//! PUBACK at once. One connection keeps order, so the drain may keep many
//! events of one alarm in flight. An event leaves its queue on its PUBACK;
//! when the connection drops, every publish in flight is reported failed
//! and sent again (the receivers drop repeats by event id).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::delivery::Failure;
use crate::error::ConfigError;
use crate::ingest::MqttConfig;

/// `[forward.mqtt]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttForwardConfig {
    /// Publish alarm events on `alarms/{site}/{device}`.
    pub enabled: bool,
    /// Longest wait for a PUBACK, ms.
    pub ack_timeout_ms: u64,
    /// Publishes awaiting their PUBACK at once.
    pub window: u16,
}

impl Default for MqttForwardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ack_timeout_ms: 5_000,
            window: 256,
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
        if self.window == 0 {
            return Err(ConfigError::new(
                "forward.mqtt.window",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// One publish for the connection task.
#[derive(Debug)]
struct Publication {
    topic: Box<str>,
    payload: Bytes,
    done: oneshot::Sender<Result<(), Failure>>,
}

/// The MQTT destination.
#[derive(Debug, Clone)]
pub struct MqttDest {
    tx: mpsc::Sender<Publication>,
    ack_timeout: Duration,
}

impl MqttDest {
    /// Connects (in the background; publishes wait until connected).
    pub fn new(
        mqtt: &MqttConfig,
        cfg: &MqttForwardConfig,
        client_id: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, ConfigError> {
        let mut opts = mqtt.options(&format!("{client_id}-alarms"))?;
        opts.set_clean_session(true);
        opts.set_manual_acks(false);
        opts.set_inflight(cfg.window);
        let window = usize::from(cfg.window);
        let (client, eventloop) = AsyncClient::new(opts, window + 16);
        let eventloop = crate::ingest::no_delay(eventloop);
        let (tx, rx) = mpsc::channel(window);
        tokio::spawn(connection(
            client,
            eventloop,
            rx,
            window,
            mqtt.backoff,
            shutdown,
        ));
        Ok(Self {
            tx,
            ack_timeout: Duration::from_millis(cfg.ack_timeout_ms),
        })
    }
}

/// Owns the connection: publishes what comes in while fewer than `window`
/// await their PUBACK, and matches PUBACKs to publishes. rumqttc numbers
/// publishes in the order it sends them, so the n-th `Outgoing::Publish`
/// is the n-th publish handed to it; on a connection error every publish
/// not acknowledged is reported failed (the clean session forgets them).
async fn connection(
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    mut rx: mpsc::Receiver<Publication>,
    window: usize,
    backoff: crate::backoff::BackoffConfig,
    shutdown: CancellationToken,
) {
    let mut b = crate::backoff::Backoff::new(backoff);
    let mut awaiting: VecDeque<oneshot::Sender<Result<(), Failure>>> = VecDeque::new();
    let mut flying: HashMap<u16, oneshot::Sender<Result<(), Failure>>> = HashMap::new();
    let mut connected = false;
    loop {
        let room = connected && awaiting.len() + flying.len() < window;
        tokio::select! {
            () = shutdown.cancelled() => return,
            p = rx.recv(), if room => {
                let Some(p) = p else { return };
                if p.done.is_closed() {
                    continue; // the sender gave up (timeout): not worth sending
                }
                match client.try_publish(&*p.topic, QoS::AtLeastOnce, false, p.payload.to_vec()) {
                    Ok(()) => awaiting.push_back(p.done),
                    Err(e) => {
                        let _ = p.done.send(Err(Failure::Retry(format!("mqtt: {e}"))));
                    }
                }
            }
            ev = eventloop.poll() => match ev {
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if let Some(done) = awaiting.pop_front() {
                        flying.insert(pkid, done);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(a))) => {
                    if let Some(done) = flying.remove(&a.pkid) {
                        let _ = done.send(Ok(()));
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    b.reset();
                }
                Ok(_) => {}
                Err(e) => {
                    connected = false;
                    let why = format!("mqtt: {e}");
                    for done in awaiting.drain(..).chain(flying.drain().map(|(_, d)| d)) {
                        let _ = done.send(Err(Failure::Retry(why.clone())));
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(b.next_delay()) => {}
                    }
                }
            }
        }
    }
}

impl crate::drain::Destination for MqttDest {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn deliver(
        &self,
        items: Vec<Arc<crate::drain::Item>>,
    ) -> impl std::future::Future<Output = Result<(), Failure>> + Send + 'static {
        let this = self.clone();
        async move {
            for item in items {
                let Some(topic) = item
                    .alarm
                    .as_ref()
                    .map(|m| m.topic.clone())
                    .filter(|t| !t.is_empty())
                else {
                    return Err(Failure::Rejected("not an alarm event".into()));
                };
                let (done, answer) = oneshot::channel();
                let p = Publication {
                    topic,
                    payload: item.data.clone(),
                    done,
                };
                let sent = async {
                    this.tx
                        .send(p)
                        .await
                        .map_err(|_| Failure::Retry("mqtt: connection task ended".into()))?;
                    answer
                        .await
                        .map_err(|_| Failure::Retry("mqtt: connection task ended".into()))?
                };
                tokio::time::timeout(this.ack_timeout, sent)
                    .await
                    .map_err(|_| Failure::Retry("mqtt: no PUBACK in time".into()))??;
            }
            Ok(())
        }
    }
}
