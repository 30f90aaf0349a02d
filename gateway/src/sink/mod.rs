//! The time-series sink: drains the durable `points` queue, in order, into
//! InfluxDB 2 / VictoriaMetrics (`influx`) or a local file or stdout
//! (`local`). Batches by size (`batch_size`) and time (`flush_interval_ms`
//! after the oldest waiting point); an entry is deleted only after the far
//! end confirmed the write; failures back off exponentially. A batch the
//! far end rejects as malformed (400/413/422) goes to the dead-letter table
//! instead of blocking the queue forever.

pub mod influx;
pub mod line;
pub mod local;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, BackoffConfig};
use crate::clock::wall_ms;
use crate::config::ConfigError;
use crate::delivery::Failure;
use crate::metrics::Metrics;
use crate::outbox::{Acker, Outbox, Queue};

/// Which sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SinkType {
    /// InfluxDB 2 or VictoriaMetrics (`/api/v2/write`), see `[sink.influx]`.
    Influx,
    /// Append line protocol to a local file, see `[sink.file]`.
    #[default]
    File,
    /// Print line protocol on stdout.
    Stdout,
}

/// `[sink]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// `influx`, `file` or `stdout`.
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// Most points per write.
    pub batch_size: usize,
    /// Longest a point waits for a batch to fill, ms.
    pub flush_interval_ms: u64,
    /// Retry backoff.
    pub backoff: BackoffConfig,
    /// The time-series database.
    pub influx: Option<influx::InfluxConfig>,
    /// The local file.
    pub file: local::FileConfig,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            kind: SinkType::File,
            batch_size: 5_000,
            flush_interval_ms: 1_000,
            backoff: BackoffConfig::default(),
            influx: None,
            file: local::FileConfig::default(),
        }
    }
}

impl SinkConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1_000_000).contains(&self.batch_size) {
            return Err(ConfigError::new(
                "sink.batch_size",
                "must be between 1 and 1000000",
            ));
        }
        if self.flush_interval_ms == 0 {
            return Err(ConfigError::new(
                "sink.flush_interval_ms",
                "must be at least 1",
            ));
        }
        self.backoff.validate("sink.backoff")?;
        match (&self.kind, &self.influx) {
            (SinkType::Influx, None) => {
                return Err(ConfigError::new(
                    "sink.influx",
                    "type = \"influx\" needs a [sink.influx] section (url, org, bucket, token)",
                ));
            }
            (_, Some(i)) => i.validate()?,
            _ => {}
        }
        if self.kind == SinkType::File && self.file.path.as_os_str().is_empty() {
            return Err(ConfigError::new("sink.file.path", "must not be empty"));
        }
        Ok(())
    }
}

/// Where the points go.
#[derive(Debug)]
pub enum Writer {
    /// InfluxDB 2 / VictoriaMetrics.
    Influx(influx::InfluxWriter),
    /// A file or stdout.
    Local(local::LocalWriter),
}

impl Writer {
    /// Builds the writer of `cfg`; relative file paths are under `data_dir`.
    pub fn new(cfg: &SinkConfig, data_dir: &std::path::Path) -> Result<Self, ConfigError> {
        Ok(match cfg.kind {
            SinkType::Influx => match &cfg.influx {
                Some(i) => Self::Influx(influx::InfluxWriter::new(i)?),
                None => return Err(ConfigError::new("sink.influx", "missing")),
            },
            SinkType::File => {
                let p: PathBuf = if cfg.file.path.is_relative() {
                    data_dir.join(&cfg.file.path)
                } else {
                    cfg.file.path.clone()
                };
                Self::Local(local::LocalWriter::file(p))
            }
            SinkType::Stdout => Self::Local(local::LocalWriter::stdout()),
        })
    }

    async fn write(&mut self, body: String) -> Result<(), Failure> {
        match self {
            Self::Influx(w) => w.write(body).await,
            Self::Local(w) => w.write(body).await,
        }
    }
}

/// Drains the points queue until `shutdown`; then makes one last attempt
/// to flush what is waiting (bounded by `final_flush`).
pub async fn run(
    cfg: SinkConfig,
    mut writer: Writer,
    outbox: Arc<Outbox>,
    notify: Arc<Notify>,
    metrics: Metrics,
    shutdown: CancellationToken,
    final_flush: Duration,
) {
    let mut backoff = Backoff::new(cfg.backoff);
    let flush = Duration::from_millis(cfg.flush_interval_ms);
    let mut acker = Acker::new(Queue::Points, outbox.clone());
    let mut stop_at: Option<Instant> = None;
    loop {
        acker.kick();
        if shutdown.is_cancelled() && stop_at.is_none() {
            stop_at = Some(Instant::now() + final_flush);
        }
        if stop_at.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        let waiting = acker.waiting();
        if waiting == 0 {
            if stop_at.is_some() {
                break;
            }
            tokio::select! {
                () = notify.notified() => {}
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(flush) => {}
            }
            continue;
        }
        if waiting < cfg.batch_size as u64 && stop_at.is_none() {
            let ob = outbox.clone();
            let cursor = acker.cursor();
            let oldest =
                tokio::task::spawn_blocking(move || ob.oldest_after_ms(Queue::Points, cursor))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten()
                    .unwrap_or(0);
            let due = oldest.saturating_add(cfg.flush_interval_ms);
            let now = wall_ms();
            if now < due {
                tokio::select! {
                    () = notify.notified() => {}
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_millis(due - now)) => {}
                }
                continue;
            }
        }
        let ob = outbox.clone();
        let (n, cursor) = (cfg.batch_size, acker.cursor());
        let entries = match tokio::task::spawn_blocking(move || {
            ob.peek_after(Queue::Points, cursor, n)
        })
        .await
        {
            Ok(Ok(e)) => e,
            other => {
                tracing::error!(error = ?other.err(), "sink: cannot read the buffer");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        let Some(last) = entries.last().map(|e| e.key) else {
            // The counters ran ahead of the table (a deletion in flight):
            // look again shortly.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let mut body = String::with_capacity(entries.iter().map(|e| e.data.len() + 1).sum());
        for e in &entries {
            body.push_str(&String::from_utf8_lossy(&e.data));
            body.push('\n');
        }
        let started = Instant::now();
        match writer.write(body).await {
            Ok(()) => {
                metrics
                    .sink_write_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.sink_points.inc_by(entries.len() as u64);
                acker.delivered(last, entries.len() as u64);
                if backoff.attempts() > 0 {
                    tracing::info!(after_attempts = backoff.attempts(), "sink: writing again");
                }
                backoff.reset();
            }
            Err(Failure::Rejected(why)) => {
                metrics.sink_errors.with_label_values(&["rejected"]).inc();
                tracing::error!(points = entries.len(), reason = %why, "sink: the time-series database rejected a batch for good; moved to the dead-letter table");
                let ob = outbox.clone();
                let keys: Vec<u64> = entries.iter().map(|e| e.key).collect();
                let _ = tokio::task::spawn_blocking(move || {
                    for k in keys {
                        let _ = ob.dead_letter(Queue::Points, k, &why);
                    }
                })
                .await;
            }
            Err(f) => {
                let (kind, why) = match f {
                    Failure::Unauthorized(w) => ("unauthorized", w),
                    Failure::Retry(w) | Failure::Rejected(w) => ("unavailable", w),
                };
                metrics.sink_errors.with_label_values(&[kind]).inc();
                let delay = backoff.next_delay();
                if backoff.attempts() == 1 || backoff.attempts().is_multiple_of(10) {
                    tracing::warn!(attempt = backoff.attempts(), error = %why, waiting, retry_in_ms = delay.as_millis() as u64, "sink: write failed; points stay buffered");
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled(), if stop_at.is_none() => {}
                }
                if stop_at.is_some() {
                    break;
                }
            }
        }
    }
    acker.finish().await;
}
