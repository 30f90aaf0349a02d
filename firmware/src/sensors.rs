//! The contract between a kind's drivers and the device core.
//!
//! A [`Sensors`] implementation (one per kind in [`crate::kinds`], or a
//! simulator's own) reads its parts and reports, per channel, a value in
//! engineering units, a fault, or nothing. It never invents a value: a
//! channel it cannot read is a [`ChannelSample::Fault`].

use anquan_protocol::{DeviceKind, FaultCode, Faults, Metric};

use crate::channels::{self, MAX_CHANNELS};
use crate::filter::FilterConfig;

/// One channel's outcome of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ChannelSample {
    /// Not fitted (an unused temperature input, no tank-level transmitter).
    #[default]
    Absent,
    /// A reading, calibrated, in the metric's unit.
    Value(f32),
    /// The channel could not be read.
    Fault(FaultCode),
}

/// One sample of every channel of a kind, indexed as [`crate::channels::of`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    kind: DeviceKind,
    values: [ChannelSample; MAX_CHANNELS],
}

impl Sample {
    /// Every channel absent.
    pub const fn new(kind: DeviceKind) -> Self {
        Self {
            kind,
            values: [ChannelSample::Absent; MAX_CHANNELS],
        }
    }

    /// The kind.
    pub const fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// Sets the outcome of `metric`; ignored (and `false`) when the kind has
    /// no such channel.
    pub fn set(&mut self, metric: Metric, sample: ChannelSample) -> bool {
        match channels::index(self.kind, metric) {
            Some(i) => {
                self.values[i] = sample;
                true
            }
            None => false,
        }
    }

    /// The outcome of `metric` (`Absent` when the kind has no such channel).
    pub fn get(&self, metric: Metric) -> ChannelSample {
        channels::index(self.kind, metric).map_or(ChannelSample::Absent, |i| self.values[i])
    }

    /// The outcome of channel `index`.
    pub fn at(&self, index: usize) -> ChannelSample {
        self.values.get(index).copied().unwrap_or_default()
    }

    /// Sets every channel to `Absent`.
    pub fn clear(&mut self) {
        self.values = [ChannelSample::Absent; MAX_CHANNELS];
    }
}

/// How the device core processes one channel by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelDefaults {
    /// Median/EMA filter.
    pub filter: FilterConfig,
    /// Consecutive bit-identical samples after which the channel is `stuck`;
    /// 0 = never (for encoders, whose position legitimately stays put).
    pub stuck_samples: u16,
}

/// Ten minutes of identical readings at 1 Hz: an analog front end always
/// shows some LSB noise, so this means a frozen converter or a latched
/// transmitter, not a quiet plant.
pub const STUCK_ANALOG: u16 = 600;

impl ChannelDefaults {
    /// Analog channels: spike filter, stuck after 10 min.
    pub const ANALOG: Self = Self {
        filter: FilterConfig::SPIKE,
        stuck_samples: STUCK_ANALOG,
    };
    /// Digital position sensors: no filter, never stuck.
    pub const POSITION: Self = Self {
        filter: FilterConfig::NONE,
        stuck_samples: 0,
    };
}

/// A kind's sensor front end.
pub trait Sensors {
    /// The device kind; decides the channels, rules and register map.
    fn kind(&self) -> DeviceKind;

    /// Checks the front end's configuration; `(key, problem)` on error.
    /// [`crate::Device::new`] reports it as `sensors.<key>`.
    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        Ok(())
    }

    /// Processing defaults of channel `metric`.
    fn channel_defaults(&self, metric: Metric) -> ChannelDefaults {
        let _ = metric;
        ChannelDefaults::ANALOG
    }

    /// Runs the parts' self-tests (at start-up and periodically) and pushes
    /// a fault per failed channel (`self_test` or `comm`), or a device-wide
    /// one. A channel with a self-test fault is left out of the readings
    /// until the next self-test passes.
    fn self_test(&mut self, faults: &mut Faults);

    /// Reads every channel once into `out` (cleared to `Absent` before).
    fn sample(&mut self, out: &mut Sample);
}

impl<T: Sensors + ?Sized> Sensors for &mut T {
    fn kind(&self) -> DeviceKind {
        T::kind(self)
    }
    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        T::validate(self)
    }
    fn channel_defaults(&self, metric: Metric) -> ChannelDefaults {
        T::channel_defaults(self, metric)
    }
    fn self_test(&mut self, faults: &mut Faults) {
        T::self_test(self, faults)
    }
    fn sample(&mut self, out: &mut Sample) {
        T::sample(self, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_get_by_metric() {
        let mut s = Sample::new(DeviceKind::Gas);
        assert!(s.set(Metric::CoPpm, ChannelSample::Value(3.0)));
        assert!(!s.set(Metric::WindMs, ChannelSample::Value(3.0)));
        assert_eq!(s.get(Metric::CoPpm), ChannelSample::Value(3.0));
        assert_eq!(s.at(1), ChannelSample::Value(3.0));
        assert_eq!(s.get(Metric::LelPct), ChannelSample::Absent);
        assert_eq!(s.at(99), ChannelSample::Absent);
        s.clear();
        assert_eq!(s.get(Metric::CoPpm), ChannelSample::Absent);
    }
}
