//! Alarm forwarding to the "六个自动" monitor, at least once: one durable
//! queue and one drain (`drain`) per destination (HTTP and/or MQTT), so a
//! dead destination does not hold up the other. An entry leaves its queue
//! only when the destination confirmed it (HTTP 2xx, MQTT PUBACK). The
//! event id is stable (see `judge`), so a redelivery after a crash or a
//! lost answer is harmless.
//!
//! Delivery is pipelined: up to `forward.http.concurrency` requests at
//! once, up to `forward.mqtt.window` publishes awaiting their PUBACK, in
//! order per (site, device, rule) and most urgent first after a backlog
//! (`drain::Window`). Alarms judged early go out before their commit
//! (the fast lane).
//!
//! HTTP answers: 2xx accepted (a duplicate event id is 2xx too);
//! 400/409/413/422 rejected for good → dead-letter table (counted, logged,
//! kept on disk, never retried in a loop); 401/403 misconfiguration →
//! retried with backoff, and `forward_unauthorized{dest}` = 1 plus an error
//! log; 408/429/5xx, timeouts and connection errors → retried with backoff.

pub mod http;
pub mod mqtt;

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffConfig;
use crate::error::ConfigError;
use crate::store::Queue;

/// Alarm events a forwarder holds in memory: how far past the head of a
/// backlog it looks for the most urgent ones.
pub const LOOKAHEAD: usize = 4_096;

/// `[forward]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// `POST {url}/api/v1/alarms` with a bearer token.
    pub http: Option<http::HttpConfig>,
    /// Publish on `alarms/{site}/{device}` through the ingest broker.
    pub mqtt: Option<mqtt::MqttForwardConfig>,
    /// Retry backoff of both.
    pub backoff: BackoffConfig,
}

impl ForwardConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(h) = &self.http {
            h.validate()?;
        }
        if let Some(m) = &self.mqtt {
            m.validate()?;
        }
        self.backoff.validate("forward.backoff")
    }

    /// The durable queues the configured destinations need.
    pub fn queues(&self) -> Vec<Queue> {
        let mut q = Vec::new();
        if self.http.is_some() {
            q.push(Queue::AlarmsHttp);
        }
        if self.mqtt.as_ref().is_some_and(|m| m.enabled) {
            q.push(Queue::AlarmsMqtt);
        }
        q
    }
}
