//! A byte snapshot of a [`DeviceState`], so a gateway can persist the rule
//! state of every device with each batch and resume exactly where it was
//! after a restart (an alarm standing before a crash is still standing, and
//! is cleared, not raised again). Fixed size, little-endian, no allocation.

use super::{DeviceState, RateHistory, RuleState, Sample};
use crate::{MAX_RATE_RULES, MAX_RULES};

const VERSION: u8 = 1;
const RULE_BYTES: usize = 11;
const SAMPLE_BYTES: usize = 12;
const RATE_BYTES: usize = 2 + super::RATE_SAMPLES * SAMPLE_BYTES;

/// Size of [`DeviceState::to_bytes`].
pub const SNAPSHOT_LEN: usize = 1 + 8 + MAX_RULES * RULE_BYTES + MAX_RATE_RULES * RATE_BYTES;

impl DeviceState {
    /// The state as bytes (see [`SNAPSHOT_LEN`]). It is only meaningful
    /// with the same [`crate::RuleSet`] it was built for.
    pub fn to_bytes(&self) -> [u8; SNAPSHOT_LEN] {
        let mut out = [0u8; SNAPSHOT_LEN];
        let mut w = Writer {
            buf: &mut out,
            at: 0,
        };
        w.put(&[VERSION]);
        w.put(&self.last_seen_ms.to_le_bytes());
        for r in &self.rules {
            let since = r.since_ms;
            w.put(&[r.level, r.pending, r.count]);
            w.put(&since.to_le_bytes());
        }
        for h in &self.rates {
            w.put(&[h.head, h.len]);
            for s in &h.samples {
                let (at, v) = (s.at_ms, s.value);
                w.put(&at.to_le_bytes());
                w.put(&v.to_le_bytes());
            }
        }
        out
    }

    /// Reads a snapshot made by [`Self::to_bytes`]; `None` if it is not one.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != SNAPSHOT_LEN || b[0] != VERSION {
            return None;
        }
        let mut r = Reader { buf: b, at: 1 };
        let mut s = DeviceState::new(r.u64()?);
        for rule in &mut s.rules {
            let (level, pending, count) = (r.u8()?, r.u8()?, r.u8()?);
            if level > 4 || pending > 4 {
                return None;
            }
            *rule = RuleState {
                level,
                pending,
                count,
                since_ms: r.u64()?,
            };
        }
        for h in &mut s.rates {
            let (head, len) = (r.u8()?, r.u8()?);
            if usize::from(head) >= super::RATE_SAMPLES || usize::from(len) > super::RATE_SAMPLES {
                return None;
            }
            let mut samples = [Sample::default(); super::RATE_SAMPLES];
            for sample in &mut samples {
                let at_ms = r.u64()?;
                let value = f32::from_le_bytes(r.take::<4>()?);
                *sample = Sample { at_ms, value };
            }
            *h = RateHistory { samples, head, len };
        }
        Some(s)
    }

    /// Restarts the silence clock at `now_ms` if it is older: for a
    /// watcher that was away (a gateway restart, or its broker link down),
    /// so devices are not judged offline for the time nobody listened; each
    /// gets one full offline period from `now_ms`. An offline alarm already
    /// raised stays raised.
    pub fn resume_at(&mut self, now_ms: u64) {
        self.last_seen_ms = self.last_seen_ms.max(now_ms);
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b = self.buf.get(self.at..self.at + N)?;
        self.at += N;
        b.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take::<1>()?[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take::<8>()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults;
    use anquan_protocol::{DeviceKind, Metric, Readings};

    #[test]
    fn a_restored_state_behaves_like_the_original() {
        let rules = defaults::for_kind(DeviceKind::WaterPressure);
        let mut a = DeviceState::new(0);
        let mut r = Readings::new();
        for (i, p) in [0.45f32, 0.44, 0.30, 0.20, 0.09, 0.06].iter().enumerate() {
            r.set(Metric::PressureMpa, *p).unwrap();
            rules.evaluate(&mut a, &r, &[], i as u64 * 15_000);
        }
        let mut b = DeviceState::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(a, b);
        for (i, p) in [0.06f32, 0.2, 0.45, 0.45].iter().enumerate() {
            r.set(Metric::PressureMpa, *p).unwrap();
            let now = 100_000 + i as u64 * 15_000;
            assert_eq!(
                rules.evaluate(&mut a, &r, &[], now),
                rules.evaluate(&mut b, &r, &[], now)
            );
        }
        assert_eq!(DeviceState::from_bytes(&[0u8; 3]), None);
        let mut bad = a.to_bytes();
        bad[0] = 9;
        assert_eq!(DeviceState::from_bytes(&bad), None);
    }

    #[test]
    fn resume_restarts_the_silence_clock() {
        let rules = defaults::for_kind(DeviceKind::Gas);
        let mut s = DeviceState::new(0);
        s.resume_at(100_000);
        let after = u64::from(defaults::OFFLINE_AFTER_MS);
        assert!(rules.tick(&mut s, 100_000 + after - 1).is_empty());
        assert!(!rules.tick(&mut s, 100_000 + after).is_empty());
    }
}
