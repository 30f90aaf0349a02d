//! Working hours: when a device is expected to be heard.
//!
//! A crane is keyed off after work and a venue switches its power off at
//! closing time; their silence then is no outage. A rule set's [`Hours`]
//! say when silence counts: an offline rule judges only the silence that
//! falls inside them, and a last will received outside them raises nothing.
//!
//! Hours are a weekly pattern in local time at a fixed UTC offset (China
//! has one time zone and no daylight saving): up to [`MAX_SPANS`] spans,
//! each a stretch of the week in minutes from Monday 00:00. Time is passed
//! in as Unix milliseconds and never read.

use core::fmt;

/// Most spans of one weekly pattern: two shifts a day, every day, with room
/// for one that wraps past Sunday midnight.
pub const MAX_SPANS: usize = 16;

/// Minutes in a week.
pub const WEEK_MIN: u16 = 7 * 1440;

const MINUTE_MS: u64 = 60_000;
const WEEK_MS: u64 = WEEK_MIN as u64 * MINUTE_MS;
/// 1970-01-01 was a Thursday: Unix time plus three days is time since a
/// Monday 00:00.
const MONDAY_SHIFT_MS: i128 = 3 * 1440 * MINUTE_MS as i128;

/// China Standard Time, the default offset of a schedule.
pub const CHINA_OFFSET_MIN: i16 = 8 * 60;

/// One stretch of the week, `[start, end)` in minutes from Monday 00:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First minute inside.
    pub start: u16,
    /// First minute after (`start < end <= WEEK_MIN`).
    pub end: u16,
}

/// Why a span cannot be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoursError {
    /// `start >= end` or past the end of the week.
    Empty,
    /// It overlaps span number `with` (in the order they were added).
    Overlap {
        /// The span already there.
        with: usize,
    },
    /// More than [`MAX_SPANS`] spans.
    TooMany,
    /// An offset beyond −12:00 … +14:00.
    BadOffset,
}

impl fmt::Display for HoursError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty (its end is not after its start)"),
            Self::Overlap { with } => write!(f, "overlaps span {with}"),
            Self::TooMany => write!(f, "more than {MAX_SPANS} spans in a week"),
            Self::BadOffset => f.write_str("utc_offset must be between -12:00 and +14:00"),
        }
    }
}

impl core::error::Error for HoursError {}

/// A weekly pattern of working hours; no span at all means always.
#[derive(Clone, Copy)]
pub struct Hours {
    utc_offset_min: i16,
    len: u8,
    /// Sorted by start; `added[i]` is the order span `i` was added in, so an
    /// overlap names the caller's span.
    spans: [Span; MAX_SPANS],
    added: [u8; MAX_SPANS],
}

impl fmt::Debug for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_always() {
            return f.write_str("Hours::ALWAYS");
        }
        f.debug_struct("Hours")
            .field("utc_offset_min", &self.utc_offset_min)
            .field("spans", &self.spans())
            .finish()
    }
}

/// Two patterns are equal when they cover the same time, whatever order
/// their spans were given in.
impl PartialEq for Hours {
    fn eq(&self, other: &Self) -> bool {
        self.utc_offset_min == other.utc_offset_min && self.spans() == other.spans()
    }
}

impl Eq for Hours {}

impl Default for Hours {
    fn default() -> Self {
        Self::ALWAYS
    }
}

impl Hours {
    /// No schedule: silence counts at any time.
    pub const ALWAYS: Self = Self {
        utc_offset_min: CHINA_OFFSET_MIN,
        len: 0,
        spans: [Span { start: 0, end: 0 }; MAX_SPANS],
        added: [0; MAX_SPANS],
    };

    /// An empty pattern at `utc_offset_min` (add spans with [`Self::push`];
    /// without any it means always).
    pub fn new(utc_offset_min: i16) -> Result<Self, HoursError> {
        if !(-12 * 60..=14 * 60).contains(&utc_offset_min) {
            return Err(HoursError::BadOffset);
        }
        Ok(Self {
            utc_offset_min,
            ..Self::ALWAYS
        })
    }

    /// Adds `[start, end)`, minutes from Monday 00:00 local time. Spans may
    /// touch but not overlap.
    pub fn push(&mut self, start: u16, end: u16) -> Result<(), HoursError> {
        if start >= end || end > WEEK_MIN {
            return Err(HoursError::Empty);
        }
        let n = usize::from(self.len);
        for (i, s) in self.spans().iter().enumerate() {
            if start < s.end && s.start < end {
                return Err(HoursError::Overlap {
                    with: usize::from(self.added[i]),
                });
            }
        }
        if n == MAX_SPANS {
            return Err(HoursError::TooMany);
        }
        // Insert in start order.
        let at = self
            .spans()
            .iter()
            .position(|s| s.start > start)
            .unwrap_or(n);
        let mut i = n;
        while i > at {
            self.spans[i] = self.spans[i - 1];
            self.added[i] = self.added[i - 1];
            i -= 1;
        }
        self.spans[at] = Span { start, end };
        self.added[at] = self.len;
        self.len += 1;
        Ok(())
    }

    /// Whether there is no schedule (silence always counts).
    pub fn is_always(&self) -> bool {
        self.len == 0
    }

    /// The offset of local time from UTC, minutes.
    pub fn utc_offset_min(&self) -> i16 {
        self.utc_offset_min
    }

    /// The spans, in week order.
    pub fn spans(&self) -> &[Span] {
        &self.spans[..usize::from(self.len)]
    }

    /// Milliseconds since the local Monday 00:00 of `unix_ms`'s week.
    fn week_pos(&self, unix_ms: u64) -> u64 {
        let local = i128::from(unix_ms)
            + i128::from(self.utc_offset_min) * i128::from(MINUTE_MS)
            + MONDAY_SHIFT_MS;
        // In 0..WEEK_MS, so the cast is exact.
        local.rem_euclid(i128::from(WEEK_MS)) as u64
    }

    /// Whether `unix_ms` falls inside the hours.
    pub fn contains(&self, unix_ms: u64) -> bool {
        if self.is_always() {
            return true;
        }
        let pos = self.week_pos(unix_ms);
        self.spans()
            .iter()
            .any(|s| pos >= u64::from(s.start) * MINUTE_MS && pos < u64::from(s.end) * MINUTE_MS)
    }

    /// Working time in `[a, b)` ms of the week (`a <= b <= WEEK_MS`).
    fn overlap(&self, a: u64, b: u64) -> u64 {
        self.spans()
            .iter()
            .map(|s| {
                let (s0, s1) = (u64::from(s.start) * MINUTE_MS, u64::from(s.end) * MINUTE_MS);
                b.min(s1).saturating_sub(a.max(s0))
            })
            .sum()
    }

    /// How much of `[from_ms, to_ms)` is inside the hours, in ms (all of it
    /// without a schedule; 0 when `to_ms <= from_ms`).
    pub fn working_ms(&self, from_ms: u64, to_ms: u64) -> u64 {
        let span = to_ms.saturating_sub(from_ms);
        if span == 0 || self.is_always() {
            return span;
        }
        let weekly = self.overlap(0, WEEK_MS);
        let (weeks, rest) = (span / WEEK_MS, span % WEEK_MS);
        let a = self.week_pos(from_ms);
        let b = a + rest;
        let partial = if b <= WEEK_MS {
            self.overlap(a, b)
        } else {
            self.overlap(a, WEEK_MS) + self.overlap(0, b - WEEK_MS)
        };
        weeks.saturating_mul(weekly).saturating_add(partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-11-25 00:00 +08:00, a Monday, as Unix ms.
    const MON: u64 = 1_732_464_000_000;
    const H: u64 = 3_600_000;
    const DAY: u64 = 24 * H;

    fn weekdays_7_to_19() -> Hours {
        let mut h = Hours::new(CHINA_OFFSET_MIN).unwrap();
        for d in 0..5u16 {
            h.push(d * 1440 + 7 * 60, d * 1440 + 19 * 60).unwrap();
        }
        h
    }

    #[test]
    fn contains_follows_local_time() {
        let h = weekdays_7_to_19();
        assert!(!h.contains(MON + 6 * H + 59 * 60_000));
        assert!(h.contains(MON + 7 * H));
        assert!(h.contains(MON + 19 * H - 1));
        assert!(!h.contains(MON + 19 * H));
        // Saturday is off.
        assert!(!h.contains(MON + 5 * DAY + 12 * H));
        // The same instant one week earlier and later.
        assert!(h.contains(MON - 7 * DAY + 8 * H));
        assert!(h.contains(MON + 7 * DAY + 8 * H));
        assert!(Hours::ALWAYS.contains(0));
    }

    #[test]
    fn working_time_counts_only_inside() {
        let h = weekdays_7_to_19();
        // Friday 18:00 to Monday 08:00: one hour on Friday, one on Monday.
        let fri = MON + 4 * DAY;
        assert_eq!(h.working_ms(fri + 18 * H, MON + 7 * DAY + 8 * H), 2 * H);
        // A whole week and a bit: 60 h plus the bit.
        assert_eq!(h.working_ms(MON, MON + 7 * DAY + 8 * H), 60 * H + H);
        // Outside only.
        assert_eq!(h.working_ms(MON + 20 * H, MON + 30 * H), 0);
        assert_eq!(h.working_ms(MON + 30 * H, MON + 20 * H), 0);
        assert_eq!(Hours::ALWAYS.working_ms(5, 17), 12);
    }

    #[test]
    fn a_span_may_wrap_at_midnight_and_spans_may_touch() {
        let mut h = Hours::new(CHINA_OFFSET_MIN).unwrap();
        // Sunday 22:00 to the end of the week, and Monday 00:00 to 06:00.
        h.push(WEEK_MIN - 120, WEEK_MIN).unwrap();
        h.push(0, 360).unwrap();
        assert!(h.contains(MON - H));
        assert!(h.contains(MON + 5 * H));
        assert!(!h.contains(MON + 6 * H));
        assert_eq!(h.working_ms(MON - 3 * H, MON + 7 * H), 8 * H);
    }

    #[test]
    fn overlaps_and_empty_spans_are_refused() {
        let mut h = weekdays_7_to_19();
        assert_eq!(
            h.push(18 * 60, 20 * 60),
            Err(HoursError::Overlap { with: 0 })
        );
        assert_eq!(
            h.push(2 * 1440 + 6 * 60, 2 * 1440 + 8 * 60),
            Err(HoursError::Overlap { with: 2 })
        );
        assert_eq!(h.push(100, 100), Err(HoursError::Empty));
        assert_eq!(h.push(100, WEEK_MIN + 1), Err(HoursError::Empty));
        assert_eq!(Hours::new(15 * 60), Err(HoursError::BadOffset));
        let mut full = Hours::new(0).unwrap();
        for i in 0..MAX_SPANS as u16 {
            full.push(i * 10, i * 10 + 5).unwrap();
        }
        assert_eq!(full.push(1000, 1001), Err(HoursError::TooMany));
    }

    #[test]
    fn other_offsets_shift_the_week() {
        // UTC: Monday 00:00 UTC is Monday 08:00 in China.
        let mut utc = Hours::new(0).unwrap();
        utc.push(0, 60).unwrap();
        assert!(utc.contains(MON + 8 * H));
        assert!(!utc.contains(MON));
        let mut west = Hours::new(-5 * 60).unwrap();
        west.push(0, 60).unwrap();
        assert!(west.contains(MON + 13 * H));
    }
}
