//! `tracing` logs, as text or JSON, and a rate limiter so that a flood of
//! bad frames cannot flood the log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `anquan_gateway=debug,rumqttc=warn`);
    /// the `RUST_LOG` environment variable overrides it.
    pub level: String,
    /// At most one log line per rejection reason per this many seconds; the
    /// line says how many were suppressed. Every rejection is counted in the
    /// metrics regardless.
    pub reject_log_interval_s: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
            reject_log_interval_s: 10,
        }
    }
}

impl LogConfig {
    /// Checks the filter syntax.
    pub fn validate(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map_err(|e| ConfigError::new("log.level", format!("not a tracing filter: {e}")))?;
        Ok(())
    }

    /// Installs the global subscriber (once per process; later calls are
    /// ignored, so an embedding program keeps its own).
    pub fn init(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .or_else(|_| tracing_subscriber::EnvFilter::try_new(&self.level))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // Colours only on a terminal: a log file gets plain text.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(std::io::stderr);
        let _ = match self.format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
    }
}

/// Lets one log line per key through per interval, counting the rest.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    slots: HashMap<&'static str, (Instant, u64)>,
}

impl RateLimiter {
    /// One line per key per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            slots: HashMap::new(),
        }
    }

    /// `Some(suppressed)` when a line for `key` may be written now (with how
    /// many were held back since the last one), `None` to stay quiet.
    pub fn check(&mut self, key: &'static str) -> Option<u64> {
        let now = Instant::now();
        match self.slots.get_mut(key) {
            Some((last, suppressed)) if now.duration_since(*last) < self.interval => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                let n = *suppressed;
                *last = now;
                *suppressed = 0;
                Some(n)
            }
            None => {
                self.slots.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_lets_one_through_per_interval() {
        let mut r = RateLimiter::new(Duration::from_millis(50));
        assert_eq!(r.check("a"), Some(0));
        assert_eq!(r.check("a"), None);
        assert_eq!(r.check("a"), None);
        assert_eq!(r.check("b"), Some(0));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(r.check("a"), Some(2));
    }
}
