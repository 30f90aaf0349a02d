//! Layer settings of a rules file: what a `kind`, `site`, `site.kind` or
//! `device` section says about the devices as a whole rather than about one
//! rule.
//!
//! * `hours` and `utc_offset`: the working hours, in which silence counts
//!   (`hours = ["mon-fri 07:00-19:00", "sat 08:00-12:00"]`, or `"always"`);
//! * `link`: how the devices reach the gateway (`"wired"`, `"wifi"`,
//!   `"4g"`), which sets `after_s` of every offline rule;
//! * `crane`: a tower crane's nameplate limits, which set the levels of
//!   `crane.load`, `crane.radius`, `crane.height` and the slew rules.
//!
//! A layer's settings apply before its own rule patches, so a patch in the
//! same section can still change what they set.

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use anquan_protocol::DeviceKind;
use serde::Deserialize;
use toml::Spanned;

use super::RuleFileError;
use crate::RuleSet;
use crate::defaults::{CraneLimits, Link};
use crate::hours::{CHINA_OFFSET_MIN, Hours, HoursError, WEEK_MIN};
use crate::rule::{Levels, RuleKind};

/// `hours = "always"` or a list of entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum HoursSpec {
    Word(String),
    List(Vec<String>),
}

/// `crane = { rated_load_t, max_radius_m, max_height_m, slew_limit_deg }`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CranePatch {
    rated_load_t: Option<f64>,
    max_radius_m: Option<f64>,
    max_height_m: Option<f64>,
    slew_limit_deg: Option<f64>,
}

/// The settings keys as they appear in a section.
#[derive(Debug, Clone, Default)]
pub(super) struct RawSettings {
    pub hours: Option<Spanned<HoursSpec>>,
    pub utc_offset: Option<Spanned<String>>,
    pub link: Option<Spanned<String>>,
    pub crane: Option<Spanned<CranePatch>>,
}

/// Checked crane limits; `None` keeps what the layers below set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CraneSettings {
    rated_load_t: Option<f32>,
    max_radius_m: Option<f32>,
    max_height_m: Option<f32>,
    slew_limit_deg: Option<f32>,
}

/// A layer's checked settings.
#[derive(Debug, Clone, Default)]
pub(super) struct Settings {
    hours: Option<Hours>,
    link: Option<Link>,
    crane: Option<CraneSettings>,
    /// Where the section starts, and its key, for errors met when the
    /// settings are applied.
    line: usize,
    key: String,
}

fn line_of(src: &str, offset: usize) -> usize {
    src.get(..offset).map_or(1, |s| s.matches('\n').count() + 1)
}

fn error(line: usize, key: String, message: impl Into<String>) -> RuleFileError {
    RuleFileError {
        line: Some(line),
        key,
        message: message.into(),
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `"mon"`, `"mon-fri"`, `"fri-mon"` (wrapping) or a comma list of those;
/// the day numbers, Monday 0.
fn parse_days(s: &str) -> Result<Vec<u16>, String> {
    let day = |d: &str| {
        DAYS.iter()
            .position(|x| *x == d)
            .map(|i| i as u16)
            .ok_or_else(|| {
                format!("unknown day `{d}` (expected mon, tue, wed, thu, fri, sat or sun)")
            })
    };
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a.trim())?, day(b.trim())?);
                let mut d = a;
                loop {
                    out.push(d);
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => out.push(day(item)?),
        }
    }
    Ok(out)
}

/// `HH:MM`, 00:00 to 24:00, in minutes.
fn parse_time(s: &str) -> Result<u16, String> {
    let bad = || format!("`{s}` is not a time (expected HH:MM, 00:00 to 24:00)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 24 || m > 59 || (h == 24 && m > 0) || s.len() != 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn day_name(d: u16) -> &'static str {
    DAYS.get(usize::from(d)).copied().unwrap_or("mon")
}

fn hhmm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// `"+08:00"` in minutes.
fn parse_offset(s: &str) -> Result<i16, String> {
    let bad = || format!("`{s}` is not a UTC offset (expected +HH:MM or -HH:MM, e.g. \"+08:00\")");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let m = i16::try_from(parse_time(rest).map_err(|_| bad())?).map_err(|_| bad())?;
    Ok(sign * m)
}

/// Parses the `hours` entries of a layer at `key`.
fn parse_hours(
    entries: &[String],
    offset: i16,
    key: &str,
    line: usize,
) -> Result<Hours, RuleFileError> {
    if entries.is_empty() {
        return Err(error(
            line,
            key.to_string(),
            "an empty list: write \"always\", or the working hours (\"mon-fri 07:00-19:00\")",
        ));
    }
    let mut hours = Hours::new(offset).map_err(|e| error(line, key.to_string(), e.to_string()))?;
    // Which entry each span came from, in the order they were added.
    let mut from_entry = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let sub = format!("{key}[{i}]");
        let e = entry.trim();
        let (days, range) = match e.rsplit_once(char::is_whitespace) {
            Some((d, r)) => (
                parse_days(d.trim()).map_err(|m| error(line, sub.clone(), m))?,
                r,
            ),
            None => ((0..7).collect(), e),
        };
        let (start, end) = match range.split_once('-') {
            Some((a, b)) if !b.trim().is_empty() => (a.trim(), b.trim()),
            _ => {
                return Err(error(
                    line,
                    sub,
                    format!("`{entry}` has no end (write a range, \"07:00-19:00\")"),
                ));
            }
        };
        let (s, t) = (
            parse_time(start).map_err(|m| error(line, sub.clone(), m))?,
            parse_time(end).map_err(|m| error(line, sub.clone(), m))?,
        );
        if s == 1440 {
            return Err(error(line, sub, "a range cannot start at 24:00"));
        }
        if s == t {
            return Err(error(
                line,
                sub,
                format!("`{entry}` is empty (a whole day is 00:00-24:00)"),
            ));
        }
        for d in days {
            let a = d * 1440 + s;
            // An end before the start is on the next day.
            let b = if t > s {
                d * 1440 + t
            } else {
                (d + 1) * 1440 + t
            };
            let pieces: &[(u16, u16)] = if b > WEEK_MIN {
                &[(a, WEEK_MIN), (0, b - WEEK_MIN)]
            } else {
                &[(a, b)]
            };
            for &(p, q) in pieces {
                hours.push(p, q).map_err(|e| match e {
                    HoursError::Overlap { with } => {
                        let j = from_entry.get(with).copied().unwrap_or(i);
                        let what = if j == i {
                            "names a day twice".to_string()
                        } else {
                            format!("overlaps {key}[{j}] (`{}`)", entries[j])
                        };
                        error(
                            line,
                            sub.clone(),
                            format!("`{entry}` {what} on {}", day_name(d)),
                        )
                    }
                    other => error(line, sub.clone(), other.to_string()),
                })?;
                from_entry.push(i);
            }
        }
    }
    Ok(hours)
}

/// The `hours` entries that rebuild `hours` (`to_toml`).
pub(super) fn hours_entries(hours: &Hours) -> Vec<String> {
    hours
        .spans()
        .iter()
        .map(|s| {
            let day = s.start / 1440;
            let start = s.start % 1440;
            let end = s.end - day * 1440;
            let end = if end > 1440 { end - 1440 } else { end };
            format!("{} {}-{}", day_name(day), hhmm(start), hhmm(end))
        })
        .collect()
}

/// `"+08:00"`.
pub(super) fn offset_text(min: i16) -> String {
    let sign = if min < 0 { '-' } else { '+' };
    format!("{sign}{}", hhmm(min.unsigned_abs()))
}

fn limit(
    v: Option<f64>,
    lo: f64,
    hi: f64,
    key: &str,
    what: &str,
    line: usize,
) -> Result<Option<f32>, RuleFileError> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() && x > lo && x <= hi => Ok(Some(x as f32)),
        Some(_) => Err(error(
            line,
            format!("{key}.{what}"),
            format!("must be a number above {lo} and at most {hi}"),
        )),
    }
}

impl RawSettings {
    /// Checks the settings of the section at `key`, for devices of `kind`
    /// (`None`: a site section, for every kind).
    pub(super) fn check(
        self,
        src: &str,
        key: &str,
        line: usize,
        kind: Option<DeviceKind>,
    ) -> Result<Settings, RuleFileError> {
        let mut out = Settings {
            line,
            key: key.to_string(),
            ..Settings::default()
        };
        let offset = match &self.utc_offset {
            Some(o) => {
                let l = line_of(src, o.span().start);
                if self.hours.is_none() {
                    return Err(error(
                        l,
                        format!("{key}.utc_offset"),
                        "applies to `hours` given in the same section",
                    ));
                }
                parse_offset(o.get_ref()).map_err(|m| error(l, format!("{key}.utc_offset"), m))?
            }
            None => CHINA_OFFSET_MIN,
        };
        if let Some(h) = &self.hours {
            let l = line_of(src, h.span().start);
            let k = format!("{key}.hours");
            out.hours = Some(match h.get_ref() {
                HoursSpec::Word(w) if w == "always" => Hours::ALWAYS,
                HoursSpec::Word(w) => {
                    return Err(error(
                        l,
                        k,
                        format!(
                            "`{w}`: expected \"always\" or a list such as [\"mon-fri 07:00-19:00\"]"
                        ),
                    ));
                }
                HoursSpec::List(entries) => parse_hours(entries, offset, &k, l)?,
            });
        }
        if let Some(link) = &self.link {
            let l = line_of(src, link.span().start);
            out.link = Some(Link::parse(link.get_ref()).ok_or_else(|| {
                let names: Vec<_> = Link::ALL.iter().map(|l| l.as_str()).collect();
                error(
                    l,
                    format!("{key}.link"),
                    format!(
                        "unknown link `{}` (expected {})",
                        link.get_ref(),
                        names.join(", ")
                    ),
                )
            })?);
        }
        if let Some(c) = &self.crane {
            let l = line_of(src, c.span().start);
            let k = format!("{key}.crane");
            if kind.is_some_and(|k| k != DeviceKind::Crane) {
                return Err(error(l, k, "crane limits apply to crane devices only"));
            }
            let c = c.get_ref();
            out.crane = Some(CraneSettings {
                rated_load_t: limit(c.rated_load_t, 0.0, 1000.0, &k, "rated_load_t", l)?,
                max_radius_m: limit(c.max_radius_m, 0.5, 150.0, &k, "max_radius_m", l)?,
                max_height_m: limit(c.max_height_m, 0.5, 1000.0, &k, "max_height_m", l)?,
                slew_limit_deg: limit(c.slew_limit_deg, 10.0, 1080.0, &k, "slew_limit_deg", l)?,
            });
        }
        Ok(out)
    }
}

impl Settings {
    /// Applies the settings to `set`, a rule set for devices of `kind`.
    pub(super) fn apply(&self, set: &mut RuleSet, kind: DeviceKind) -> Result<(), RuleFileError> {
        if let Some(h) = self.hours {
            set.set_hours(h);
        }
        let fail = |e: crate::RuleError| error(self.line, self.key.clone(), e.to_string());
        if let Some(link) = self.link {
            let ids: Vec<_> = set
                .rules()
                .iter()
                .filter(|r| matches!(r.kind, RuleKind::Offline { .. }))
                .map(|r| r.id.clone())
                .collect();
            for id in ids {
                if let Some(mut r) = set.get(&id).cloned() {
                    if let RuleKind::Offline { after_ms, .. } = &mut r.kind {
                        *after_ms = link.offline_after_ms();
                    }
                    set.replace(r).map_err(fail)?;
                }
            }
        }
        if let (Some(c), DeviceKind::Crane) = (self.crane, kind) {
            let rules: [(&str, Option<Levels>); 5] = [
                ("crane.load", c.rated_load_t.map(CraneLimits::load_levels)),
                (
                    "crane.radius",
                    c.max_radius_m.map(CraneLimits::limit_levels),
                ),
                (
                    "crane.height",
                    c.max_height_m.map(CraneLimits::limit_levels),
                ),
                (
                    "crane.slew_pos",
                    c.slew_limit_deg.map(|d| CraneLimits::slew_levels(d, 1.0)),
                ),
                (
                    "crane.slew_neg",
                    c.slew_limit_deg.map(|d| CraneLimits::slew_levels(d, -1.0)),
                ),
            ];
            for (id, levels) in rules {
                let (Some(new), Some(mut r)) = (levels, set.get(id).cloned()) else {
                    continue;
                };
                if let RuleKind::Threshold { levels, .. } = &mut r.kind {
                    *levels = new;
                    set.replace(r).map_err(fail)?;
                }
            }
        }
        Ok(())
    }
}
