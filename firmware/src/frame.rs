//! The compact form of one frame, as the device keeps it: fixed-point
//! readings by channel index instead of a 1 KiB JSON payload. The offline
//! buffer stores it (see [`crate::outbox`] for the byte layout), the Modbus
//! input registers show the latest one, and it becomes a wire
//! [`Telemetry`] only when it is sent.

use anquan_protocol::{DeviceKind, Fault, Faults, Id, Readings, Telemetry};

use crate::channels::{self, MAX_CHANNELS};
use crate::scale::{self, ABSENT};

/// One telemetry or event frame in fixed-point form.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Sent on the `event` topic (an alarm transition, a fault change, the
    /// button) rather than `telemetry`.
    pub event: bool,
    /// The frame's sequence number.
    pub seq: u32,
    /// Unix ms, or 0 without a clock.
    pub ts_ms: u64,
    /// Raw fixed-point reading per channel index; [`ABSENT`] = none.
    pub values: [i16; MAX_CHANNELS],
    /// Active faults.
    pub faults: Faults,
}

impl Default for Frame {
    fn default() -> Self {
        Self::new()
    }
}

impl Frame {
    /// An empty telemetry frame with seq 0.
    pub const fn new() -> Self {
        Self {
            event: false,
            seq: 0,
            ts_ms: 0,
            values: [ABSENT; MAX_CHANNELS],
            faults: Faults::new(),
        }
    }

    /// Bit `i` set when channel `i` has a reading.
    pub fn present(&self) -> u8 {
        self.values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != ABSENT)
            .fold(0u8, |m, (i, _)| m | (1 << i))
    }

    /// The readings, as the wire and the rules see them.
    pub fn readings(&self, kind: DeviceKind) -> Readings {
        channels::of(kind)
            .iter()
            .zip(self.values.iter())
            .filter_map(|(m, raw)| scale::from_raw(*m, *raw).map(|v| (*m, v)))
            .collect()
    }

    /// The wire frame. `dropped` is the count of frames the buffer dropped
    /// since the last delivered one.
    pub fn to_telemetry(&self, device: &Id, kind: DeviceKind, dropped: u32) -> Telemetry {
        Telemetry {
            device: device.clone(),
            kind,
            seq: self.seq,
            ts_ms: self.ts_ms,
            readings: self.readings(kind),
            faults: self.faults.clone(),
            dropped,
        }
    }

    /// Whether `fault` is among the frame's faults.
    pub fn has_fault(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anquan_protocol::{FaultCode, Metric};

    #[test]
    fn to_telemetry_skips_absent_channels() {
        let mut f = Frame::new();
        f.seq = 9;
        f.values[0] = 1250; // lel 12.50
        f.values[2] = 1; // alarm_btn
        f.faults
            .push(Fault::on(FaultCode::OpenCircuit, Metric::CoPpm))
            .unwrap();
        assert_eq!(f.present(), 0b101);
        let id = Id::new("gas-1").unwrap();
        let t = f.to_telemetry(&id, DeviceKind::Gas, 3);
        assert_eq!(t.readings.get(Metric::LelPct), Some(12.5));
        assert_eq!(t.readings.get(Metric::CoPpm), None);
        assert_eq!(t.readings.get(Metric::AlarmBtn), Some(1.0));
        assert_eq!(t.dropped, 3);
        assert_eq!(t.seq, 9);
        assert!(t.validate().is_ok());
    }
}
