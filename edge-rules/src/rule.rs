//! Rule definitions: what to watch and when to raise, escalate, downgrade and
//! clear.

use core::fmt;

use anquan_protocol::{FaultSet, Level, Metric, RuleId};

use crate::MAX_CONDITIONS;

/// Which side of a threshold is dangerous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// High values are dangerous (gas concentration, temperature).
    Above,
    /// Low values are dangerous (fire-water pressure, a falling rate).
    Below,
}

impl Direction {
    /// Whether `v` has crossed `raise` (inclusive).
    #[inline]
    pub fn crossed(self, v: f32, raise: f32) -> bool {
        match self {
            Self::Above => v >= raise,
            Self::Below => v <= raise,
        }
    }

    /// Whether an active level still holds at `v`: it has not fallen back
    /// past `clear` (inclusive on the active side).
    #[inline]
    pub fn holds(self, v: f32, clear: f32) -> bool {
        match self {
            Self::Above => v >= clear,
            Self::Below => v <= clear,
        }
    }

    /// The wire/config name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
        }
    }
}

/// A raise threshold and the clear threshold that gives it hysteresis.
///
/// For an `above` rule `clear < raise`: the level is entered at
/// `value >= raise` and left only when `value < clear`, so noise between the
/// two never flaps the alarm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// Enter the level when the value crosses this.
    pub raise: f32,
    /// Leave the level when the value falls back past this.
    pub clear: f32,
}

impl Band {
    /// A band.
    pub const fn new(raise: f32, clear: f32) -> Self {
        Self { raise, clear }
    }
}

/// Up to one band per level, indexed by [`Level::index`]. A rule may define
/// any subset of the four levels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Levels(pub [Option<Band>; 4]);

impl Levels {
    /// No level defined.
    pub const NONE: Self = Self([None; 4]);

    /// Sets one level.
    pub const fn with(mut self, level: Level, band: Band) -> Self {
        self.0[level as usize] = Some(band);
        self
    }

    /// The band of `level`.
    #[inline]
    pub fn get(&self, level: Level) -> Option<Band> {
        self.0[level.index()]
    }

    /// Replaces or removes the band of `level`.
    pub fn set(&mut self, level: Level, band: Option<Band>) {
        self.0[level.index()] = band;
    }

    /// The defined levels, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = (Level, Band)> + '_ {
        Level::ALL
            .into_iter()
            .filter_map(|l| self.get(l).map(|b| (l, b)))
    }
}

/// How long a new state must persist before it is reported.
///
/// Both parts must be met: `samples` consecutive samples pointing the same
/// way, spanning at least `ms` milliseconds. `samples = 1, ms = 0` reports at
/// once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Debounce {
    /// Consecutive samples, at least 1.
    pub samples: u8,
    /// Minimum persistence, in milliseconds.
    pub ms: u32,
}

impl Debounce {
    /// Report at the first sample.
    pub const IMMEDIATE: Self = Self { samples: 1, ms: 0 };

    /// `n` consecutive samples.
    pub const fn samples(n: u8) -> Self {
        Self { samples: n, ms: 0 }
    }
}

impl Default for Debounce {
    fn default() -> Self {
        Self::IMMEDIATE
    }
}

/// One condition of an all-of combination rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// The reading.
    pub metric: Metric,
    /// Which side is dangerous.
    pub direction: Direction,
    /// The condition becomes true at this value.
    pub raise: f32,
    /// And false again past this one (hysteresis).
    pub clear: f32,
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// A reading against up to four graded thresholds.
    Threshold {
        /// The reading.
        metric: Metric,
        /// Which side is dangerous.
        direction: Direction,
        /// Bands per level.
        levels: Levels,
    },
    /// The change of a reading per minute, measured over `window_ms`,
    /// against graded thresholds (a pressure drop is `below` with negative
    /// thresholds).
    RateOfChange {
        /// The reading.
        metric: Metric,
        /// Which side is dangerous.
        direction: Direction,
        /// The span the rate is measured over.
        window_ms: u32,
        /// Bands per level, in units per minute.
        levels: Levels,
    },
    /// All conditions at once (crane moment high AND wind high).
    AllOf {
        /// The conditions; all must hold.
        conditions: heapless::Vec<Condition, MAX_CONDITIONS>,
        /// The level raised.
        level: Level,
    },
    /// No frame for `after_ms`, or the broker reported the device offline.
    Offline {
        /// Silence that makes the device offline (3 report periods by default).
        after_ms: u32,
        /// The level raised.
        level: Level,
    },
    /// The frame reports a fault with one of `codes`.
    Fault {
        /// The codes this rule reacts to.
        codes: FaultSet,
        /// The level raised.
        level: Level,
    },
}

impl RuleKind {
    /// The config name of the rule type.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Threshold { .. } => "threshold",
            Self::RateOfChange { .. } => "rate_of_change",
            Self::AllOf { .. } => "all_of",
            Self::Offline { .. } => "offline",
            Self::Fault { .. } => "fault",
        }
    }
}

/// A rule: an id, a kind, a debounce.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Stable id, part of every alarm event (`gas.lel`).
    pub id: RuleId,
    /// Disabled rules are kept (so a site can switch them on) but never fire.
    pub enabled: bool,
    /// Persistence required before a transition is reported.
    pub debounce: Debounce,
    /// What the rule watches.
    pub kind: RuleKind,
}

/// Why a rule (or a rule set) is invalid. Messages name the level or
/// condition at fault so that a rules file error can point at the key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RuleError {
    /// A threshold or rate rule defines no level.
    NoLevels,
    /// A threshold is NaN or infinite.
    NotFinite,
    /// `clear` is on the wrong side of `raise` (or equal: no hysteresis).
    ClearNotBeforeRaise {
        /// The level.
        level: Level,
        /// Raise threshold.
        raise: f32,
        /// Clear threshold.
        clear: f32,
        /// The rule's direction.
        direction: Direction,
    },
    /// Higher levels must need a more extreme value than lower ones.
    LevelsOutOfOrder {
        /// The lower level.
        lower: Level,
        /// The higher level whose raise threshold is not more extreme.
        higher: Level,
    },
    /// Debounce of 0 samples.
    ZeroSamples,
    /// A rate window shorter than 1 s.
    WindowTooShort,
    /// An offline timeout shorter than 1 s.
    OfflineTooShort,
    /// An all-of rule without conditions.
    NoConditions,
    /// An all-of condition with `clear` on the wrong side of `raise`.
    BadCondition {
        /// Index of the condition.
        index: usize,
    },
    /// A fault rule reacting to no code.
    NoFaultCodes,
    /// More rules than [`crate::MAX_RULES`].
    TooManyRules,
    /// More rate-of-change rules than [`crate::MAX_RATE_RULES`].
    TooManyRateRules,
    /// Two rules with the same id.
    DuplicateId,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoLevels => f.write_str("defines no level (blue, yellow, orange or red)"),
            Self::NotFinite => f.write_str("a threshold is not a finite number"),
            Self::ClearNotBeforeRaise {
                level,
                raise,
                clear,
                direction,
            } => {
                let side = match direction {
                    Direction::Above => "below",
                    Direction::Below => "above",
                };
                write!(
                    f,
                    "{level}.clear ({clear}) must be {side} {level}.raise ({raise}) in a rule with direction `{}`",
                    direction.as_str()
                )
            }
            Self::LevelsOutOfOrder { lower, higher } => write!(
                f,
                "{higher}.raise must be more extreme than {lower}.raise (levels go blue < yellow < orange < red)"
            ),
            Self::ZeroSamples => f.write_str("debounce.samples must be at least 1"),
            Self::WindowTooShort => f.write_str("window_s must be at least 1 second"),
            Self::OfflineTooShort => f.write_str("after_s must be at least 1 second"),
            Self::NoConditions => f.write_str("an all_of rule needs at least one condition"),
            Self::BadCondition { index } => write!(
                f,
                "conditions[{index}]: clear must be on the safe side of the raise value, and both finite"
            ),
            Self::NoFaultCodes => f.write_str("a fault rule needs at least one code"),
            Self::TooManyRules => write!(f, "more than {} rules for one device", crate::MAX_RULES),
            Self::TooManyRateRules => write!(
                f,
                "more than {} rate_of_change rules for one device",
                crate::MAX_RATE_RULES
            ),
            Self::DuplicateId => f.write_str("a rule with this id already exists"),
        }
    }
}

impl core::error::Error for RuleError {}

fn check_levels(direction: Direction, levels: &Levels) -> Result<(), RuleError> {
    let mut prev: Option<(Level, Band)> = None;
    for (level, band) in levels.iter() {
        if !band.raise.is_finite() || !band.clear.is_finite() {
            return Err(RuleError::NotFinite);
        }
        // Strict: clear == raise would give no hysteresis at all.
        if direction.holds(band.clear, band.raise) {
            return Err(RuleError::ClearNotBeforeRaise {
                level,
                raise: band.raise,
                clear: band.clear,
                direction,
            });
        }
        if let Some((lower, lb)) = prev
            && direction.crossed(lb.raise, band.raise)
        {
            return Err(RuleError::LevelsOutOfOrder {
                lower,
                higher: level,
            });
        }
        prev = Some((level, band));
    }
    if prev.is_none() {
        return Err(RuleError::NoLevels);
    }
    Ok(())
}

impl Rule {
    /// Checks the rule's own consistency.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.debounce.samples == 0 {
            return Err(RuleError::ZeroSamples);
        }
        match &self.kind {
            RuleKind::Threshold {
                direction, levels, ..
            } => check_levels(*direction, levels),
            RuleKind::RateOfChange {
                direction,
                window_ms,
                levels,
                ..
            } => {
                if *window_ms < 1000 {
                    return Err(RuleError::WindowTooShort);
                }
                check_levels(*direction, levels)
            }
            RuleKind::AllOf { conditions, .. } => {
                if conditions.is_empty() {
                    return Err(RuleError::NoConditions);
                }
                for (index, c) in conditions.iter().enumerate() {
                    let ok = c.raise.is_finite()
                        && c.clear.is_finite()
                        && !c.direction.holds(c.clear, c.raise);
                    if !ok {
                        return Err(RuleError::BadCondition { index });
                    }
                }
                Ok(())
            }
            RuleKind::Offline { after_ms, .. } => {
                if *after_ms < 1000 {
                    Err(RuleError::OfflineTooShort)
                } else {
                    Ok(())
                }
            }
            RuleKind::Fault { codes, .. } => {
                if codes.is_empty() {
                    Err(RuleError::NoFaultCodes)
                } else {
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(direction: Direction, levels: Levels) -> Rule {
        Rule {
            id: RuleId::new("t").unwrap(),
            enabled: true,
            debounce: Debounce::IMMEDIATE,
            kind: RuleKind::Threshold {
                metric: Metric::LelPct,
                direction,
                levels,
            },
        }
    }

    #[test]
    fn accepts_well_formed_levels() {
        let l = Levels::NONE
            .with(Level::Yellow, Band::new(25.0, 20.0))
            .with(Level::Red, Band::new(50.0, 40.0));
        assert_eq!(threshold(Direction::Above, l).validate(), Ok(()));
        let l = Levels::NONE
            .with(Level::Yellow, Band::new(0.10, 0.12))
            .with(Level::Red, Band::new(0.05, 0.07));
        assert_eq!(threshold(Direction::Below, l).validate(), Ok(()));
    }

    #[test]
    fn rejects_missing_hysteresis() {
        let l = Levels::NONE.with(Level::Red, Band::new(50.0, 50.0));
        assert!(matches!(
            threshold(Direction::Above, l).validate(),
            Err(RuleError::ClearNotBeforeRaise {
                level: Level::Red,
                ..
            })
        ));
        let l = Levels::NONE.with(Level::Red, Band::new(0.1, 0.05));
        assert!(matches!(
            threshold(Direction::Below, l).validate(),
            Err(RuleError::ClearNotBeforeRaise { .. })
        ));
    }

    #[test]
    fn rejects_levels_out_of_order() {
        let l = Levels::NONE
            .with(Level::Yellow, Band::new(50.0, 40.0))
            .with(Level::Red, Band::new(25.0, 20.0));
        assert_eq!(
            threshold(Direction::Above, l).validate(),
            Err(RuleError::LevelsOutOfOrder {
                lower: Level::Yellow,
                higher: Level::Red
            })
        );
    }

    #[test]
    fn rejects_empty_and_non_finite() {
        assert_eq!(
            threshold(Direction::Above, Levels::NONE).validate(),
            Err(RuleError::NoLevels)
        );
        let l = Levels::NONE.with(Level::Red, Band::new(f32::NAN, 1.0));
        assert_eq!(
            threshold(Direction::Above, l).validate(),
            Err(RuleError::NotFinite)
        );
        let mut r = threshold(
            Direction::Above,
            Levels::NONE.with(Level::Red, Band::new(2.0, 1.0)),
        );
        r.debounce.samples = 0;
        assert_eq!(r.validate(), Err(RuleError::ZeroSamples));
    }
}
