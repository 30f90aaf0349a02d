//! The duty rota (值班表): who is on duty in a role for a region at a given
//! moment. Pure: entries, dated overrides and holidays in, people out; the
//! time is passed in.
//!
//! An entry is either always on (no `days`, no window: the old absolute
//! roster), bounded by absolute times (`from_ms`/`until_ms`), or a
//! recurring shift: on some weekdays (`days`, Monday = 1), from `start_min`
//! to `end_min` minutes after midnight Beijing time. A shift whose end is
//! not after its start runs overnight and belongs to the day it starts on
//! (the Friday night shift is on duty early on Saturday morning even if the
//! entry has no Saturday). Holidays (法定节假日) follow the entry's
//! `holidays` rule: `work` (the default: a holiday changes nothing), `skip`
//! (not on duty on holidays) or `only` (holiday shifts).
//!
//! An override (调班) names the people on duty for one region and role on
//! one date, optionally within a window: while an override covers the
//! moment, it replaces every pattern entry of that region and role. That is
//! how a swap, a sick day or the Spring Festival roster is entered without
//! touching the weekly pattern.

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate};

/// Beijing time (CST, UTC+8) in ms.
pub const CST_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;
const DAY_MIN: i64 = 1_440;

/// Whether an entry applies on holidays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Holidays {
    /// On duty whether or not the day is a holiday.
    #[default]
    Work,
    /// Not on duty on holidays.
    Skip,
    /// Only on holidays.
    Only,
}

impl Holidays {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Work => "work",
            Self::Skip => "skip",
            Self::Only => "only",
        }
    }

    /// From [`Self::as_str`]; `None` for an unknown name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Work, Self::Skip, Self::Only]
            .into_iter()
            .find(|h| h.as_str() == s)
    }
}

/// One rota entry of a region and role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The person.
    pub person: String,
    /// Order among those on duty (lower first).
    pub rank: i64,
    /// Valid from (Unix ms); none = always.
    pub from_ms: Option<i64>,
    /// Valid until (Unix ms, exclusive); none = always.
    pub until_ms: Option<i64>,
    /// Weekdays the shift starts on, bit `d` for ISO weekday `d` (Monday =
    /// 1 … Sunday = 7); 0 = every day.
    pub days: u8,
    /// Shift window in minutes after 00:00 CST; none = the whole day.
    pub window: Option<(i64, i64)>,
    /// Holiday rule.
    pub holidays: Holidays,
}

/// A dated override for a region and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The person.
    pub person: String,
    /// Order among those on duty.
    pub rank: i64,
    /// The date (CST) the override starts on.
    pub day: NaiveDate,
    /// Window in minutes after 00:00 CST of `day` (end ≤ start: overnight);
    /// none = that whole day.
    pub window: Option<(i64, i64)>,
}

/// Weekday bits from `"1,2,3"` / `"12345"` style text (digits 1–7, commas
/// and spaces ignored); `None` when a character is not a weekday.
pub fn parse_days(s: &str) -> Option<u8> {
    let mut mask = 0u8;
    for c in s.chars() {
        match c {
            '1'..='7' => mask |= 1 << (c as u8 - b'0'),
            ',' | ' ' => {}
            _ => return None,
        }
    }
    Some(mask)
}

/// The text form of weekday bits (`"12345"`); empty for every day.
pub fn days_text(mask: u8) -> String {
    (1..=7u8)
        .filter(|d| mask & (1 << d) != 0)
        .map(|d| char::from(b'0' + d))
        .collect()
}

/// `"HH:MM"` → minutes after midnight (00:00 to 24:00).
pub fn parse_hhmm(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= DAY_MIN).then_some(h * 60 + m)
}

/// Minutes → `"HH:MM"`.
pub fn hhmm(min: i64) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// The CST date and minute of the day of `now_ms`.
pub fn local(now_ms: i64) -> (NaiveDate, i64) {
    let t = now_ms + CST_MS;
    let day = t.div_euclid(DAY_MS);
    let date = NaiveDate::from_num_days_from_ce_opt(
        i32::try_from(day + 719_163).unwrap_or(i32::MAX), // 1970-01-01 is CE day 719 163
    )
    .unwrap_or(NaiveDate::MIN);
    (date, t.rem_euclid(DAY_MS) / 60_000)
}

/// Whether a window that starts on `day` covers minute `tod` of `today`
/// (`today` is `day` or the day after).
fn covers(window: Option<(i64, i64)>, same_day: bool, tod: i64) -> bool {
    match window {
        None => same_day,
        Some((start, end)) if end > start => same_day && tod >= start && tod < end,
        // Overnight: from `start` on its day to `end` on the next.
        Some((start, end)) => {
            if same_day {
                tod >= start
            } else {
                tod < end
            }
        }
    }
}

fn weekday_bit(d: NaiveDate) -> u8 {
    1 << d.weekday().number_from_monday()
}

fn entry_on(e: &Entry, now_ms: i64, holidays: &HashSet<NaiveDate>) -> bool {
    if e.from_ms.is_some_and(|f| now_ms < f) || e.until_ms.is_some_and(|u| now_ms >= u) {
        return false;
    }
    let (today, tod) = local(now_ms);
    // The shift that covers now started today or (overnight) yesterday.
    let starts = [(today, true), (today.pred_opt().unwrap_or(today), false)];
    starts.into_iter().any(|(day, same_day)| {
        let weekday_ok = e.days == 0 || e.days & weekday_bit(day) != 0;
        let holiday = holidays.contains(&day);
        let holiday_ok = match e.holidays {
            Holidays::Work => true,
            Holidays::Skip => !holiday,
            Holidays::Only => holiday,
        };
        weekday_ok && holiday_ok && covers(e.window, same_day, tod)
    })
}

fn override_on(o: &Override, now_ms: i64) -> bool {
    let (today, tod) = local(now_ms);
    if o.day == today {
        covers(o.window, true, tod)
    } else if o.day.succ_opt() == Some(today) {
        covers(o.window, false, tod)
    } else {
        false
    }
}

/// The people on duty at `now_ms` for one region and role: the overrides
/// covering the moment if any, else the pattern entries on duty; by rank,
/// then person id, each person once.
pub fn on_duty(
    entries: &[Entry],
    overrides: &[Override],
    holidays: &HashSet<NaiveDate>,
    now_ms: i64,
) -> Vec<String> {
    let mut on: Vec<(i64, &str)> = overrides
        .iter()
        .filter(|o| override_on(o, now_ms))
        .map(|o| (o.rank, o.person.as_str()))
        .collect();
    if on.is_empty() {
        on = entries
            .iter()
            .filter(|e| entry_on(e, now_ms, holidays))
            .map(|e| (e.rank, e.person.as_str()))
            .collect();
    }
    on.sort();
    let mut out: Vec<String> = Vec::with_capacity(on.len());
    for (_, p) in on {
        if !out.iter().any(|x| x == p) {
            out.push(p.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    /// 2026-11-10 (a Tuesday) 00:00 CST.
    const TUE: i64 = 1_794_268_800_000 - CST_MS;
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn shift(person: &str, days: &str, window: Option<(&str, &str)>) -> Entry {
        Entry {
            person: person.into(),
            days: parse_days(days).unwrap(),
            window: window.map(|(a, b)| (parse_hhmm(a).unwrap(), parse_hhmm(b).unwrap())),
            ..Entry::default()
        }
    }

    #[test]
    fn local_time_is_beijing_time() {
        let (d, m) = local(TUE);
        assert_eq!(d, NaiveDate::from_ymd_opt(2026, 11, 10).unwrap());
        assert_eq!(m, 0);
        assert_eq!(d.weekday(), chrono::Weekday::Tue);
        let (d, m) = local(TUE - MIN);
        assert_eq!((d.day(), m), (9, 1_439));
    }

    #[test]
    fn parses_days_and_times() {
        assert_eq!(parse_days("12345"), Some(0b0011_1110));
        assert_eq!(parse_days("6,7"), Some(0b1100_0000));
        assert_eq!(parse_days(""), Some(0));
        assert_eq!(parse_days("8"), None);
        assert_eq!(days_text(parse_days("1,3,7").unwrap()), "137");
        assert_eq!(parse_hhmm("08:30"), Some(510));
        assert_eq!(parse_hhmm("24:00"), Some(1_440));
        assert_eq!(parse_hhmm("24:01"), None);
        assert_eq!(parse_hhmm("8:30"), None);
        assert_eq!(hhmm(510), "08:30");
        assert_eq!(Holidays::parse("only"), Some(Holidays::Only));
        assert_eq!(Holidays::parse("never"), None);
    }

    #[test]
    fn day_and_night_shifts_hand_over() {
        let es = [
            shift("day", "", Some(("08:00", "20:00"))),
            shift("night", "", Some(("20:00", "08:00"))),
        ];
        let none = HashSet::new();
        assert_eq!(on_duty(&es, &[], &none, TUE + 7 * HOUR), ["night"]);
        assert_eq!(on_duty(&es, &[], &none, TUE + 8 * HOUR), ["day"]);
        assert_eq!(on_duty(&es, &[], &none, TUE + 20 * HOUR - 1), ["day"]);
        assert_eq!(on_duty(&es, &[], &none, TUE + 20 * HOUR), ["night"]);
    }

    #[test]
    fn a_weekday_night_shift_runs_into_saturday_morning() {
        let fri_night = shift("n", "5", Some(("20:00", "08:00")));
        let none = HashSet::new();
        let fri = TUE + 3 * 24 * HOUR;
        assert!(
            on_duty(
                std::slice::from_ref(&fri_night),
                &[],
                &none,
                fri + 21 * HOUR
            )
            .len()
                == 1
        );
        assert!(
            on_duty(
                std::slice::from_ref(&fri_night),
                &[],
                &none,
                fri + 31 * HOUR
            )
            .len()
                == 1
        );
        assert!(
            on_duty(
                std::slice::from_ref(&fri_night),
                &[],
                &none,
                fri + 33 * HOUR
            )
            .is_empty()
        );
        assert!(on_duty(std::slice::from_ref(&fri_night), &[], &none, fri + 7 * HOUR).is_empty());
    }

    #[test]
    fn holidays_and_overrides() {
        let es = [
            Entry {
                holidays: Holidays::Skip,
                ..shift("weekday", "12345", None)
            },
            Entry {
                holidays: Holidays::Only,
                ..shift("holiday", "", None)
            },
        ];
        let tue = local(TUE).0;
        let mut hol = HashSet::new();
        assert_eq!(on_duty(&es, &[], &hol, TUE + HOUR), ["weekday"]);
        hol.insert(tue);
        assert_eq!(on_duty(&es, &[], &hol, TUE + HOUR), ["holiday"]);
        // An override for the afternoon replaces the pattern then only.
        let o = Override {
            person: "swap".into(),
            rank: 0,
            day: tue,
            window: Some((12 * 60, 18 * 60)),
        };
        hol.clear();
        assert_eq!(
            on_duty(&es, std::slice::from_ref(&o), &hol, TUE + 13 * HOUR),
            ["swap"]
        );
        assert_eq!(
            on_duty(&es, std::slice::from_ref(&o), &hol, TUE + 19 * HOUR),
            ["weekday"]
        );
    }

    #[test]
    fn absolute_windows_and_ranks() {
        let es = [
            Entry {
                person: "b".into(),
                rank: 1,
                ..Entry::default()
            },
            Entry {
                person: "a".into(),
                rank: 0,
                from_ms: Some(TUE),
                until_ms: Some(TUE + HOUR),
                ..Entry::default()
            },
            Entry {
                person: "b".into(),
                rank: 5,
                ..Entry::default()
            },
        ];
        let none = HashSet::new();
        assert_eq!(on_duty(&es, &[], &none, TUE), ["a", "b"]);
        assert_eq!(on_duty(&es, &[], &none, TUE + HOUR), ["b"]);
        assert_eq!(on_duty(&es, &[], &none, TUE - 1), ["b"]);
    }

    proptest! {
        /// A 24-hour pattern cut into consecutive shifts has exactly one
        /// person on duty at every moment of every day.
        #[test]
        fn consecutive_shifts_cover_every_moment_once(
            cuts in proptest::collection::btree_set(0i64..1_440, 1..6),
            t in 0i64..(60 * 24 * 60 * 60_000),
        ) {
            let cuts: Vec<i64> = cuts.into_iter().collect();
            let es: Vec<Entry> = cuts
                .iter()
                .enumerate()
                .map(|(i, &start)| Entry {
                    person: format!("p{i}"),
                    window: Some((start, cuts[(i + 1) % cuts.len()])),
                    ..Entry::default()
                })
                .filter(|e| e.window.is_some_and(|(s, en)| s != en) || cuts.len() == 1)
                .collect();
            let es = if cuts.len() == 1 {
                vec![Entry { person: "p0".into(), ..Entry::default() }]
            } else {
                es
            };
            let on = on_duty(&es, &[], &HashSet::new(), TUE + t);
            prop_assert_eq!(on.len(), 1, "{:?}", on);
        }

        /// An override covering the moment always wins; outside its window
        /// the pattern is untouched.
        #[test]
        fn overrides_replace_only_their_window(
            start in 0i64..1_440, len in 1i64..1_440, t in 0i64..(2 * 24 * 60 * 60_000),
        ) {
            let pattern = [Entry { person: "pattern".into(), ..Entry::default() }];
            let o = Override {
                person: "override".into(),
                rank: 0,
                day: local(TUE).0,
                window: Some((start, (start + len) % 1_440)),
            };
            let at = TUE + t;
            let on = on_duty(&pattern, std::slice::from_ref(&o), &HashSet::new(), at);
            let in_window = {
                let off = t / 60_000;
                off >= start && off < start + len
            };
            prop_assert_eq!(on, vec![if in_window { "override" } else { "pattern" }.to_string()]);
        }
    }
}
