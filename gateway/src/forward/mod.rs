//! Alarm forwarding to the "六个自动" monitor, at least once, from the
//! durable outbox: one queue and one task per destination (HTTP and/or
//! MQTT), so a dead destination does not hold up the other. Entries are
//! sent in order; an entry leaves the outbox only when the destination
//! confirmed it (HTTP 2xx, MQTT PUBACK). The event id is stable (see
//! `pipeline`), so a redelivery after a crash or a lost answer is harmless.
//!
//! HTTP answers: 2xx accepted (a duplicate event id is 2xx too); 400/413/422
//! rejected for good → dead-letter table (counted, logged, kept on disk, never
//! retried in a loop); 401/403 misconfiguration → retried with backoff, and
//! `forward_unauthorized{dest}` = 1 plus an error log; 408/429/5xx,
//! timeouts and connection errors → retried with backoff.

pub mod http;
pub mod mqtt;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, BackoffConfig};
use crate::clock::wall_ms;
use crate::config::ConfigError;
use crate::delivery::Failure;
use crate::metrics::Metrics;
use crate::outbox::{Acker, Outbox, Queue};

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

    /// The outbox queues the configured destinations need.
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

/// A destination: delivers one alarm event (its JSON).
pub trait Destination: Send {
    /// The metrics label.
    fn name(&self) -> &'static str;
    /// Delivers one event; `Ok` once the far end confirmed it.
    fn send(
        &mut self,
        event_json: &[u8],
    ) -> impl std::future::Future<Output = Result<(), Failure>> + Send;
}

/// Delivers the entries of `queue` to `dest` until `shutdown` (then keeps
/// going for at most `final_flush` while entries remain).
#[allow(clippy::too_many_arguments)]
pub async fn run<D: Destination>(
    mut dest: D,
    queue: Queue,
    backoff: BackoffConfig,
    outbox: Arc<Outbox>,
    notify: Arc<Notify>,
    metrics: Metrics,
    shutdown: CancellationToken,
    final_flush: Duration,
) {
    let name = dest.name();
    let mut backoff = Backoff::new(backoff);
    let mut acker = Acker::new(queue, outbox.clone());
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        acker.kick();
        if shutdown.is_cancelled() && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + final_flush);
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        if acker.waiting() == 0 {
            if deadline.is_some() {
                break;
            }
            tokio::select! {
                () = notify.notified() => {}
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let ob = outbox.clone();
        let cursor = acker.cursor();
        let entries = match tokio::task::spawn_blocking(move || ob.peek_after(queue, cursor, 64))
            .await
        {
            Ok(Ok(e)) => e,
            other => {
                tracing::error!(dest = name, error = ?other.err(), "forward: cannot read the outbox");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        if entries.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        for e in entries {
            let sent = if let Some(d) = deadline {
                match tokio::time::timeout_at(d, dest.send(&e.data)).await {
                    Ok(r) => r,
                    Err(_) => break,
                }
            } else {
                dest.send(&e.data).await
            };
            match sent {
                Ok(()) => {
                    metrics.forward_sent.with_label_values(&[name]).inc();
                    metrics
                        .forward_seconds
                        .with_label_values(&[name])
                        .observe(wall_ms().saturating_sub(e.enqueued_ms) as f64 / 1000.0);
                    metrics
                        .forward_unauthorized
                        .with_label_values(&[name])
                        .set(0);
                    acker.delivered(e.key, 1);
                    backoff.reset();
                }
                Err(Failure::Rejected(why)) => {
                    metrics.forward_dead_letter.with_label_values(&[name]).inc();
                    metrics
                        .forward_errors
                        .with_label_values(&[name, "rejected"])
                        .inc();
                    tracing::error!(dest = name, reason = %why, event = %String::from_utf8_lossy(&e.data), "forward: alarm event rejected for good; kept in the dead-letter table");
                    let ob = outbox.clone();
                    let key = e.key;
                    let _ =
                        tokio::task::spawn_blocking(move || ob.dead_letter(queue, key, &why)).await;
                }
                Err(f) => {
                    let (kind, why) = match f {
                        Failure::Unauthorized(w) => {
                            metrics
                                .forward_unauthorized
                                .with_label_values(&[name])
                                .set(1);
                            ("unauthorized", w)
                        }
                        Failure::Retry(w) | Failure::Rejected(w) => ("unavailable", w),
                    };
                    metrics
                        .forward_errors
                        .with_label_values(&[name, kind])
                        .inc();
                    let delay = backoff.next_delay();
                    if kind == "unauthorized" {
                        tracing::error!(dest = name, error = %why, attempt = backoff.attempts(), "forward: the monitor refuses our credentials (check forward.http.token); alarms stay queued");
                    } else if backoff.attempts() == 1 || backoff.attempts().is_multiple_of(10) {
                        tracing::warn!(dest = name, error = %why, attempt = backoff.attempts(), waiting = acker.waiting(), "forward: delivery failed; alarms stay queued");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled(), if deadline.is_none() => {}
                    }
                    break;
                }
            }
        }
    }
    acker.finish().await;
}
