//! Risk levels and alarm transitions.

use core::fmt;

use serde::{Deserialize, Serialize};

/// The four risk levels of the 红橙黄蓝 grading, ordered by severity:
/// `Blue < Yellow < Orange < Red`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Level {
    /// 低: low risk, watch.
    Blue = 0,
    /// 一般: general risk, handle within the shift.
    Yellow = 1,
    /// 较大: major risk, act quickly.
    Orange = 2,
    /// 重大: severe risk, act now.
    Red = 3,
}

impl Level {
    /// Every level, from the lowest to the highest.
    pub const ALL: [Self; 4] = [Self::Blue, Self::Yellow, Self::Orange, Self::Red];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Blue => "blue",
            Self::Yellow => "yellow",
            Self::Orange => "orange",
            Self::Red => "red",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// 0 for blue … 3 for red.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// The rule went from quiet to a level.
    Raised,
    /// The rule moved to a higher level.
    Escalated,
    /// The rule moved to a lower, still active level.
    Downgraded,
    /// The rule went quiet again.
    Cleared,
}

impl AlarmState {
    /// Every state.
    pub const ALL: [Self; 4] = [
        Self::Raised,
        Self::Escalated,
        Self::Downgraded,
        Self::Cleared,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Escalated => "escalated",
            Self::Downgraded => "downgraded",
            Self::Cleared => "cleared",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The transition between two alarm levels, `None` meaning quiet; `None`
    /// when nothing changed.
    pub fn between(from: Option<Level>, to: Option<Level>) -> Option<Self> {
        match (from, to) {
            (None, Some(_)) => Some(Self::Raised),
            (Some(_), None) => Some(Self::Cleared),
            (Some(a), Some(b)) if b > a => Some(Self::Escalated),
            (Some(a), Some(b)) if b < a => Some(Self::Downgraded),
            _ => None,
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_by_severity() {
        assert!(Level::Blue < Level::Yellow);
        assert!(Level::Yellow < Level::Orange);
        assert!(Level::Orange < Level::Red);
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(l));
            assert_eq!(Level::ALL[l.index()], l);
        }
    }

    #[test]
    fn transitions_between_levels() {
        use AlarmState::*;
        use Level::*;
        assert_eq!(AlarmState::between(None, Some(Blue)), Some(Raised));
        assert_eq!(AlarmState::between(Some(Blue), Some(Red)), Some(Escalated));
        assert_eq!(
            AlarmState::between(Some(Red), Some(Yellow)),
            Some(Downgraded)
        );
        assert_eq!(AlarmState::between(Some(Red), None), Some(Cleared));
        assert_eq!(AlarmState::between(Some(Red), Some(Red)), None);
        assert_eq!(AlarmState::between(None, None), None);
        for s in AlarmState::ALL {
            assert_eq!(AlarmState::parse(s.as_str()), Some(s));
        }
    }
}
