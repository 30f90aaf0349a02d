//! The listener: accepts transmission devices' connections and serves each
//! in its own task.
//!
//! A connection's frames are handled one at a time, in order:
//!
//! 1. `Frame::decode` over a read buffer; garbage before a frame is
//!    skipped (`resync`) and counted; a frame whose checksum fails is
//!    answered with deny (否认), and the device sends it again.
//! 2. Sent data (命令 2) from a configured address: its information
//!    objects move that device's [`Panel`]; one object that does not
//!    decode denies the whole frame. A changed panel is written to
//!    `<data_dir>/gb26875/<address>.json` (fsynced, renamed) before
//!    anything else, so a gateway restarted mid-fire still counts the fire.
//! 3. The panel's counts and faults go to the pipeline as one `fire_panel`
//!    reading (an event when the panel moved, a keep-alive when not: a
//!    heartbeat).
//! 4. Once the pipeline reports the reading committed, the frame is
//!    confirmed (确认). A device that hears no confirm sends the frame
//!    again: the gateway may crash at any point above without losing it,
//!    and a repeated frame moves the panel nowhere new.
//!
//! Frames from an address not configured are refused and the connection
//! closed (the device dials again; a mis-set address shows in the metrics
//! and the log). Answers, queries and commands a device sends are counted
//! and ignored: the gateway sends no queries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anquan_protocol::gb26875::{
    Command, Frame, Gb26875Error, Header, MIN_FRAME_LEN, TimeTag, resync,
};
use anquan_protocol::{DeviceKind, Id, Telemetry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Gb26875Config;
use super::panel::{Applied, Panel};
use crate::clock::SharedClock;
use crate::error::ConfigError;
use crate::judge::{Body, Guarantee, Input};
use crate::logging::RateLimiter;
use crate::metrics::Metrics;
use crate::pipeline::{Arrival, Inbound, Receipt};

/// China Standard Time, the clock the devices keep: the confirm's time tag.
const CST_OFFSET_S: i32 = 8 * 3_600;

/// Where readings go and how their commits come back.
#[derive(Debug)]
pub struct PipelineLinks {
    /// The pipeline's input channel.
    pub tx: mpsc::Sender<Inbound>,
    /// This source's number in the pipeline's receipts.
    pub source: usize,
    /// Every receipt up to this one is committed.
    pub committed: watch::Receiver<u64>,
}

/// Binds `[gb26875] listen`, loads the devices' saved panels and starts
/// accepting.
pub async fn start(
    cfg: &Gb26875Config,
    data_dir: &Path,
    links: PipelineLinks,
    clock: SharedClock,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, ConfigError> {
    let dir = data_dir.join("gb26875");
    std::fs::create_dir_all(&dir).map_err(|e| {
        ConfigError::new(
            "gateway.data_dir",
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    let mut devices = HashMap::new();
    for d in &cfg.devices {
        let path = dir.join(format!("{}.json", d.address));
        let panel = load(&path);
        devices.insert(
            d.address,
            Arc::new(Device {
                id: d.id.clone(),
                site: d.site.clone(),
                path,
                state: tokio::sync::Mutex::new(DeviceState { panel, seq: 0 }),
            }),
        );
    }
    let listener = TcpListener::bind(&cfg.listen).await.map_err(|e| {
        ConfigError::new(
            "gb26875.listen",
            format!("cannot listen on {}: {e}", cfg.listen),
        )
    })?;
    tracing::info!(listen = %cfg.listen, devices = devices.len(), "gb26875: listening for transmission devices");
    let shared = Arc::new(Shared {
        devices,
        sequencer: tokio::sync::Mutex::new(Sequencer {
            last: 0,
            tx: links.tx,
            source: links.source,
        }),
        committed: links.committed,
        clock,
        metrics,
        limiter: Mutex::new(RateLimiter::new(Duration::from_secs(10))),
        idle: Duration::from_millis(cfg.idle_timeout_ms),
        shutdown,
    });
    Ok(tokio::spawn(accept(listener, cfg.max_connections, shared)))
}

/// A configured device.
#[derive(Debug)]
struct Device {
    id: Id,
    site: Id,
    path: PathBuf,
    /// Held while a frame moves the panel and its reading is queued, so
    /// two connections of one device (an old one not yet closed) queue
    /// their readings in the order they moved it.
    state: tokio::sync::Mutex<DeviceState>,
}

#[derive(Debug)]
struct DeviceState {
    panel: Panel,
    /// The readings' frame numbers (restart at 0 with the gateway, as a
    /// Modbus device's).
    seq: u32,
}

/// Numbers the readings and queues them in that order: the pipeline's
/// receipts say "everything up to N is committed", so no reading may
/// overtake one with a lower number on the way in.
#[derive(Debug)]
struct Sequencer {
    last: u64,
    tx: mpsc::Sender<Inbound>,
    source: usize,
}

#[derive(Debug)]
struct Shared {
    devices: HashMap<u64, Arc<Device>>,
    sequencer: tokio::sync::Mutex<Sequencer>,
    committed: watch::Receiver<u64>,
    clock: SharedClock,
    metrics: Metrics,
    limiter: Mutex<RateLimiter>,
    idle: Duration,
    shutdown: CancellationToken,
}

impl Shared {
    fn frames(&self, result: &str) {
        self.metrics
            .gb26875_frames
            .with_label_values(&[result])
            .inc();
    }

    fn warn(&self, key: &'static str, log: impl FnOnce()) {
        let ok = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(key)
            .is_some();
        if ok {
            log();
        }
    }

    fn now_tag(&self, fallback: TimeTag) -> TimeTag {
        TimeTag::from_unix_secs(self.clock.now_ms() / 1_000, CST_OFFSET_S).unwrap_or(fallback)
    }
}

/// A saved panel, or an empty one (first start, or a file that does not
/// parse: logged, since the counts start from nothing).
fn load(path: &Path) -> Panel {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::error!(path = %path.display(), error = %e, "gb26875: saved panel state does not parse; starting from an empty panel");
            Panel::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Panel::default(),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "gb26875: cannot read saved panel state; starting from an empty panel");
            Panel::default()
        }
    }
}

/// Writes `panel` to `path` durably: a temporary file, fsynced, renamed
/// over the old one, the directory fsynced.
fn save(path: &Path, panel: &Panel) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(panel).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

async fn accept(listener: TcpListener, max_connections: usize, shared: Arc<Shared>) {
    let open = Arc::new(Semaphore::new(max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause, go on.
                    shared.warn("accept", || tracing::warn!(error = %e, "gb26875: accept failed"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            shared
                .metrics
                .gb26875_connections
                .with_label_values(&["busy"])
                .inc();
            shared.warn(
                "busy",
                || tracing::warn!(%peer, max_connections, "gb26875: too many connections; closing"),
            );
            continue;
        };
        shared
            .metrics
            .gb26875_connections
            .with_label_values(&["accepted"])
            .inc();
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            shared.metrics.gb26875_connections_open.inc();
            tracing::debug!(%peer, "gb26875: connection accepted");
            serve(stream, peer, &shared).await;
            shared.metrics.gb26875_connections_open.dec();
            drop(permit);
        });
    }
}

/// What a frame asks of the connection.
enum Answer {
    /// Write these bytes (a confirm or a deny).
    Reply(Vec<u8>),
    /// Nothing to say.
    Quiet,
    /// Close the connection.
    Close,
}

/// Reads, decodes and answers frames until the peer closes, stays silent
/// for the idle timeout, or the gateway stops.
async fn serve(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let mut buf: Vec<u8> = Vec::with_capacity(4_096);
    loop {
        // Every whole frame in the buffer first.
        loop {
            let answer = match Frame::decode(&buf) {
                Ok((frame, used)) => {
                    let a = handle(&frame, peer, shared).await;
                    buf.drain(..used);
                    a
                }
                Err(e) if e.is_incomplete() => break,
                Err(Gb26875Error::Checksum { expected, got }) => {
                    // The envelope is sound (start, length, end): answer
                    // its sender, who will send it again.
                    shared.frames("denied");
                    shared.warn("checksum", || tracing::warn!(%peer, expected, got, "gb26875: checksum mismatch; denied"));
                    match Header::decode(&buf) {
                        Ok((h, adu_len)) => {
                            buf.drain(..(MIN_FRAME_LEN + adu_len).min(buf.len()));
                            Answer::Reply(reply(&h, Command::Deny, shared))
                        }
                        Err(_) => {
                            let skip = resync(&buf);
                            buf.drain(..skip);
                            Answer::Quiet
                        }
                    }
                }
                Err(e) => {
                    shared.frames("malformed");
                    shared.warn("malformed", || tracing::warn!(%peer, error = %e, "gb26875: not a frame; skipping to the next start"));
                    let skip = resync(&buf);
                    buf.drain(..skip);
                    Answer::Quiet
                }
            };
            match answer {
                Answer::Quiet => {}
                Answer::Close => return,
                Answer::Reply(bytes) => {
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            }
        }
        let read = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            r = tokio::time::timeout(shared.idle, stream.read_buf(&mut buf)) => r,
        };
        match read {
            Err(_) => {
                shared
                    .metrics
                    .gb26875_connections
                    .with_label_values(&["idle"])
                    .inc();
                tracing::info!(%peer, idle_ms = shared.idle.as_millis() as u64, "gb26875: connection silent; closing");
                return;
            }
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// The confirm or deny of `h`, as bytes.
fn reply(h: &Header, command: Command, shared: &Shared) -> Vec<u8> {
    let header = h.reply(command, shared.now_tag(h.time));
    // An empty data unit always fits.
    Frame::new(header, &[])
        .to_vec()
        .map(|v| v.to_vec())
        .unwrap_or_default()
}

async fn handle(frame: &Frame<'_>, peer: SocketAddr, shared: &Shared) -> Answer {
    let h = frame.header;
    if h.command != Command::Send {
        // Answers to queries we never sent, or a device commanding us.
        shared.frames("ignored");
        tracing::debug!(%peer, command = ?h.command, "gb26875: frame ignored");
        return Answer::Quiet;
    }
    let address = h.source.to_u64();
    let Some(device) = shared.devices.get(&address) else {
        shared.frames("unknown_source");
        shared
            .metrics
            .gb26875_connections
            .with_label_values(&["unknown_source"])
            .inc();
        shared.warn("unknown", || tracing::warn!(%peer, address, "gb26875: frame from an address not in [[gb26875.devices]]; closing"));
        return Answer::Close;
    };
    let objects: Result<Vec<_>, _> = frame.objects().collect();
    let objects = match objects {
        Ok(o) => o,
        Err(e) => {
            shared.frames("denied");
            shared.warn("objects", || tracing::warn!(%peer, device = %device.id, error = %e, "gb26875: information objects do not decode; denied"));
            return Answer::Reply(reply(&h, Command::Deny, shared));
        }
    };

    let seq = {
        let mut st = device.state.lock().await;
        let mut panel = st.panel.clone();
        for o in &objects {
            let effect = match panel.apply(o) {
                Applied::State => "state",
                Applied::Ignored => "ignored",
                Applied::Full => {
                    shared.warn("full", || tracing::warn!(device = %device.id, "gb26875: too many abnormal components remembered; a new one is not counted"));
                    "full"
                }
            };
            shared
                .metrics
                .gb26875_objects
                .with_label_values(&[effect])
                .inc();
        }
        let moved = panel != st.panel;
        if moved {
            let path = device.path.clone();
            let snapshot = panel.clone();
            let saved = tokio::task::spawn_blocking(move || save(&path, &snapshot)).await;
            if let Err(e) = saved.map_err(std::io::Error::other).and_then(|r| r) {
                // Not confirmed: the device sends the frame again.
                shared.frames("unconfirmed");
                shared.warn("save", || tracing::error!(device = %device.id, error = %e, "gb26875: cannot save the panel state; frame not confirmed"));
                return Answer::Quiet;
            }
            st.panel = panel;
        }
        let reading = Telemetry {
            device: device.id.clone(),
            kind: DeviceKind::FirePanel,
            seq: st.seq,
            ts_ms: shared.clock.now_ms(),
            readings: st.panel.readings(),
            faults: st.panel.faults(),
            dropped: 0,
        };
        st.seq = st.seq.wrapping_add(1);
        let input = Input {
            site: device.site.clone(),
            device: device.id.clone(),
            body: if moved {
                Body::Event(reading)
            } else {
                Body::Telemetry(reading)
            },
            // The device repeats what we do not confirm, but as a new frame
            // judged on the panel as it is then: not a replay that may take
            // the fast lane.
            guarantee: Guarantee::Once,
        };
        let mut sq = shared.sequencer.lock().await;
        let seq = sq.last + 1;
        let arrival = Arrival {
            input,
            receipt: Some(Receipt {
                source: sq.source,
                seq,
            }),
        };
        if sq.tx.send(arrival.into()).await.is_err() {
            // The pipeline stopped: the gateway is shutting down.
            shared.frames("unconfirmed");
            return Answer::Close;
        }
        sq.last = seq;
        seq
    };

    let mut committed = shared.committed.clone();
    let done = tokio::select! {
        () = shared.shutdown.cancelled() => false,
        r = committed.wait_for(|c| *c >= seq) => r.is_ok(),
    };
    if !done {
        shared.frames("unconfirmed");
        return Answer::Close;
    }
    shared.frames("confirmed");
    Answer::Reply(reply(&h, Command::Confirm, shared))
}
