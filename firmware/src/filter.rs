//! Per-channel smoothing: a short median (rejects single-sample spikes, e.g.
//! EMI on a long 4–20 mA run) followed by an exponential moving average
//! (trades noise for response time).
//!
//! The defaults keep detection fast: a median of 3 delays a step change by
//! one sample and the EMA is off (`alpha = 1`). A site can smooth a noisy
//! channel further per device ([`crate::ChannelOverride`]).

use core::fmt;

use serde::{Deserialize, Serialize};

/// Largest median window.
pub const MAX_MEDIAN: usize = 5;

/// How one channel is filtered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Median window in samples: 1 (off), 3 or 5.
    pub median: u8,
    /// EMA weight of the newest sample, in (0, 1]; 1 = off.
    pub ema_alpha: f32,
}

impl FilterConfig {
    /// No filtering.
    pub const NONE: Self = Self {
        median: 1,
        ema_alpha: 1.0,
    };
    /// Median of 3, no EMA: the default for analog channels.
    pub const SPIKE: Self = Self {
        median: 3,
        ema_alpha: 1.0,
    };

    /// Checks the window and the weight; names the bad field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !matches!(self.median, 1 | 3 | 5) {
            return Err(("median", "must be 1, 3 or 5"));
        }
        if !(self.ema_alpha > 0.0 && self.ema_alpha <= 1.0) {
            return Err(("ema_alpha", "must be in (0, 1]"));
        }
        Ok(())
    }
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self::SPIKE
    }
}

/// The state of one channel's filter (28 bytes: there is one per channel
/// and RAM is counted).
#[derive(Clone, Copy, PartialEq)]
pub struct Filter {
    window: [f32; MAX_MEDIAN],
    len: u8,
    next: u8,
    /// The EMA's state; NaN until the first sample.
    ema: f32,
}

impl Default for Filter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("len", &self.len)
            .field("ema", &self.ema)
            .finish()
    }
}

impl Filter {
    /// An empty filter.
    pub const fn new() -> Self {
        Self {
            window: [0.0; MAX_MEDIAN],
            len: 0,
            next: 0,
            ema: f32::NAN,
        }
    }

    /// Forgets the history (after a fault, so stale values do not mix with
    /// the first good ones).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Adds a finite sample and returns the filtered value. Until the window
    /// is full the median is taken over the samples seen so far (the mean
    /// of the middle two for an even count).
    pub fn push(&mut self, cfg: &FilterConfig, x: f32) -> f32 {
        let n = usize::from(cfg.median).clamp(1, MAX_MEDIAN);
        self.window[usize::from(self.next) % n] = x;
        self.next = ((usize::from(self.next) + 1) % n) as u8;
        self.len = (usize::from(self.len) + 1).min(n) as u8;
        let len = usize::from(self.len);
        let mut sorted = [0.0f32; MAX_MEDIAN];
        sorted[..len].copy_from_slice(&self.window[..len]);
        // Insertion sort of at most 5 finite values.
        for i in 1..len {
            let mut j = i;
            while j > 0 && sorted[j - 1] > sorted[j] {
                sorted.swap(j - 1, j);
                j -= 1;
            }
        }
        let median = if len % 2 == 1 {
            sorted[len / 2]
        } else {
            (sorted[len / 2 - 1] + sorted[len / 2]) / 2.0
        };
        let alpha = cfg.ema_alpha;
        let y = if alpha < 1.0 && !self.ema.is_nan() {
            self.ema + alpha * (median - self.ema)
        } else {
            median
        };
        self.ema = y;
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_rejects_a_single_spike() {
        let mut f = Filter::new();
        let cfg = FilterConfig::SPIKE;
        let out: std::vec::Vec<f32> = [1.0, 1.0, 90.0, 1.0, 1.0]
            .iter()
            .map(|x| f.push(&cfg, *x))
            .collect();
        assert_eq!(out, [1.0, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn median_follows_a_step_one_sample_late() {
        let mut f = Filter::new();
        let cfg = FilterConfig::SPIKE;
        let out: std::vec::Vec<f32> = [0.0, 0.0, 0.0, 10.0, 10.0, 10.0]
            .iter()
            .map(|x| f.push(&cfg, *x))
            .collect();
        assert_eq!(out, [0.0, 0.0, 0.0, 0.0, 10.0, 10.0]);
    }

    #[test]
    fn ema_converges_and_reset_forgets() {
        let mut f = Filter::new();
        let cfg = FilterConfig {
            median: 1,
            ema_alpha: 0.5,
        };
        assert_eq!(f.push(&cfg, 0.0), 0.0);
        assert_eq!(f.push(&cfg, 8.0), 4.0);
        assert_eq!(f.push(&cfg, 8.0), 6.0);
        f.reset();
        assert_eq!(f.push(&cfg, 8.0), 8.0);
    }

    #[test]
    fn validation_names_the_field() {
        let bad = FilterConfig {
            median: 4,
            ema_alpha: 1.0,
        };
        assert_eq!(bad.validate().unwrap_err().0, "median");
        let bad = FilterConfig {
            median: 3,
            ema_alpha: 0.0,
        };
        assert_eq!(bad.validate().unwrap_err().0, "ema_alpha");
        assert!(FilterConfig::NONE.validate().is_ok());
    }
}
