//! The gateway's heartbeat to the monitor: every `forward.http.heartbeat_s`
//! it posts the sites it serves (its devices' sites, as the judge knows
//! them), whether its broker link is up, and how much waits in its buffer
//! and alarm queue. The monitor judges a gateway that misses two
//! heartbeats silent and its sites blind; this is how a dead gateway stops
//! looking like a quiet, healthy site. A failed heartbeat is logged
//! (rate-limited) and counted, and the next one is simply the next
//! interval's: liveness is about now, nothing is queued.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::forward::http::{Heartbeat, HttpDest};
use crate::link::{LinkRx, State};
use crate::logging::RateLimiter;
use crate::metrics::Metrics;
use crate::store::{Queue, Store};

/// What the heartbeat reads.
#[derive(Debug)]
pub struct Sources {
    /// The sites the judge knows.
    pub sites: watch::Receiver<Vec<String>>,
    /// The ingest link.
    pub link: LinkRx,
    /// The durable buffer (queue lengths).
    pub store: Arc<Store>,
}

/// Posts a heartbeat every `interval_s` until `stop` (none while the
/// gateway knows no site yet: there is nothing to watch).
pub async fn run(
    dest: HttpDest,
    gateway: String,
    interval_s: u32,
    src: Sources,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let every = Duration::from_secs(u64::from(interval_s));
    let mut limiter = RateLimiter::new(Duration::from_secs(300));
    loop {
        let hb = Heartbeat {
            sites: src.sites.borrow().clone(),
            interval_s,
            broker_connected: src.link.borrow().state != State::Down,
            buffered: src.store.len(Queue::Points),
            alarms_queued: src.store.len(Queue::AlarmsHttp),
        };
        if !hb.sites.is_empty() {
            let sent = tokio::select! {
                () = stop.cancelled() => return,
                r = dest.heartbeat(&gateway, &hb) => r,
            };
            match sent {
                Ok(()) => metrics.heartbeats.with_label_values(&["ok"]).inc(),
                Err(e) => {
                    metrics.heartbeats.with_label_values(&["failed"]).inc();
                    if let Some(suppressed) = limiter.check("heartbeat") {
                        tracing::warn!(error = %e, suppressed, "heartbeat to the monitor failed");
                    }
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
