//! The Modbus register map of each device kind, as pure `no_std` encode and
//! decode functions. The device serves them ([`crate::Device::read_input_registers`]
//! and friends), the gateway's Modbus poller decodes them, and the
//! simulator's Modbus server encodes them: one definition for all three.
//!
//! All registers are 16-bit; 32- and 64-bit values are high word first
//! (big-endian word order, "ABCD"). Readings are signed 16-bit fixed point,
//! `raw = value × 10^decimals` with the decimals of [`crate::scale`], and
//! `0x8000` means "no reading".
//!
//! **Input registers** (function 04), every kind:
//!
//! | address | registers | content |
//! |---|---|---|
//! | 0 | 1 | map id: kind (high byte: 1 gas, 2 electrical, 3 water_pressure, 4 crane), map version (low byte: 1) |
//! | 1 | 1 | status word ([`Status`]) |
//! | 2 | 2 | `seq` of the latest frame (u32) |
//! | 4 | 4 | `ts_ms` of the latest frame (u64; 0 = no clock) |
//! | 8 | 1 | device-wide faults: bit n = fault code n ([`anquan_protocol::FaultCode`] order) |
//! | 9 | N | one reading per channel, in the kind's channel order |
//! | 9 + N | N | one fault register per channel: 0 none, else 1 + fault code |
//!
//! **Holding registers** (functions 03, 06, 16), every kind:
//!
//! | address | content | limits |
//! |---|---|---|
//! | 0 | report period, s | 1–3600, ≥ sample period |
//! | 1 | sample period, ms | 100–60000 |
//! | 2 | buzzer level: 0 never, 1 blue … 4 red | 0–4 |
//! | 3 | relay level: 0 never, 1 blue … 4 red | 0–4 |
//! | 4 | rule enable bits: bit i = threshold block i | |
//! | 5 + 8i | block i: blue raise, blue clear, yellow raise, yellow clear, orange raise, orange clear, red raise, red clear | fixed point of the block's metric (per minute for rates); `0x8000` in both = level off |
//!
//! The per-kind channel order and threshold blocks are in [`map_for`]; the
//! README has each map written out. Writes are validated as a whole (the
//! edge-rules checks: hysteresis on the safe side, levels in order) and
//! refused with an address and a Modbus exception code, never half applied.

mod holding;
mod input;
pub mod rtu;

use core::fmt;

use anquan_edge_rules::{Direction, RuleError};
use anquan_protocol::{DeviceKind, Metric};

pub use holding::{Settings, Threshold, decode_holding_registers, encode_holding_registers};
pub use input::{InputImage, Status, decode_input_registers, encode_input_registers};

use crate::channels::{self, MAX_CHANNELS};

/// Version of the register layout, in the low byte of register 0.
pub const MAP_VERSION: u8 = 1;

/// Input register: map id.
pub const IR_MAP_ID: u16 = 0;
/// Input register: status word.
pub const IR_STATUS: u16 = 1;
/// Input registers: seq (2).
pub const IR_SEQ: u16 = 2;
/// Input registers: ts_ms (4).
pub const IR_TS_MS: u16 = 4;
/// Input register: device-wide faults.
pub const IR_DEVICE_FAULTS: u16 = 8;
/// Input registers: readings, then channel faults.
pub const IR_READINGS: u16 = 9;

/// Holding register: report period (s).
pub const HR_REPORT_PERIOD_S: u16 = 0;
/// Holding register: sample period (ms).
pub const HR_SAMPLE_PERIOD_MS: u16 = 1;
/// Holding register: buzzer level.
pub const HR_BUZZER_LEVEL: u16 = 2;
/// Holding register: relay level.
pub const HR_RELAY_LEVEL: u16 = 3;
/// Holding register: rule enable bits.
pub const HR_RULES_ENABLED: u16 = 4;
/// Holding registers: threshold blocks.
pub const HR_THRESHOLDS: u16 = 5;
/// Registers per threshold block.
pub const REGS_PER_THRESHOLD: u16 = 8;

/// Most threshold blocks of any kind.
pub const MAX_THRESHOLDS: usize = 5;
/// Most input registers of any kind.
pub const MAX_INPUT_REGISTERS: usize = IR_READINGS as usize + 2 * MAX_CHANNELS;
/// Most holding registers of any kind.
pub const MAX_HOLDING_REGISTERS: usize =
    HR_THRESHOLDS as usize + REGS_PER_THRESHOLD as usize * MAX_THRESHOLDS;

/// One rule's thresholds in the holding registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThresholdBlock {
    /// The edge-rules rule id.
    pub rule: &'static str,
    /// The metric whose fixed point the values use.
    pub metric: Metric,
    /// Which side is dangerous (for the table; the rule set is authoritative).
    pub direction: Direction,
    /// A rate-of-change rule (values per minute).
    pub rate: bool,
}

/// The register map of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterMap {
    /// The kind.
    pub kind: DeviceKind,
    /// Channel order of the readings and channel-fault registers.
    pub channels: &'static [Metric],
    /// Threshold blocks of the holding registers.
    pub thresholds: &'static [ThresholdBlock],
}

const fn block(rule: &'static str, metric: Metric, direction: Direction) -> ThresholdBlock {
    ThresholdBlock {
        rule,
        metric,
        direction,
        rate: false,
    }
}

const GAS: RegisterMap = RegisterMap {
    kind: DeviceKind::Gas,
    channels: channels::of(DeviceKind::Gas),
    thresholds: &[
        block("gas.lel", Metric::LelPct, Direction::Above),
        block("gas.co", Metric::CoPpm, Direction::Above),
    ],
};

const ELECTRICAL: RegisterMap = RegisterMap {
    kind: DeviceKind::Electrical,
    channels: channels::of(DeviceKind::Electrical),
    thresholds: &[
        block("elec.residual", Metric::ResidualMa, Direction::Above),
        block("elec.temp1", Metric::Temp1C, Direction::Above),
        block("elec.temp2", Metric::Temp2C, Direction::Above),
        block("elec.temp3", Metric::Temp3C, Direction::Above),
        block("elec.temp4", Metric::Temp4C, Direction::Above),
    ],
};

const WATER: RegisterMap = RegisterMap {
    kind: DeviceKind::WaterPressure,
    channels: channels::of(DeviceKind::WaterPressure),
    thresholds: &[
        block("water.pressure_low", Metric::PressureMpa, Direction::Below),
        block("water.pressure_high", Metric::PressureMpa, Direction::Above),
        ThresholdBlock {
            rule: "water.pressure_drop",
            metric: Metric::PressureMpa,
            direction: Direction::Below,
            rate: true,
        },
        block("water.level_low", Metric::LevelM, Direction::Below),
    ],
};

const CRANE: RegisterMap = RegisterMap {
    kind: DeviceKind::Crane,
    channels: channels::of(DeviceKind::Crane),
    thresholds: &[
        block("crane.moment", Metric::MomentPct, Direction::Above),
        block("crane.wind", Metric::WindMs, Direction::Above),
        block("crane.tilt", Metric::TiltDeg, Direction::Above),
    ],
};

/// A fire panel's point counts (a panel's or a transmission device's
/// Modbus interface; our firmware does not sample a panel), with the
/// panel's own fire threshold.
const FIRE_PANEL: RegisterMap = RegisterMap {
    kind: DeviceKind::FirePanel,
    channels: channels::of(DeviceKind::FirePanel),
    thresholds: &[block(
        "fire_panel.fire",
        Metric::FirePoints,
        Direction::Above,
    )],
};

/// The register map of `kind`.
pub const fn map_for(kind: DeviceKind) -> &'static RegisterMap {
    match kind {
        DeviceKind::Gas => &GAS,
        DeviceKind::Electrical => &ELECTRICAL,
        DeviceKind::WaterPressure => &WATER,
        DeviceKind::Crane => &CRANE,
        DeviceKind::FirePanel => &FIRE_PANEL,
    }
}

/// The kind's code in the map-id register.
pub const fn kind_code(kind: DeviceKind) -> u8 {
    match kind {
        DeviceKind::Gas => 1,
        DeviceKind::Electrical => 2,
        DeviceKind::WaterPressure => 3,
        DeviceKind::Crane => 4,
        DeviceKind::FirePanel => 5,
    }
}

impl RegisterMap {
    /// The value of input register 0.
    pub const fn map_id(&self) -> u16 {
        ((kind_code(self.kind) as u16) << 8) | MAP_VERSION as u16
    }

    /// Number of input registers.
    pub const fn input_len(&self) -> usize {
        IR_READINGS as usize + 2 * self.channels.len()
    }

    /// Number of holding registers.
    pub const fn holding_len(&self) -> usize {
        HR_THRESHOLDS as usize + REGS_PER_THRESHOLD as usize * self.thresholds.len()
    }

    /// Input register of `metric`'s reading.
    pub fn reading_address(&self, metric: Metric) -> Option<u16> {
        let i = self.channels.iter().position(|m| *m == metric)?;
        Some(IR_READINGS + i as u16)
    }

    /// Input register of `metric`'s channel fault.
    pub fn channel_fault_address(&self, metric: Metric) -> Option<u16> {
        let i = self.channels.iter().position(|m| *m == metric)?;
        Some(IR_READINGS + (self.channels.len() + i) as u16)
    }

    /// First holding register of `rule`'s threshold block.
    pub fn threshold_address(&self, rule: &str) -> Option<u16> {
        let i = self.thresholds.iter().position(|b| b.rule == rule)?;
        Some(HR_THRESHOLDS + REGS_PER_THRESHOLD * i as u16)
    }
}

/// Finds the map whose id is `map_id` (the first input register).
pub fn map_by_id(map_id: u16) -> Option<&'static RegisterMap> {
    DeviceKind::ALL
        .into_iter()
        .map(map_for)
        .find(|m| m.map_id() == map_id)
}

/// Modbus exception codes (Modbus Application Protocol v1.1b3, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exception {
    /// 01: function not supported.
    IllegalFunction = 1,
    /// 02: address (or address + quantity) outside the map.
    IllegalDataAddress = 2,
    /// 03: a value (or the quantity) is not acceptable.
    IllegalDataValue = 3,
    /// 04: the device failed while serving the request.
    ServerDeviceFailure = 4,
}

/// What is wrong with a register image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Problem {
    /// The slice is shorter than the map.
    TooShort,
    /// A request reaches past the end of the map.
    OutsideMap,
    /// A request of 0 or more than 125 registers.
    BadQuantity,
    /// Register 0 names another kind or version.
    WrongMap,
    /// A reserved bit or value is set.
    Reserved,
    /// A value outside its limits.
    OutOfRange,
    /// A reading or fault on a metric the map does not have.
    NotInMap,
    /// Only one of a band's raise and clear is `0x8000`.
    HalfBand,
    /// The threshold block's rule is not in the device's rule set.
    UnknownRule,
    /// The edge-rules validation refused the rule.
    Rule(RuleError),
}

/// A register error: the first register at fault and the problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegisterError {
    /// Register address.
    pub address: u16,
    /// What is wrong.
    pub problem: Problem,
}

impl RegisterError {
    pub(crate) const fn new(address: u16, problem: Problem) -> Self {
        Self { address, problem }
    }

    /// The Modbus exception a server answers with.
    pub fn exception(&self) -> Exception {
        match self.problem {
            Problem::TooShort | Problem::NotInMap | Problem::OutsideMap => {
                Exception::IllegalDataAddress
            }
            _ => Exception::IllegalDataValue,
        }
    }
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "register {}: ", self.address)?;
        match self.problem {
            Problem::TooShort => f.write_str("the register image is shorter than the map"),
            Problem::OutsideMap => f.write_str("the request reaches past the end of the map"),
            Problem::BadQuantity => f.write_str("a request must cover 1 to 125 registers"),
            Problem::WrongMap => f.write_str("map id names another kind or map version"),
            Problem::Reserved => f.write_str("a reserved bit or value is set"),
            Problem::OutOfRange => f.write_str("value outside its limits"),
            Problem::NotInMap => f.write_str("metric is not in this kind's map"),
            Problem::HalfBand => {
                f.write_str("raise and clear must both be 0x8000 (level off) or both be set")
            }
            Problem::UnknownRule => f.write_str("the rule is not in the device's rule set"),
            Problem::Rule(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for RegisterError {}

/// Checks a request's address range against a map of `len` registers.
pub fn check_range(len: usize, address: u16, quantity: usize) -> Result<(), RegisterError> {
    // Modbus limits a read to 125 registers and a write to 123.
    if quantity == 0 || quantity > 125 {
        return Err(RegisterError::new(address, Problem::BadQuantity));
    }
    if usize::from(address) + quantity > len {
        return Err(RegisterError::new(address, Problem::OutsideMap));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anquan_edge_rules::defaults;

    #[test]
    fn maps_fit_and_name_default_rules() {
        for kind in DeviceKind::ALL {
            let map = map_for(kind);
            assert_eq!(map.kind, kind);
            assert!(map.input_len() <= MAX_INPUT_REGISTERS);
            assert!(map.holding_len() <= MAX_HOLDING_REGISTERS);
            assert!(map.thresholds.len() <= MAX_THRESHOLDS);
            assert!(
                map.thresholds.len() <= 16,
                "enable bits fit in one register"
            );
            assert_eq!(map_by_id(map.map_id()), Some(map));
            let rules = defaults::for_kind(kind);
            for b in map.thresholds {
                let rule = rules.get(b.rule).unwrap_or_else(|| panic!("{}", b.rule));
                let (metric, direction, rate) = match &rule.kind {
                    anquan_edge_rules::RuleKind::Threshold {
                        metric, direction, ..
                    } => (*metric, *direction, false),
                    anquan_edge_rules::RuleKind::RateOfChange {
                        metric, direction, ..
                    } => (*metric, *direction, true),
                    other => panic!("{}: {other:?}", b.rule),
                };
                assert_eq!((metric, direction, rate), (b.metric, b.direction, b.rate));
            }
        }
        assert_eq!(map_for(DeviceKind::Crane).map_id(), 0x0401);
        assert_eq!(map_by_id(0x0402), None);
    }

    #[test]
    fn addresses() {
        let m = map_for(DeviceKind::Gas);
        assert_eq!(m.input_len(), 15);
        assert_eq!(m.holding_len(), 21);
        assert_eq!(m.reading_address(Metric::CoPpm), Some(10));
        assert_eq!(m.channel_fault_address(Metric::LelPct), Some(12));
        assert_eq!(m.threshold_address("gas.co"), Some(13));
        assert_eq!(m.reading_address(Metric::WindMs), None);
        assert_eq!(check_range(15, 0, 15), Ok(()));
        let e = check_range(15, 1, 15).unwrap_err();
        assert_eq!(e.exception(), Exception::IllegalDataAddress);
        let e = check_range(15, 0, 0).unwrap_err();
        assert_eq!(e.exception(), Exception::IllegalDataValue);
    }
}
