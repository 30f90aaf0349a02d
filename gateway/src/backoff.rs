//! Exponential backoff with jitter, shared by every reconnect and retry loop.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Backoff settings (`*.backoff` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    /// First delay, ms.
    pub initial_ms: u64,
    /// Longest delay, ms.
    pub max_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial_ms: 100,
            max_ms: 30_000,
        }
    }
}

impl BackoffConfig {
    /// Checks the values; `key` is where they sit in the config.
    pub fn validate(&self, key: &str) -> Result<(), crate::error::ConfigError> {
        if self.initial_ms == 0 {
            return Err(crate::error::ConfigError::new(
                format!("{key}.initial_ms"),
                "must be at least 1",
            ));
        }
        if self.max_ms < self.initial_ms {
            return Err(crate::error::ConfigError::new(
                format!("{key}.max_ms"),
                "must be at least initial_ms",
            ));
        }
        Ok(())
    }
}

/// The state of one retry loop: doubles up to the maximum, resets on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    cfg: BackoffConfig,
    next_ms: u64,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new(cfg: BackoffConfig) -> Self {
        let seed = crate::clock::wall_ms() | 1;
        Self {
            cfg,
            next_ms: cfg.initial_ms,
            attempt: 0,
            seed,
        }
    }

    /// The delay before the next attempt (with up to 20 % jitter so that
    /// many gateways do not retry in step), and doubles the next one.
    pub fn next_delay(&mut self) -> Duration {
        // xorshift: jitter needs no quality, only spread.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let base = self.next_ms;
        let jitter = if base >= 5 { self.seed % (base / 5) } else { 0 };
        self.next_ms = (self.next_ms.saturating_mul(2)).min(self.cfg.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis(base.saturating_sub(jitter).max(1))
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Back to the initial delay.
    pub fn reset(&mut self) {
        self.next_ms = self.cfg.initial_ms;
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(BackoffConfig {
            initial_ms: 100,
            max_ms: 1_000,
        });
        let d: Vec<u64> = (0..6).map(|_| b.next_delay().as_millis() as u64).collect();
        for (got, nominal) in d.iter().zip([100, 200, 400, 800, 1000, 1000]) {
            assert!(*got <= nominal && *got >= nominal * 4 / 5, "{d:?}");
        }
        assert_eq!(b.attempts(), 6);
        b.reset();
        assert!(b.next_delay().as_millis() <= 100);
    }
}
