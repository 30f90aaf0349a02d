//! The gateway's clock, injectable.
//!
//! Every place that judges time for the rules (the receive time of a frame,
//! the offline ticks, the time stamp of an alarm) reads it through [`Clock`],
//! so an embedding program (the simulator) can run the gateway on an
//! accelerated, simulated clock. Batching deadlines, backoff and the age of
//! buffered entries stay on real time: they are about the machine, not the
//! site.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of Unix time in milliseconds.
pub trait Clock: Send + Sync + Debug {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> u64;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        wall_ms()
    }
}

/// Real Unix time in ms (0 if the system clock is before 1970).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A clock that moves only when told to: for simulations and tests.
/// Cloning shares the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Sets the time.
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The clock type the gateway holds.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        let shared: SharedClock = Arc::new(c.clone());
        assert_eq!(shared.now_ms(), 1_000);
        c.advance_ms(15_000);
        assert_eq!(shared.now_ms(), 16_000);
        c.set_ms(5);
        assert_eq!(shared.now_ms(), 5);
    }

    #[test]
    fn system_clock_is_unix_time() {
        assert!(SystemClock.now_ms() > anquan_protocol::MIN_TS_MS);
    }
}
