//! Holding registers: timing, local alarm outputs and rule thresholds.

use anquan_edge_rules::{Band, Levels, RuleError, RuleKind, RuleSet};
use anquan_protocol::Level;

use super::{
    HR_BUZZER_LEVEL, HR_RELAY_LEVEL, HR_REPORT_PERIOD_S, HR_RULES_ENABLED, HR_SAMPLE_PERIOD_MS,
    HR_THRESHOLDS, MAX_THRESHOLDS, Problem, REGS_PER_THRESHOLD, RegisterError, RegisterMap,
};
use crate::config::limits;
use crate::scale::{self, ABSENT};

/// One threshold block: whether the rule is enabled and its bands.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Threshold {
    /// Enabled.
    pub enabled: bool,
    /// Bands per level (per minute for rate rules).
    pub levels: Levels,
}

/// What the holding registers carry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// Report period, s.
    pub report_period_s: u16,
    /// Sample period, ms.
    pub sample_period_ms: u16,
    /// Buzzer level.
    pub buzzer: Option<Level>,
    /// Relay level.
    pub relay: Option<Level>,
    /// One per threshold block of the map, in order.
    pub thresholds: heapless::Vec<Threshold, MAX_THRESHOLDS>,
}

fn level_code(l: Option<Level>) -> u16 {
    l.map_or(0, |l| l as u16 + 1)
}

fn level_of(code: u16, address: u16) -> Result<Option<Level>, RegisterError> {
    match code {
        0 => Ok(None),
        n => Level::ALL
            .get(usize::from(n) - 1)
            .copied()
            .map(Some)
            .ok_or(RegisterError::new(address, Problem::OutOfRange)),
    }
}

fn block_address(i: usize) -> u16 {
    HR_THRESHOLDS + REGS_PER_THRESHOLD * i as u16
}

/// The register of `level`'s raise (clear is the next one) in block `i`.
fn band_address(i: usize, level: Level) -> u16 {
    block_address(i) + 2 * level as u16
}

impl Settings {
    /// The settings a device with these periods, outputs and rules shows.
    /// A block whose rule is missing from `rules` shows disabled and empty.
    pub fn from_parts(
        map: &RegisterMap,
        report_period_ms: u32,
        sample_period_ms: u32,
        buzzer: Option<Level>,
        relay: Option<Level>,
        rules: &RuleSet,
    ) -> Self {
        let mut thresholds = heapless::Vec::new();
        for b in map.thresholds {
            let t = rules
                .get(b.rule)
                .and_then(|r| match &r.kind {
                    RuleKind::Threshold { levels, .. } | RuleKind::RateOfChange { levels, .. } => {
                        Some(Threshold {
                            enabled: r.enabled,
                            levels: *levels,
                        })
                    }
                    _ => None,
                })
                .unwrap_or_default();
            let _ = thresholds.push(t);
        }
        Self {
            report_period_s: u16::try_from(report_period_ms / 1000).unwrap_or(u16::MAX),
            sample_period_ms: u16::try_from(sample_period_ms).unwrap_or(u16::MAX),
            buzzer,
            relay,
            thresholds,
        }
    }

    /// A copy of `rules` with every block's enable flag and bands applied,
    /// each changed rule validated by edge-rules. The error names the
    /// register (the band's raise register, or the block's first).
    pub fn apply(&self, map: &RegisterMap, rules: &RuleSet) -> Result<RuleSet, RegisterError> {
        let mut out = rules.clone();
        for (i, (b, t)) in map.thresholds.iter().zip(&self.thresholds).enumerate() {
            let Some(rule) = rules.get(b.rule) else {
                if t.enabled || t.levels != Levels::NONE {
                    return Err(RegisterError::new(block_address(i), Problem::UnknownRule));
                }
                continue;
            };
            let mut rule = rule.clone();
            rule.enabled = t.enabled;
            match &mut rule.kind {
                RuleKind::Threshold { levels, .. } | RuleKind::RateOfChange { levels, .. } => {
                    *levels = t.levels;
                }
                _ => return Err(RegisterError::new(block_address(i), Problem::UnknownRule)),
            }
            out.replace(rule).map_err(|e| {
                let address = match e {
                    RuleError::ClearNotBeforeRaise { level, .. } => band_address(i, level) + 1,
                    RuleError::LevelsOutOfOrder { higher, .. } => band_address(i, higher),
                    _ => block_address(i),
                };
                RegisterError::new(address, Problem::Rule(e))
            })?;
        }
        Ok(out)
    }
}

/// Encodes `settings` into `out` (at least `map.holding_len()` registers).
pub fn encode_holding_registers(
    map: &RegisterMap,
    settings: &Settings,
    out: &mut [u16],
) -> Result<usize, RegisterError> {
    let len = map.holding_len();
    if out.len() < len {
        return Err(RegisterError::new(out.len() as u16, Problem::TooShort));
    }
    let out = &mut out[..len];
    out[usize::from(HR_REPORT_PERIOD_S)] = settings.report_period_s;
    out[usize::from(HR_SAMPLE_PERIOD_MS)] = settings.sample_period_ms;
    out[usize::from(HR_BUZZER_LEVEL)] = level_code(settings.buzzer);
    out[usize::from(HR_RELAY_LEVEL)] = level_code(settings.relay);
    let mut enabled = 0u16;
    for (i, b) in map.thresholds.iter().enumerate() {
        let t = settings.thresholds.get(i).copied().unwrap_or_default();
        if t.enabled {
            enabled |= 1 << i;
        }
        for level in Level::ALL {
            let at = usize::from(band_address(i, level));
            let (raise, clear) = match t.levels.get(level) {
                None => (ABSENT, ABSENT),
                Some(band) => {
                    let raw = |v| {
                        scale::to_raw_any(b.metric, v)
                            .ok_or(RegisterError::new(at as u16, Problem::OutOfRange))
                    };
                    (raw(band.raise)?, raw(band.clear)?)
                }
            };
            out[at] = raise as u16;
            out[at + 1] = clear as u16;
        }
    }
    out[usize::from(HR_RULES_ENABLED)] = enabled;
    Ok(len)
}

/// Decodes and checks a holding register image (the map's registers from
/// address 0). Rule consistency is checked by [`Settings::apply`].
pub fn decode_holding_registers(
    map: &RegisterMap,
    regs: &[u16],
) -> Result<Settings, RegisterError> {
    let len = map.holding_len();
    if regs.len() < len {
        return Err(RegisterError::new(regs.len() as u16, Problem::TooShort));
    }
    let report_s = regs[usize::from(HR_REPORT_PERIOD_S)];
    let sample_ms = regs[usize::from(HR_SAMPLE_PERIOD_MS)];
    let (lo, hi) = limits::SAMPLE_PERIOD_MS;
    if !(lo..=hi).contains(&u32::from(sample_ms)) {
        return Err(RegisterError::new(HR_SAMPLE_PERIOD_MS, Problem::OutOfRange));
    }
    let (lo, hi) = limits::REPORT_PERIOD_MS;
    let report_ms = u32::from(report_s) * 1000;
    if !(lo..=hi).contains(&report_ms) || report_ms < u32::from(sample_ms) {
        return Err(RegisterError::new(HR_REPORT_PERIOD_S, Problem::OutOfRange));
    }
    let buzzer = level_of(regs[usize::from(HR_BUZZER_LEVEL)], HR_BUZZER_LEVEL)?;
    let relay = level_of(regs[usize::from(HR_RELAY_LEVEL)], HR_RELAY_LEVEL)?;
    let enabled = regs[usize::from(HR_RULES_ENABLED)];
    if u32::from(enabled) >> map.thresholds.len() != 0 {
        return Err(RegisterError::new(HR_RULES_ENABLED, Problem::Reserved));
    }
    let mut thresholds = heapless::Vec::new();
    for (i, b) in map.thresholds.iter().enumerate() {
        let mut levels = Levels::NONE;
        for level in Level::ALL {
            let at = band_address(i, level);
            let raise = regs[usize::from(at)] as i16;
            let clear = regs[usize::from(at) + 1] as i16;
            match (raise == ABSENT, clear == ABSENT) {
                (true, true) => {}
                (false, false) => levels.set(
                    level,
                    Some(Band::new(
                        scale::from_raw_any(b.metric, raise),
                        scale::from_raw_any(b.metric, clear),
                    )),
                ),
                _ => return Err(RegisterError::new(at, Problem::HalfBand)),
            }
        }
        let _ = thresholds.push(Threshold {
            enabled: enabled & (1 << i) != 0,
            levels,
        });
    }
    Ok(Settings {
        report_period_s: report_s,
        sample_period_ms: sample_ms,
        buzzer,
        relay,
        thresholds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::{MAX_HOLDING_REGISTERS, map_for};
    use anquan_edge_rules::defaults;
    use anquan_protocol::DeviceKind;
    use proptest::prelude::*;

    fn defaults_of(kind: DeviceKind) -> (Settings, RuleSet) {
        let rules = defaults::for_kind(kind);
        let s = Settings::from_parts(
            map_for(kind),
            15_000,
            1_000,
            Some(Level::Yellow),
            Some(Level::Red),
            &rules,
        );
        (s, rules)
    }

    #[test]
    fn gas_defaults_register_by_register() {
        let map = map_for(DeviceKind::Gas);
        let (s, _) = defaults_of(DeviceKind::Gas);
        let mut regs = [0u16; MAX_HOLDING_REGISTERS];
        let n = encode_holding_registers(map, &s, &mut regs).unwrap();
        assert_eq!(n, 21);
        assert_eq!(
            regs[..n],
            [
                15, 1000, 2, 4, 0b11, // gas.lel in 0.01 %LEL: blue, yellow off
                0x8000, 0x8000, 0x8000, 0x8000, 2000, 1500, 5000, 4000,
                // gas.co in ppm: blue, yellow off
                0x8000, 0x8000, 0x8000, 0x8000, 150, 100, 300, 200,
            ]
        );
        assert_eq!(decode_holding_registers(map, &regs[..n]).unwrap(), s);
    }

    #[test]
    fn every_kind_round_trips_its_defaults_and_applies_cleanly() {
        for kind in DeviceKind::ALL {
            let map = map_for(kind);
            let (s, rules) = defaults_of(kind);
            let mut regs = [0u16; MAX_HOLDING_REGISTERS];
            let n = encode_holding_registers(map, &s, &mut regs).unwrap();
            let back = decode_holding_registers(map, &regs[..n]).unwrap();
            assert_eq!(back, s, "{kind}");
            assert_eq!(back.apply(map, &rules).unwrap(), rules, "{kind}");
        }
        // The disabled default (water.level_low) shows as such.
        let (s, _) = defaults_of(DeviceKind::WaterPressure);
        assert!(!s.thresholds[3].enabled);
        assert!(s.thresholds[2].levels.get(Level::Red).is_some());
    }

    #[test]
    fn apply_changes_thresholds_and_refuses_bad_ones() {
        let map = map_for(DeviceKind::Gas);
        let (mut s, rules) = defaults_of(DeviceKind::Gas);
        // Red at 40 %LEL, clear 30.
        s.thresholds[0]
            .levels
            .set(Level::Red, Some(Band::new(40.0, 30.0)));
        let new = s.apply(map, &rules).unwrap();
        let RuleKind::Threshold { levels, .. } = &new.get("gas.lel").unwrap().kind else {
            panic!()
        };
        assert_eq!(levels.get(Level::Red), Some(Band::new(40.0, 30.0)));
        // Clear above raise for an "above" rule: the clear register is named.
        s.thresholds[0]
            .levels
            .set(Level::Red, Some(Band::new(40.0, 45.0)));
        let e = s.apply(map, &rules).unwrap_err();
        assert_eq!(e.address, 5 + 6 + 1);
        assert!(matches!(
            e.problem,
            Problem::Rule(RuleError::ClearNotBeforeRaise { .. })
        ));
        // Red below orange: the red raise register is named.
        s.thresholds[0]
            .levels
            .set(Level::Red, Some(Band::new(20.0, 15.0)));
        assert_eq!(s.apply(map, &rules).unwrap_err().address, 5 + 6);
        // Disabling a rule keeps its bands.
        let (mut s, rules) = defaults_of(DeviceKind::Gas);
        s.thresholds[1].enabled = false;
        let new = s.apply(map, &rules).unwrap();
        assert!(!new.get("gas.co").unwrap().enabled);
        // A block whose rule the device lacks cannot be switched on.
        let mut partial = RuleSet::new();
        partial.push(rules.get("gas.lel").unwrap().clone()).unwrap();
        let e = s.apply(map, &partial).unwrap_err();
        assert_eq!(e, RegisterError::new(13, Problem::UnknownRule));
    }

    #[test]
    fn decode_checks_limits_naming_the_register() {
        let map = map_for(DeviceKind::Gas);
        let (s, _) = defaults_of(DeviceKind::Gas);
        let mut good = [0u16; 21];
        encode_holding_registers(map, &s, &mut good).unwrap();
        let bad = |addr: usize, v: u16| {
            let mut r = good;
            r[addr] = v;
            decode_holding_registers(map, &r).unwrap_err()
        };
        assert_eq!(bad(0, 0), RegisterError::new(0, Problem::OutOfRange));
        assert_eq!(bad(0, 3601), RegisterError::new(0, Problem::OutOfRange));
        assert_eq!(bad(1, 99), RegisterError::new(1, Problem::OutOfRange));
        // Report period shorter than the sample period.
        let mut r = good;
        r[0] = 1;
        r[1] = 5000;
        assert_eq!(
            decode_holding_registers(map, &r).unwrap_err(),
            RegisterError::new(0, Problem::OutOfRange)
        );
        assert_eq!(bad(2, 5), RegisterError::new(2, Problem::OutOfRange));
        assert_eq!(bad(4, 0b100), RegisterError::new(4, Problem::Reserved));
        // Half of gas.lel's orange band switched off.
        assert_eq!(bad(10, 0x8000), RegisterError::new(9, Problem::HalfBand));
        assert_eq!(
            decode_holding_registers(map, &good[..20])
                .unwrap_err()
                .problem,
            Problem::TooShort
        );
    }

    proptest! {
        #[test]
        fn round_trip(
            kind_i in 0usize..4,
            report_s in 1u16..=3600,
            sample_ms in 100u16..=1000,
            buzzer in 0u16..=4,
            relay in 0u16..=4,
            raws in proptest::collection::vec((any::<bool>(), -32767i16..=32767, -32767i16..=32767), 40),
            enabled: u16,
        ) {
            let kind = DeviceKind::ALL[kind_i];
            let map = map_for(kind);
            let mut thresholds = heapless::Vec::new();
            for (i, b) in map.thresholds.iter().enumerate() {
                let mut levels = Levels::NONE;
                for level in Level::ALL {
                    let (on, r, c) = raws[i * 4 + level as usize];
                    if on {
                        levels.set(level, Some(Band::new(
                            scale::from_raw_any(b.metric, r),
                            scale::from_raw_any(b.metric, c),
                        )));
                    }
                }
                thresholds.push(Threshold { enabled: enabled & (1 << i) != 0, levels }).unwrap();
            }
            let s = Settings {
                report_period_s: report_s,
                sample_period_ms: sample_ms,
                buzzer: level_of(buzzer, 2).unwrap(),
                relay: level_of(relay, 3).unwrap(),
                thresholds,
            };
            let mut regs = [0u16; MAX_HOLDING_REGISTERS];
            let n = encode_holding_registers(map, &s, &mut regs).unwrap();
            prop_assert_eq!(decode_holding_registers(map, &regs[..n]).unwrap(), s);
        }

        #[test]
        fn decode_and_apply_never_panic(kind_i in 0usize..4, regs in proptest::collection::vec(any::<u16>(), 0..50)) {
            let kind = DeviceKind::ALL[kind_i];
            let map = map_for(kind);
            if let Ok(s) = decode_holding_registers(map, &regs) {
                let _ = s.apply(map, &defaults::for_kind(kind));
            }
        }
    }
}
