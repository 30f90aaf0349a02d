//! Input registers: the latest frame and the device's state.

use anquan_protocol::{
    DeviceKind, Fault, FaultCode, FaultSet, Faults, Id, Level, MAX_TS_MS, MIN_TS_MS, Readings,
    Telemetry,
};

use super::{
    IR_DEVICE_FAULTS, IR_MAP_ID, IR_READINGS, IR_SEQ, IR_STATUS, IR_TS_MS, Problem, RegisterError,
    RegisterMap,
};
use crate::scale::{self, ABSENT};

/// The status word (input register 1).
///
/// | bits | meaning |
/// |---|---|
/// | 0–2 | highest active alarm level: 0 none, 1 blue, 2 yellow, 3 orange, 4 red |
/// | 3 | the latest frame carries a fault |
/// | 4 | buzzer on |
/// | 5 | relay on |
/// | 6 | one-key alarm button held |
/// | 7 | clock set (`ts_ms` is Unix time) |
/// | 8–15 | reserved, 0 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// Highest active alarm level.
    pub level: Option<Level>,
    /// A fault is active.
    pub fault: bool,
    /// The buzzer sounds.
    pub buzzer: bool,
    /// The relay is closed.
    pub relay: bool,
    /// The one-key alarm button is held (within its hold time).
    pub button: bool,
    /// The clock is set.
    pub clock: bool,
}

impl Status {
    /// The register value.
    pub fn to_word(self) -> u16 {
        let level = self.level.map_or(0, |l| l as u16 + 1);
        level
            | u16::from(self.fault) << 3
            | u16::from(self.buzzer) << 4
            | u16::from(self.relay) << 5
            | u16::from(self.button) << 6
            | u16::from(self.clock) << 7
    }

    /// Parses a register value; reserved bits and level codes are refused.
    pub fn from_word(w: u16) -> Result<Self, Problem> {
        if w & 0xFF00 != 0 {
            return Err(Problem::Reserved);
        }
        let level = match w & 0b111 {
            0 => None,
            n => Some(
                *Level::ALL
                    .get(usize::from(n) - 1)
                    .ok_or(Problem::OutOfRange)?,
            ),
        };
        let bit = |n: u16| w & (1 << n) != 0;
        Ok(Self {
            level,
            fault: bit(3),
            buzzer: bit(4),
            relay: bit(5),
            button: bit(6),
            clock: bit(7),
        })
    }
}

/// What the input registers carry: the latest frame and the status.
#[derive(Debug, Clone, PartialEq)]
pub struct InputImage {
    /// Status word.
    pub status: Status,
    /// The latest frame's `seq`.
    pub seq: u32,
    /// The latest frame's `ts_ms`.
    pub ts_ms: u64,
    /// The latest frame's readings.
    pub readings: Readings,
    /// The latest frame's faults (one per channel at most, plus device-wide).
    pub faults: Faults,
}

impl InputImage {
    /// The telemetry frame a poller forwards for this image.
    pub fn to_telemetry(&self, device: Id, kind: DeviceKind) -> Telemetry {
        Telemetry {
            device,
            kind,
            seq: self.seq,
            ts_ms: self.ts_ms,
            readings: self.readings.clone(),
            faults: self.faults.clone(),
            dropped: 0,
        }
    }
}

fn too_short(map: &RegisterMap, len: usize) -> Result<(), RegisterError> {
    if len < map.input_len() {
        return Err(RegisterError::new(len as u16, Problem::TooShort));
    }
    Ok(())
}

/// Encodes `image` into `out` (at least `map.input_len()` registers);
/// returns the count written. Every reading must be a channel of the map and
/// inside its physical range, every fault on a channel of the map.
pub fn encode_input_registers(
    map: &RegisterMap,
    image: &InputImage,
    out: &mut [u16],
) -> Result<usize, RegisterError> {
    too_short(map, out.len())?;
    let n = map.channels.len();
    let out = &mut out[..map.input_len()];
    out[usize::from(IR_MAP_ID)] = map.map_id();
    out[usize::from(IR_STATUS)] = image.status.to_word();
    let seq = usize::from(IR_SEQ);
    out[seq] = (image.seq >> 16) as u16;
    out[seq + 1] = image.seq as u16;
    let ts = usize::from(IR_TS_MS);
    for (i, r) in out[ts..ts + 4].iter_mut().enumerate() {
        *r = (image.ts_ms >> (48 - 16 * i)) as u16;
    }
    let readings = usize::from(IR_READINGS);
    out[readings..readings + 2 * n].fill(0);
    out[readings..readings + n].fill(ABSENT as u16);
    for (metric, v) in image.readings.iter() {
        let addr = map
            .reading_address(metric)
            .ok_or(RegisterError::new(IR_READINGS, Problem::NotInMap))?;
        let raw = scale::to_raw(metric, v).ok_or(RegisterError::new(addr, Problem::OutOfRange))?;
        out[usize::from(addr)] = raw as u16;
    }
    let mut device = FaultSet::EMPTY;
    for f in &image.faults {
        match f.metric {
            None => device = device.with(f.code),
            Some(m) => {
                let addr = map.channel_fault_address(m).ok_or(RegisterError::new(
                    IR_READINGS + n as u16,
                    Problem::NotInMap,
                ))?;
                let slot = &mut out[usize::from(addr)];
                // One code per channel; the first one wins.
                if *slot == 0 {
                    *slot = f.code as u16 + 1;
                }
            }
        }
    }
    out[usize::from(IR_DEVICE_FAULTS)] = device.iter().fold(0, |w, c| w | 1 << (c as u16));
    Ok(map.input_len())
}

/// Decodes and validates an input register image (the map's registers from
/// address 0).
pub fn decode_input_registers(
    map: &RegisterMap,
    regs: &[u16],
) -> Result<InputImage, RegisterError> {
    too_short(map, regs.len())?;
    if regs[usize::from(IR_MAP_ID)] != map.map_id() {
        return Err(RegisterError::new(IR_MAP_ID, Problem::WrongMap));
    }
    let status = Status::from_word(regs[usize::from(IR_STATUS)])
        .map_err(|p| RegisterError::new(IR_STATUS, p))?;
    let seq_at = usize::from(IR_SEQ);
    let seq = u32::from(regs[seq_at]) << 16 | u32::from(regs[seq_at + 1]);
    let ts_at = usize::from(IR_TS_MS);
    let ts_ms = regs[ts_at..ts_at + 4]
        .iter()
        .fold(0u64, |acc, r| acc << 16 | u64::from(*r));
    if ts_ms != 0 && !(MIN_TS_MS..=MAX_TS_MS).contains(&ts_ms) {
        return Err(RegisterError::new(IR_TS_MS, Problem::OutOfRange));
    }
    let mut faults = Faults::new();
    let device_bits = regs[usize::from(IR_DEVICE_FAULTS)];
    if device_bits >> FaultCode::ALL.len() != 0 {
        return Err(RegisterError::new(IR_DEVICE_FAULTS, Problem::Reserved));
    }
    for (i, code) in FaultCode::ALL.iter().enumerate() {
        if device_bits & (1 << i) != 0 {
            let _ = faults.push(Fault::device(*code));
        }
    }
    let n = map.channels.len();
    let mut readings = Readings::new();
    for (i, metric) in map.channels.iter().enumerate() {
        let addr = IR_READINGS + i as u16;
        let raw = regs[usize::from(addr)] as i16;
        if raw != ABSENT {
            let v = scale::from_raw(*metric, raw)
                .ok_or(RegisterError::new(addr, Problem::OutOfRange))?;
            let _ = readings.set(*metric, v);
        }
        let fault_addr = IR_READINGS + (n + i) as u16;
        let code = regs[usize::from(fault_addr)];
        if code != 0 {
            let code = FaultCode::ALL
                .get(usize::from(code) - 1)
                .ok_or(RegisterError::new(fault_addr, Problem::OutOfRange))?;
            if faults.push(Fault::on(*code, *metric)).is_err() {
                return Err(RegisterError::new(fault_addr, Problem::OutOfRange));
            }
        }
    }
    Ok(InputImage {
        status,
        seq,
        ts_ms,
        readings,
        faults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::{MAX_INPUT_REGISTERS, map_for};
    use anquan_protocol::Metric;
    use proptest::prelude::*;

    fn gas_image() -> InputImage {
        let mut readings = Readings::new();
        readings.set(Metric::LelPct, 12.5).unwrap();
        readings.set(Metric::AlarmBtn, 0.0).unwrap();
        let mut faults = Faults::new();
        faults.push(Fault::device(FaultCode::Power)).unwrap();
        faults
            .push(Fault::on(FaultCode::OpenCircuit, Metric::CoPpm))
            .unwrap();
        InputImage {
            status: Status {
                level: Some(Level::Yellow),
                fault: true,
                buzzer: true,
                relay: false,
                button: false,
                clock: true,
            },
            seq: 0x0001_0002,
            ts_ms: 1_732_300_000_123,
            readings,
            faults,
        }
    }

    #[test]
    fn gas_layout_register_by_register() {
        let map = map_for(DeviceKind::Gas);
        let mut regs = [0u16; MAX_INPUT_REGISTERS];
        let n = encode_input_registers(map, &gas_image(), &mut regs).unwrap();
        assert_eq!(n, 15);
        let ts: u64 = 1_732_300_000_123;
        assert_eq!(
            regs[..n],
            [
                0x0101,
                0b1001_1010,
                0x0001,
                0x0002,
                (ts >> 48) as u16,
                (ts >> 32) as u16,
                (ts >> 16) as u16,
                ts as u16,
                1 << (FaultCode::Power as u16),
                1250,
                0x8000,
                0,
                0,
                FaultCode::OpenCircuit as u16 + 1,
                0,
            ]
        );
        let back = decode_input_registers(map, &regs[..n]).unwrap();
        assert_eq!(back.readings, gas_image().readings);
        assert_eq!(back.seq, 0x0001_0002);
        assert_eq!(back.status, gas_image().status);
        // Device-wide faults come first in the decoded list.
        assert_eq!(back.faults.len(), 2);
        assert!(back.faults.contains(&Fault::device(FaultCode::Power)));
        let t = back.to_telemetry(Id::new("gas-1").unwrap(), DeviceKind::Gas);
        assert!(t.validate().is_ok());
    }

    #[test]
    fn decode_rejects_bad_images_naming_the_register() {
        let map = map_for(DeviceKind::Gas);
        let mut good = [0u16; 15];
        encode_input_registers(map, &gas_image(), &mut good).unwrap();
        let bad = |addr: usize, v: u16| {
            let mut r = good;
            r[addr] = v;
            decode_input_registers(map, &r).unwrap_err()
        };
        assert_eq!(bad(0, 0x0401), RegisterError::new(0, Problem::WrongMap));
        assert_eq!(bad(1, 0x0100), RegisterError::new(1, Problem::Reserved));
        assert_eq!(bad(1, 0x0005), RegisterError::new(1, Problem::OutOfRange));
        assert_eq!(bad(4, 0xFFFF).address, 4);
        assert_eq!(bad(8, 0x8000), RegisterError::new(8, Problem::Reserved));
        // 101 %LEL.
        assert_eq!(bad(9, 10_100), RegisterError::new(9, Problem::OutOfRange));
        assert_eq!(bad(13, 99), RegisterError::new(13, Problem::OutOfRange));
        assert_eq!(
            decode_input_registers(map, &good[..14])
                .unwrap_err()
                .problem,
            Problem::TooShort
        );
    }

    #[test]
    fn encode_rejects_what_the_map_cannot_carry() {
        let map = map_for(DeviceKind::Gas);
        let mut regs = [0u16; MAX_INPUT_REGISTERS];
        let mut img = gas_image();
        img.readings.set(Metric::WindMs, 3.0).unwrap();
        assert_eq!(
            encode_input_registers(map, &img, &mut regs)
                .unwrap_err()
                .problem,
            Problem::NotInMap
        );
        let mut img = gas_image();
        img.readings.set(Metric::LelPct, 130.0).unwrap();
        assert_eq!(
            encode_input_registers(map, &img, &mut regs).unwrap_err(),
            RegisterError::new(9, Problem::OutOfRange)
        );
        assert_eq!(
            encode_input_registers(map, &gas_image(), &mut regs[..3])
                .unwrap_err()
                .problem,
            Problem::TooShort
        );
    }

    proptest! {
        #[test]
        fn round_trip_every_kind(
            kind_i in 0usize..4,
            seq: u32,
            ts in prop_oneof![Just(0u64), MIN_TS_MS..=MAX_TS_MS],
            word in 0u16..0x100,
            raws in proptest::collection::vec(any::<i16>(), 8),
            codes in proptest::collection::vec(0usize..=FaultCode::ALL.len(), 8),
            device_faults in 0u16..(1 << FaultCode::ALL.len()),
        ) {
            let kind = DeviceKind::ALL[kind_i];
            let map = map_for(kind);
            prop_assume!(Status::from_word(word).is_ok());
            let status = Status::from_word(word).unwrap();
            let mut readings = Readings::new();
            let mut faults = Faults::new();
            for (i, code) in FaultCode::ALL.iter().enumerate() {
                if device_faults & (1 << i) != 0 {
                    let _ = faults.push(Fault::device(*code));
                }
            }
            for (i, m) in map.channels.iter().enumerate() {
                if let Some(v) = scale::from_raw(*m, raws[i]) {
                    readings.set(*m, v).unwrap();
                }
                if codes[i] > 0 && faults.len() < faults.capacity() {
                    faults.push(Fault::on(FaultCode::ALL[codes[i] - 1], *m)).unwrap();
                }
            }
            let img = InputImage { status, seq, ts_ms: ts, readings, faults };
            let mut regs = [0u16; MAX_INPUT_REGISTERS];
            let n = encode_input_registers(map, &img, &mut regs).unwrap();
            prop_assert_eq!(n, map.input_len());
            let back = decode_input_registers(map, &regs[..n]).unwrap();
            prop_assert_eq!(back, img);
        }

        #[test]
        fn decode_never_panics(kind_i in 0usize..4, regs in proptest::collection::vec(any::<u16>(), 0..30)) {
            let map = map_for(DeviceKind::ALL[kind_i]);
            let _ = decode_input_registers(map, &regs);
        }
    }
}
