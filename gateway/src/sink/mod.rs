//! The time-series sink: the destination of the durable `points` queue's
//! drain (`drain`), in order, into InfluxDB 2 / VictoriaMetrics (`influx`)
//! or a local file or stdout (`local`). Batches by size (`batch_size`) and
//! time (`flush_interval_ms` after the oldest waiting point), and harder
//! while the pipeline is busy (alarms first); an entry is deleted only
//! after the far end confirmed the write; failures back off exponentially.
//! A batch the far end rejects as malformed (400/413/422) goes to the
//! dead-letter table instead of blocking the queue forever.

pub mod influx;
pub mod line;
pub mod local;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffConfig;
use crate::delivery::Failure;
use crate::drain::{Destination, Item};
use crate::error::ConfigError;

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

    async fn write(&self, body: String) -> Result<(), Failure> {
        match self {
            Self::Influx(w) => w.write(body).await,
            Self::Local(w) => w.write(body).await,
        }
    }
}

/// The time-series destination: one write per delivery, the items' lines
/// joined.
#[derive(Debug, Clone)]
pub struct SinkDest(Arc<Writer>);

impl SinkDest {
    /// Writes through `writer`.
    pub fn new(writer: Writer) -> Self {
        Self(Arc::new(writer))
    }
}

impl Destination for SinkDest {
    fn name(&self) -> &'static str {
        "sink"
    }

    fn deliver(
        &self,
        items: Vec<Arc<Item>>,
    ) -> impl std::future::Future<Output = Result<(), Failure>> + Send + 'static {
        let writer = self.0.clone();
        async move {
            let mut body = String::with_capacity(items.iter().map(|i| i.data.len() + 1).sum());
            for i in &items {
                body.push_str(&String::from_utf8_lossy(&i.data));
                body.push('\n');
            }
            writer.write(body).await
        }
    }
}
