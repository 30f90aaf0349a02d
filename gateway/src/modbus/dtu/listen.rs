//! The DTU listener: accepts connections, reads each one's registration
//! and hands the stream to the link with that `dtu_id` (its [`Slot`]).
//!
//! A connection that sends an unknown id, closes before a whole id, or
//! sends nothing within `register_timeout_ms` is closed. At most
//! `max_pending` connections wait for their registration at once; more
//! are closed at once, so a flood of idle connections costs bounded
//! memory and tasks. A DTU that registers again replaces its old
//! connection: the link drops the old stream before its next request and
//! polls over the new one, its devices' state untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::stream::DtuStream;
use super::{DtuConfig, MAX_PACKET, Registration, classify, parse_packet};
use crate::error::ConfigError;
use crate::logging::RateLimiter;
use crate::metrics::Metrics;
use crate::modbus::{ModbusConfig, Transport};

/// The stream a DTU link polls over.
pub type Stream = DtuStream<TcpStream>;

/// Where the listener leaves a link's newly registered stream.
#[derive(Debug, Default)]
pub struct Slot {
    pending: Mutex<Option<Stream>>,
    /// The token of the stream last handed over (dead once it is dropped).
    alive: Mutex<Weak<()>>,
}

impl Slot {
    fn pending(&self) -> MutexGuard<'_, Option<Stream>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leaves `stream` for the link; `true` if it replaces a connection
    /// that is still open (or one the link has not taken yet).
    fn offer(&self, stream: Stream, alive: &Arc<()>) -> bool {
        let mut alive_slot = self.alive.lock().unwrap_or_else(|p| p.into_inner());
        let replaced_live = alive_slot.upgrade().is_some();
        *alive_slot = Arc::downgrade(alive);
        let old = self.pending().replace(stream);
        replaced_live || old.is_some()
    }

    /// The newly registered stream, if one arrived since the last call.
    pub fn take(&self) -> Option<Stream> {
        self.pending().take()
    }
}

/// The slots of the `dtu` links, by link name.
pub type Slots = HashMap<String, Arc<Slot>>;

/// Binds `[modbus.dtu] listen` and starts accepting, if there are `dtu`
/// links; returns their slots and the listener task.
pub async fn start(
    cfg: &ModbusConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(Slots, Option<JoinHandle<()>>), ConfigError> {
    let mut slots = Slots::new();
    let Some(dtu) = cfg.dtu.clone() else {
        return Ok((slots, None));
    };
    let mut ids = Vec::new();
    for (li, l) in cfg.links.iter().enumerate() {
        if l.transport != Transport::Dtu {
            continue;
        }
        let key = format!("modbus.links[{li}].dtu_id");
        let id = l.dtu_id.as_deref().unwrap_or_default();
        let bytes =
            parse_packet(id, dtu.registration).map_err(|e| ConfigError::new(key, e.to_string()))?;
        let slot = Arc::new(Slot::default());
        slots.insert(l.name.to_string(), slot.clone());
        ids.push(Entry {
            id: bytes,
            link: l.name.to_string(),
            slot,
        });
    }
    let listener = TcpListener::bind(&dtu.listen).await.map_err(|e| {
        ConfigError::new(
            "modbus.dtu.listen",
            format!("cannot listen on {}: {e}", dtu.listen),
        )
    })?;
    tracing::info!(listen = %dtu.listen, dtus = ids.len(), "modbus: DTU listener started");
    let task = tokio::spawn(accept(listener, dtu, Arc::new(ids), metrics, shutdown));
    Ok((slots, Some(task)))
}

/// A configured DTU.
#[derive(Debug)]
struct Entry {
    id: Vec<u8>,
    link: String,
    slot: Arc<Slot>,
}

/// How a connection's registration ended (the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Known(usize),
    Unknown,
    Malformed,
    Timeout,
}

async fn accept(
    listener: TcpListener,
    cfg: DtuConfig,
    ids: Arc<Vec<Entry>>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let pending = Arc::new(Semaphore::new(cfg.max_pending));
    let heartbeat: Option<Arc<[u8]>> = cfg.heartbeat_bytes().map(Arc::from);
    let limiter = Arc::new(Mutex::new(RateLimiter::new(Duration::from_secs(10))));
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause, go on.
                    warn(&limiter, "accept", || tracing::warn!(error = %e, "modbus: DTU accept failed"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            metrics.dtu_connections.with_label_values(&["busy"]).inc();
            warn(
                &limiter,
                "busy",
                || tracing::warn!(%peer, max_pending = cfg.max_pending, "modbus: too many DTU connections waiting to register; closing"),
            );
            continue;
        };
        let ids = ids.clone();
        let metrics = metrics.clone();
        let limiter = limiter.clone();
        let heartbeat = heartbeat.clone();
        let timeout = Duration::from_millis(cfg.register_timeout_ms);
        let idle = Duration::from_millis(cfg.idle_timeout_ms);
        tokio::spawn(async move {
            let mut stream = stream;
            let outcome = registration(&mut stream, &ids, timeout).await;
            drop(permit);
            let id = match outcome {
                Outcome::Known(i) => i,
                other => {
                    let label = match other {
                        Outcome::Unknown => "unknown",
                        Outcome::Malformed => "malformed",
                        _ => "timeout",
                    };
                    metrics.dtu_connections.with_label_values(&[label]).inc();
                    warn(
                        &limiter,
                        label,
                        || tracing::warn!(%peer, result = label, "modbus: DTU registration refused; closing"),
                    );
                    return;
                }
            };
            let Some(e) = ids.get(id) else { return };
            let _ = stream.set_nodelay(true);
            let alive = Arc::new(());
            let link = [e.link.as_str()];
            let s = DtuStream::new(
                stream,
                heartbeat,
                idle,
                metrics.dtu_heartbeats.with_label_values(&link),
                metrics.dtu_discarded_bytes.with_label_values(&link),
                alive.clone(),
            );
            let replaced = e.slot.offer(s, &alive);
            let label = if replaced { "replaced" } else { "accepted" };
            metrics.dtu_connections.with_label_values(&[label]).inc();
            tracing::info!(%peer, link = %e.link, replaced, "modbus: DTU registered");
        });
    }
}

fn warn(limiter: &Mutex<RateLimiter>, key: &'static str, log: impl FnOnce()) {
    let ok = limiter
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .check(key)
        .is_some();
    if ok {
        log();
    }
}

/// Reads until the bytes are exactly one configured id, cannot become
/// one, the peer closes, or `timeout` passes.
async fn registration(stream: &mut TcpStream, ids: &[Entry], timeout: Duration) -> Outcome {
    let idv: Vec<Vec<u8>> = ids.iter().map(|e| e.id.clone()).collect();
    let mut got = Vec::with_capacity(MAX_PACKET);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Never read past the longest possible id: what follows it
        // (the first heartbeat, an answer) is not ours to take.
        let mut buf = [0u8; MAX_PACKET];
        let want = MAX_PACKET - got.len();
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf[..want.max(1)])).await;
        match read {
            Err(_) => return Outcome::Timeout,
            Ok(Err(_) | Ok(0)) => return Outcome::Malformed,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
        match classify(&got, &idv) {
            Registration::Known(i) => return Outcome::Known(i),
            Registration::Partial => {}
            Registration::Unknown => return Outcome::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (s, c)
    }

    fn entries() -> Vec<Entry> {
        vec![Entry {
            id: b"DTU0001".to_vec(),
            link: "l".into(),
            slot: Arc::new(Slot::default()),
        }]
    }

    #[tokio::test]
    async fn registration_outcomes() {
        let ids = entries();
        let t = Duration::from_millis(300);
        let (mut s, mut c) = pair().await;
        c.write_all(b"DTU").await.unwrap();
        c.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.write_all(b"0001").await.unwrap();
        assert_eq!(registration(&mut s, &ids, t).await, Outcome::Known(0));
        let (mut s, mut c) = pair().await;
        c.write_all(b"DTU0002").await.unwrap();
        assert_eq!(registration(&mut s, &ids, t).await, Outcome::Unknown);
        let (mut s, mut c) = pair().await;
        c.write_all(b"DTU0").await.unwrap();
        drop(c);
        assert_eq!(registration(&mut s, &ids, t).await, Outcome::Malformed);
        let (mut s, _c) = pair().await;
        assert_eq!(registration(&mut s, &ids, t).await, Outcome::Timeout);
    }

    /// Offers `s` the way the listener does (the token lives in the stream).
    fn offer(slot: &Slot, s: TcpStream) -> bool {
        let alive = Arc::new(());
        let c = prometheus::IntCounter::new("x", "x").unwrap();
        let stream = DtuStream::new(s, None, Duration::from_secs(9), c.clone(), c, alive.clone());
        slot.offer(stream, &alive)
    }

    #[tokio::test]
    async fn a_second_registration_replaces_a_live_one() {
        let slot = Slot::default();
        let (s1, _c1) = pair().await;
        assert!(!offer(&slot, s1));
        let taken = slot.take().unwrap();
        let (s2, _c2) = pair().await;
        assert!(offer(&slot, s2), "the first is still open");
        drop(taken);
        let (s3, _c3) = pair().await;
        assert!(offer(&slot, s3), "the second was not taken yet");
        drop(slot.take());
        let (s4, _c4) = pair().await;
        assert!(!offer(&slot, s4), "the others are gone");
    }
}
