//! Site rules files: TOML overrides of the built-in defaults (`std` only).
//!
//! ```toml
//! # Every gas device: lower the red threshold, debounce over 2 samples.
//! [kind.gas.rules."gas.lel"]
//! red = { raise = 40, clear = 30 }
//! debounce = { samples = 2 }
//!
//! # A new rule for every crane.
//! [kind.crane.rules."crane.gusty_lift"]
//! type = "all_of"
//! level = "orange"
//! conditions = [
//!   { metric = "moment_pct", direction = "above", raise = 80, clear = 75 },
//!   { metric = "wind_ms", direction = "above", raise = 10.8, clear = 9.5 },
//! ]
//!
//! # Only at site s1 (applied after `kind`).
//! [site.s1.kind.water_pressure.rules."water.pressure_low"]
//! yellow = { raise = 0.07, clear = 0.09 }
//! blue = { off = true }
//!
//! # One device (applied last). `kind` is required so the file can be
//! # checked before the device ever reports.
//! [device.gas-0001]
//! kind = "gas"
//! [device.gas-0001.rules."gas.co"]
//! enabled = false
//!
//! # Layer settings: working hours, link type, a crane's limits.
//! [site.yard-3]
//! hours = ["mon-sat 07:00-19:00"]
//! link = "4g"
//! [device.crane-01]
//! kind = "crane"
//! crane = { rated_load_t = 8, max_radius_m = 60.5, max_height_m = 45 }
//! ```
//!
//! Resolution for a device: built-in defaults of its kind → `kind.<kind>` →
//! `site.<site>` settings → `site.<site>.kind.<kind>` → `device.<id>`; in
//! each section its settings (`hours`, `utc_offset`, `link`, `crane`, see
//! [`settings`]) apply before its rule patches. A patch of an existing rule
//! changes only the keys it gives; a rule id that does not exist yet needs a
//! `type` and every key of that type. Every combination the file can produce
//! is validated when it is loaded, and an error names the line and the key.

use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use anquan_protocol::{DeviceKind, FaultCode, FaultSet, Level, Metric, RuleId};
use serde::Deserialize;
use toml::Spanned;

use crate::rule::{Band, Condition, Debounce, Direction, Levels, Rule, RuleKind};
use crate::{RuleSet, defaults};

mod settings;

use settings::{CranePatch, HoursSpec, RawSettings, Settings};

/// An error in a rules file: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key path (`kind.gas.rules."gas.lel".red`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl core::fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.line {
            Some(line) => write!(f, "rules file line {line}: {}: {}", self.key, self.message),
            None => write!(f, "rules file: {}: {}", self.key, self.message),
        }
    }
}

impl std::error::Error for RuleFileError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    version: Option<u32>,
    #[serde(default)]
    kind: BTreeMap<String, Spanned<KindSection>>,
    #[serde(default)]
    site: BTreeMap<String, Spanned<SiteSection>>,
    #[serde(default)]
    device: BTreeMap<String, Spanned<DeviceSection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KindSection {
    #[serde(default)]
    rules: BTreeMap<String, Spanned<Patch>>,
    hours: Option<Spanned<HoursSpec>>,
    utc_offset: Option<Spanned<String>>,
    link: Option<Spanned<String>>,
    crane: Option<Spanned<CranePatch>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteSection {
    #[serde(default)]
    kind: BTreeMap<String, Spanned<KindSection>>,
    hours: Option<Spanned<HoursSpec>>,
    utc_offset: Option<Spanned<String>>,
    link: Option<Spanned<String>>,
    crane: Option<Spanned<CranePatch>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceSection {
    kind: String,
    site: Option<String>,
    #[serde(default)]
    rules: BTreeMap<String, Spanned<Patch>>,
    hours: Option<Spanned<HoursSpec>>,
    utc_offset: Option<Spanned<String>>,
    link: Option<Spanned<String>>,
    crane: Option<Spanned<CranePatch>>,
}

/// The keys of one rule table; all optional, since a patch gives only what
/// it changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    #[serde(rename = "type")]
    rule_type: Option<String>,
    enabled: Option<bool>,
    metric: Option<String>,
    direction: Option<String>,
    blue: Option<BandPatch>,
    yellow: Option<BandPatch>,
    orange: Option<BandPatch>,
    red: Option<BandPatch>,
    debounce: Option<DebouncePatch>,
    window_s: Option<f64>,
    after_s: Option<f64>,
    level: Option<String>,
    conditions: Option<Vec<ConditionPatch>>,
    codes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BandPatch {
    raise: Option<f64>,
    clear: Option<f64>,
    off: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DebouncePatch {
    samples: Option<u8>,
    seconds: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionPatch {
    metric: String,
    direction: String,
    raise: f64,
    clear: f64,
}

/// A patch with where it came from, for error messages.
#[derive(Debug, Clone)]
struct Located {
    id: RuleId,
    patch: Patch,
    key: String,
    line: usize,
}

/// One section's settings and rule patches.
#[derive(Debug, Clone, Default)]
struct Layer {
    settings: Settings,
    patches: Vec<Located>,
}

impl Layer {
    fn apply(&self, set: &mut RuleSet, kind: DeviceKind) -> Result<(), RuleFileError> {
        self.settings.apply(set, kind)?;
        for p in &self.patches {
            apply(set, p)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct DeviceEntry {
    kind: DeviceKind,
    site: Option<String>,
    layer: Layer,
}

/// A parsed and fully validated rules file.
#[derive(Debug, Clone, Default)]
pub struct RuleFile {
    kinds: BTreeMap<DeviceKind, Layer>,
    /// `[site.<site>]` settings, for every kind of the site.
    site_settings: BTreeMap<String, Settings>,
    sites: BTreeMap<(String, DeviceKind), Layer>,
    devices: BTreeMap<String, DeviceEntry>,
}

fn line_of(src: &str, offset: usize) -> usize {
    src.get(..offset).map_or(1, |s| s.matches('\n').count() + 1)
}

fn quote(id: &str) -> String {
    if id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        id.to_string()
    } else {
        format!("\"{id}\"")
    }
}

fn parse_kind(s: &str, key: &str, line: usize) -> Result<DeviceKind, RuleFileError> {
    DeviceKind::parse(s).ok_or_else(|| RuleFileError {
        line: Some(line),
        key: key.to_string(),
        message: format!(
            "unknown device kind `{s}` (expected gas, electrical, water_pressure or crane)"
        ),
    })
}

impl RuleFile {
    /// Parses and validates a rules file.
    pub fn parse(src: &str) -> Result<Self, RuleFileError> {
        let doc: Doc = toml::from_str(src).map_err(|e| RuleFileError {
            line: e.span().map(|s| line_of(src, s.start)),
            key: "(syntax)".to_string(),
            message: e.message().trim().to_string(),
        })?;
        if let Some(v) = doc.version
            && v != 1
        {
            return Err(RuleFileError {
                line: None,
                key: "version".to_string(),
                message: format!("unsupported rules file version {v} (expected 1)"),
            });
        }
        let located = |prefix: &str, rules: BTreeMap<String, Spanned<Patch>>| {
            rules
                .into_iter()
                .map(|(id, p)| {
                    let key = format!("{prefix}.rules.{}", quote(&id));
                    let line = line_of(src, p.span().start);
                    let id = RuleId::new(&id).map_err(|e| RuleFileError {
                        line: Some(line),
                        key: key.clone(),
                        message: format!("rule id {e} (expected 1-32 characters [A-Za-z0-9_.-])"),
                    })?;
                    Ok(Located {
                        id,
                        patch: p.into_inner(),
                        key,
                        line,
                    })
                })
                .collect::<Result<Vec<_>, RuleFileError>>()
        };
        let kind_layer = |section: KindSection, prefix: &str, line: usize, kind: DeviceKind| {
            let settings = RawSettings {
                hours: section.hours,
                utc_offset: section.utc_offset,
                link: section.link,
                crane: section.crane,
            }
            .check(src, prefix, line, Some(kind))?;
            Ok::<_, RuleFileError>(Layer {
                settings,
                patches: located(prefix, section.rules)?,
            })
        };
        let mut file = RuleFile::default();
        for (name, section) in doc.kind {
            let line = line_of(src, section.span().start);
            let prefix = format!("kind.{}", quote(&name));
            let kind = parse_kind(&name, &prefix, line)?;
            file.kinds
                .insert(kind, kind_layer(section.into_inner(), &prefix, line, kind)?);
        }
        for (site, section) in doc.site {
            let site_line = line_of(src, section.span().start);
            let site_key = format!("site.{}", quote(&site));
            if !anquan_protocol::Id::is_valid(&site) {
                return Err(RuleFileError {
                    line: Some(site_line),
                    key: site_key,
                    message: "site id must be 1-64 characters [A-Za-z0-9_-]".to_string(),
                });
            }
            let section = section.into_inner();
            let settings = RawSettings {
                hours: section.hours,
                utc_offset: section.utc_offset,
                link: section.link,
                crane: section.crane,
            }
            .check(src, &site_key, site_line, None)?;
            file.site_settings.insert(site.clone(), settings);
            for (name, section) in section.kind {
                let line = line_of(src, section.span().start);
                let prefix = format!("{site_key}.kind.{}", quote(&name));
                let kind = parse_kind(&name, &prefix, line)?;
                file.sites.insert(
                    (site.clone(), kind),
                    kind_layer(section.into_inner(), &prefix, line, kind)?,
                );
            }
        }
        for (device, section) in doc.device {
            let line = line_of(src, section.span().start);
            let prefix = format!("device.{}", quote(&device));
            if !anquan_protocol::Id::is_valid(&device) {
                return Err(RuleFileError {
                    line: Some(line),
                    key: prefix,
                    message: "device id must be 1-64 characters [A-Za-z0-9_-]".to_string(),
                });
            }
            let section = section.into_inner();
            let kind = parse_kind(&section.kind, &format!("{prefix}.kind"), line)?;
            if let Some(site) = &section.site
                && !anquan_protocol::Id::is_valid(site)
            {
                return Err(RuleFileError {
                    line: Some(line),
                    key: format!("{prefix}.site"),
                    message: "site id must be 1-64 characters [A-Za-z0-9_-]".to_string(),
                });
            }
            let settings = RawSettings {
                hours: section.hours,
                utc_offset: section.utc_offset,
                link: section.link,
                crane: section.crane,
            }
            .check(src, &prefix, line, Some(kind))?;
            let patches = located(&prefix, section.rules)?;
            file.devices.insert(
                device,
                DeviceEntry {
                    kind,
                    site: section.site,
                    layer: Layer { settings, patches },
                },
            );
        }
        file.validate_all()?;
        Ok(file)
    }

    /// Reads and parses a rules file.
    pub fn load(path: &std::path::Path) -> Result<Self, RuleFileError> {
        let src = std::fs::read_to_string(path).map_err(|e| RuleFileError {
            line: None,
            key: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&src)
    }

    /// Builds every rule set the file can produce, so that a mistake is
    /// found at load time and not when a device first reports.
    fn validate_all(&self) -> Result<(), RuleFileError> {
        // Every site a section names, with or without its own rules.
        let mut sites: Vec<&str> = self.site_settings.keys().map(String::as_str).collect();
        sites.extend(self.sites.keys().map(|(s, _)| s.as_str()));
        sites.extend(self.devices.values().filter_map(|e| e.site.as_deref()));
        sites.sort_unstable();
        sites.dedup();
        for kind in DeviceKind::ALL {
            self.layered(None, kind, None)?;
            for site in &sites {
                self.layered(Some(site), kind, None)?;
            }
        }
        for (device, entry) in &self.devices {
            match &entry.site {
                Some(site) => {
                    self.layered(Some(site), entry.kind, Some(device))?;
                }
                None => {
                    self.layered(None, entry.kind, Some(device))?;
                    for site in &sites {
                        self.layered(Some(site), entry.kind, Some(device))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn layered(
        &self,
        site: Option<&str>,
        kind: DeviceKind,
        device: Option<&str>,
    ) -> Result<RuleSet, RuleFileError> {
        let mut set = defaults::for_kind(kind);
        if let Some(layer) = self.kinds.get(&kind) {
            layer.apply(&mut set, kind)?;
        }
        if let Some(s) = site {
            if let Some(settings) = self.site_settings.get(s) {
                settings.apply(&mut set, kind)?;
            }
            if let Some(layer) = self.sites.get(&(s.to_string(), kind)) {
                layer.apply(&mut set, kind)?;
            }
        }
        if let Some(entry) = device.and_then(|d| self.devices.get(d)) {
            let site_matches = entry.site.as_deref().is_none_or(|s| Some(s) == site);
            if entry.kind == kind && site_matches {
                entry.layer.apply(&mut set, kind)?;
            }
        }
        Ok(set)
    }

    /// The effective rules of a device. Device overrides apply only if the
    /// file's `kind` (and `site`, when given) match the device.
    pub fn rules_for(&self, site: &str, kind: DeviceKind, device: &str) -> RuleSet {
        // Every combination was validated in `parse`; the fallback to the
        // defaults is unreachable but keeps this infallible.
        self.layered(Some(site), kind, Some(device))
            .unwrap_or_else(|_| defaults::for_kind(kind))
    }

    /// Whether the file has overrides for this device id (lets a caller
    /// share one rule set between all devices without any).
    pub fn has_device(&self, device: &str) -> bool {
        self.devices.contains_key(device)
    }

    /// The device ids with their own section, with the kind the file gives.
    pub fn devices(&self) -> impl Iterator<Item = (&str, DeviceKind)> {
        self.devices.iter().map(|(d, e)| (d.as_str(), e.kind))
    }
}

fn err(p: &Located, sub: &str, message: String) -> RuleFileError {
    RuleFileError {
        line: Some(p.line),
        key: if sub.is_empty() {
            p.key.clone()
        } else {
            format!("{}.{sub}", p.key)
        },
        message,
    }
}

fn metric_names() -> String {
    Metric::ALL
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_metric(p: &Located, sub: &str, s: &str) -> Result<Metric, RuleFileError> {
    Metric::parse(s).ok_or_else(|| {
        err(
            p,
            sub,
            format!("unknown reading `{s}` (expected one of {})", metric_names()),
        )
    })
}

fn parse_direction(p: &Located, sub: &str, s: &str) -> Result<Direction, RuleFileError> {
    match s {
        "above" => Ok(Direction::Above),
        "below" => Ok(Direction::Below),
        _ => Err(err(
            p,
            sub,
            format!("unknown direction `{s}` (expected above or below)"),
        )),
    }
}

fn parse_level(p: &Located, s: &str) -> Result<Level, RuleFileError> {
    Level::parse(s).ok_or_else(|| {
        err(
            p,
            "level",
            format!("unknown level `{s}` (expected blue, yellow, orange or red)"),
        )
    })
}

fn ms(p: &Located, sub: &str, seconds: f64, min_s: f64) -> Result<u32, RuleFileError> {
    let max_s = f64::from(u32::MAX) / 1000.0;
    if !seconds.is_finite() || seconds < min_s || seconds > max_s {
        return Err(err(
            p,
            sub,
            format!("must be a number of seconds between {min_s} and {max_s:.0}"),
        ));
    }
    Ok((seconds * 1000.0).round() as u32)
}

fn number(p: &Located, sub: &str, v: f64) -> Result<f32, RuleFileError> {
    let f = v as f32;
    if f.is_finite() {
        Ok(f)
    } else {
        Err(err(p, sub, "must be a finite number".to_string()))
    }
}

/// Keys that belong to other rule types, for a clear error.
fn reject_foreign(p: &Located, type_name: &str) -> Result<(), RuleFileError> {
    let q = &p.patch;
    let graded = q.metric.is_some()
        || q.direction.is_some()
        || [q.blue, q.yellow, q.orange, q.red]
            .iter()
            .any(Option::is_some);
    let checks: [(&str, bool, &[&str]); 6] = [
        (
            "metric/direction/blue/yellow/orange/red",
            graded,
            &["threshold", "rate_of_change"],
        ),
        ("window_s", q.window_s.is_some(), &["rate_of_change"]),
        ("after_s", q.after_s.is_some(), &["offline"]),
        ("level", q.level.is_some(), &["all_of", "offline", "fault"]),
        ("conditions", q.conditions.is_some(), &["all_of"]),
        ("codes", q.codes.is_some(), &["fault"]),
    ];
    for (keys, present, allowed) in checks {
        if present && !allowed.contains(&type_name) {
            return Err(err(
                p,
                "",
                format!("`{keys}` does not apply to a {type_name} rule"),
            ));
        }
    }
    Ok(())
}

fn patch_levels(p: &Located, levels: &mut Levels) -> Result<(), RuleFileError> {
    let q = &p.patch;
    for (level, band) in [
        (Level::Blue, q.blue),
        (Level::Yellow, q.yellow),
        (Level::Orange, q.orange),
        (Level::Red, q.red),
    ] {
        let Some(b) = band else { continue };
        let name = level.as_str();
        if b.off == Some(true) {
            if b.raise.is_some() || b.clear.is_some() {
                return Err(err(
                    p,
                    name,
                    "`off = true` cannot be combined with raise/clear".to_string(),
                ));
            }
            levels.set(level, None);
            continue;
        }
        let old = levels.get(level);
        let raise = match (b.raise, old) {
            (Some(v), _) => number(p, &format!("{name}.raise"), v)?,
            (None, Some(o)) => o.raise,
            (None, None) => {
                return Err(err(
                    p,
                    name,
                    "a new level needs both `raise` and `clear`".to_string(),
                ));
            }
        };
        let clear = match (b.clear, old) {
            (Some(v), _) => number(p, &format!("{name}.clear"), v)?,
            (None, Some(o)) => o.clear,
            (None, None) => {
                return Err(err(
                    p,
                    name,
                    "a new level needs both `raise` and `clear`".to_string(),
                ));
            }
        };
        levels.set(level, Some(Band::new(raise, clear)));
    }
    Ok(())
}

/// Applies one patch to a rule set: changes an existing rule or adds one.
fn apply(set: &mut RuleSet, p: &Located) -> Result<(), RuleFileError> {
    let q = &p.patch;
    let existing = set.get(&p.id).cloned();
    let type_name = match (&q.rule_type, &existing) {
        (Some(t), Some(r)) if t != r.kind.type_name() => {
            return Err(err(
                p,
                "type",
                format!(
                    "`{}` is a {} rule; its type cannot change (give the new rule its own id)",
                    p.id,
                    r.kind.type_name()
                ),
            ));
        }
        (_, Some(r)) => r.kind.type_name(),
        (Some(t), None) => match t.as_str() {
            "threshold" | "rate_of_change" | "all_of" | "offline" | "fault" => t.as_str(),
            other => {
                return Err(err(
                    p,
                    "type",
                    format!(
                        "unknown rule type `{other}` (expected threshold, rate_of_change, all_of, offline or fault)"
                    ),
                ));
            }
        },
        (None, None) => {
            return Err(err(
                p,
                "",
                format!(
                    "there is no default rule `{}` for this kind; a new rule needs a `type`",
                    p.id
                ),
            ));
        }
    };
    reject_foreign(p, type_name)?;
    let need = |what: &str| err(p, what, format!("required for a new {type_name} rule"));

    let mut debounce = existing
        .as_ref()
        .map_or(Debounce::IMMEDIATE, |r| r.debounce);
    if let Some(d) = q.debounce {
        if let Some(n) = d.samples {
            debounce.samples = n;
        }
        if let Some(s) = d.seconds {
            debounce.ms = ms(p, "debounce.seconds", s, 0.0)?;
        }
    }
    let kind = match (type_name, existing.map(|r| r.kind)) {
        ("threshold" | "rate_of_change", old) => {
            let (old_metric, old_dir, old_window, mut levels) = match old {
                Some(RuleKind::Threshold {
                    metric,
                    direction,
                    levels,
                }) => (Some(metric), Some(direction), None, levels),
                Some(RuleKind::RateOfChange {
                    metric,
                    direction,
                    window_ms,
                    levels,
                }) => (Some(metric), Some(direction), Some(window_ms), levels),
                _ => (None, None, None, Levels::NONE),
            };
            let metric = match &q.metric {
                Some(m) => parse_metric(p, "metric", m)?,
                None => old_metric.ok_or_else(|| need("metric"))?,
            };
            let direction = match &q.direction {
                Some(d) => parse_direction(p, "direction", d)?,
                None => old_dir.ok_or_else(|| need("direction"))?,
            };
            patch_levels(p, &mut levels)?;
            if type_name == "threshold" {
                RuleKind::Threshold {
                    metric,
                    direction,
                    levels,
                }
            } else {
                let window_ms = match q.window_s {
                    Some(s) => ms(p, "window_s", s, 1.0)?,
                    None => old_window.ok_or_else(|| need("window_s"))?,
                };
                RuleKind::RateOfChange {
                    metric,
                    direction,
                    window_ms,
                    levels,
                }
            }
        }
        ("all_of", old) => {
            let (old_conditions, old_level) = match old {
                Some(RuleKind::AllOf { conditions, level }) => (Some(conditions), Some(level)),
                _ => (None, None),
            };
            let level = match &q.level {
                Some(l) => parse_level(p, l)?,
                None => old_level.ok_or_else(|| need("level"))?,
            };
            let conditions = match &q.conditions {
                Some(list) => {
                    let mut out = heapless::Vec::new();
                    for (i, c) in list.iter().enumerate() {
                        let sub = format!("conditions[{i}]");
                        let cond = Condition {
                            metric: parse_metric(p, &format!("{sub}.metric"), &c.metric)?,
                            direction: parse_direction(
                                p,
                                &format!("{sub}.direction"),
                                &c.direction,
                            )?,
                            raise: number(p, &format!("{sub}.raise"), c.raise)?,
                            clear: number(p, &format!("{sub}.clear"), c.clear)?,
                        };
                        out.push(cond).map_err(|_| {
                            err(
                                p,
                                "conditions",
                                format!("at most {} conditions", crate::MAX_CONDITIONS),
                            )
                        })?;
                    }
                    out
                }
                None => old_conditions.ok_or_else(|| need("conditions"))?,
            };
            RuleKind::AllOf { conditions, level }
        }
        ("offline", old) => {
            let (old_after, old_level) = match old {
                Some(RuleKind::Offline { after_ms, level }) => (Some(after_ms), Some(level)),
                _ => (None, None),
            };
            let level = match &q.level {
                Some(l) => parse_level(p, l)?,
                None => old_level.ok_or_else(|| need("level"))?,
            };
            let after_ms = match q.after_s {
                Some(s) => ms(p, "after_s", s, 1.0)?,
                None => old_after.ok_or_else(|| need("after_s"))?,
            };
            RuleKind::Offline { after_ms, level }
        }
        (_, old) => {
            let (old_codes, old_level) = match old {
                Some(RuleKind::Fault { codes, level }) => (Some(codes), Some(level)),
                _ => (None, None),
            };
            let level = match &q.level {
                Some(l) => parse_level(p, l)?,
                None => old_level.ok_or_else(|| need("level"))?,
            };
            let codes = match &q.codes {
                Some(list) => {
                    let mut set = FaultSet::EMPTY;
                    for (i, c) in list.iter().enumerate() {
                        let code = if c == "any" {
                            FaultSet::ALL
                        } else {
                            let code = FaultCode::parse(c).ok_or_else(|| {
                                let names: Vec<_> =
                                    FaultCode::ALL.iter().map(|c| c.as_str()).collect();
                                err(
                                    p,
                                    &format!("codes[{i}]"),
                                    format!(
                                        "unknown fault code `{c}` (expected any or one of {})",
                                        names.join(", ")
                                    ),
                                )
                            })?;
                            FaultSet::EMPTY.with(code)
                        };
                        set = set.iter().chain(code.iter()).collect();
                    }
                    set
                }
                None => old_codes.ok_or_else(|| need("codes"))?,
            };
            RuleKind::Fault { codes, level }
        }
    };
    let rule = Rule {
        id: p.id.clone(),
        enabled: q.enabled.unwrap_or(existing_enabled(set, &p.id)),
        debounce,
        kind,
    };
    set.replace(rule).map_err(|e| err(p, "", e.to_string()))
}

fn existing_enabled(set: &RuleSet, id: &str) -> bool {
    set.get(id).is_none_or(|r| r.enabled)
}

/// Writes a rule set as a rules-file fragment for `kind`, every key given:
/// what `anquan-gateway check` prints as the effective rules.
pub fn to_toml(prefix: &str, set: &RuleSet) -> String {
    use core::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "[{prefix}]");
    let hours = set.hours();
    if hours.is_always() {
        let _ = writeln!(s, "hours = \"always\"");
    } else {
        let entries: Vec<String> = settings::hours_entries(hours)
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect();
        let _ = writeln!(s, "hours = [{}]", entries.join(", "));
        let _ = writeln!(
            s,
            "utc_offset = \"{}\"",
            settings::offset_text(hours.utc_offset_min())
        );
    }
    let _ = writeln!(s);
    for r in set.rules() {
        let _ = writeln!(s, "[{prefix}.rules.{}]", quote(&r.id));
        let _ = writeln!(s, "type = \"{}\"", r.kind.type_name());
        let _ = writeln!(s, "enabled = {}", r.enabled);
        let _ = writeln!(
            s,
            "debounce = {{ samples = {}, seconds = {} }}",
            r.debounce.samples,
            f64::from(r.debounce.ms) / 1000.0
        );
        let graded = |s: &mut String, metric: Metric, direction: Direction, levels: &Levels| {
            let _ = writeln!(s, "metric = \"{metric}\"");
            let _ = writeln!(s, "direction = \"{}\"", direction.as_str());
            // Every level, so that the text is a complete patch: a level
            // the set lacks must be switched off in whatever it patches.
            for level in Level::ALL {
                let _ = match levels.get(level) {
                    Some(b) => writeln!(
                        s,
                        "{level} = {{ raise = {}, clear = {} }}",
                        b.raise, b.clear
                    ),
                    None => writeln!(s, "{level} = {{ off = true }}"),
                };
            }
        };
        match &r.kind {
            RuleKind::Threshold {
                metric,
                direction,
                levels,
            } => graded(&mut s, *metric, *direction, levels),
            RuleKind::RateOfChange {
                metric,
                direction,
                window_ms,
                levels,
            } => {
                graded(&mut s, *metric, *direction, levels);
                let _ = writeln!(s, "window_s = {}", f64::from(*window_ms) / 1000.0);
            }
            RuleKind::AllOf { conditions, level } => {
                let _ = writeln!(s, "level = \"{level}\"");
                let _ = writeln!(s, "conditions = [");
                for c in conditions {
                    let _ = writeln!(
                        s,
                        "  {{ metric = \"{}\", direction = \"{}\", raise = {}, clear = {} }},",
                        c.metric,
                        c.direction.as_str(),
                        c.raise,
                        c.clear
                    );
                }
                let _ = writeln!(s, "]");
            }
            RuleKind::Offline { after_ms, level } => {
                let _ = writeln!(s, "level = \"{level}\"");
                let _ = writeln!(s, "after_s = {}", f64::from(*after_ms) / 1000.0);
            }
            RuleKind::Fault { codes, level } => {
                let _ = writeln!(s, "level = \"{level}\"");
                let names: Vec<String> = codes.iter().map(|c| format!("\"{c}\"")).collect();
                let _ = writeln!(s, "codes = [{}]", names.join(", "));
            }
        }
        let _ = writeln!(s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceState;
    use anquan_protocol::{AlarmState, Readings};

    fn parse_err(src: &str) -> RuleFileError {
        RuleFile::parse(src).expect_err(src)
    }

    #[test]
    fn empty_file_means_defaults() {
        let f = RuleFile::parse("").unwrap();
        for kind in DeviceKind::ALL {
            assert_eq!(f.rules_for("s1", kind, "d1"), defaults::for_kind(kind));
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let src = r#"
[kind.gas.rules."gas.lel"]
red = { raise = 40, clear = 30 }

[site.s1.kind.gas.rules."gas.lel"]
red = { raise = 35 }
orange = { off = true }

[device.gas-0001]
kind = "gas"
[device.gas-0001.rules."gas.lel"]
debounce = { samples = 3 }
"#;
        let f = RuleFile::parse(src).unwrap();
        let band = |set: &RuleSet| match &set.get("gas.lel").unwrap().kind {
            RuleKind::Threshold { levels, .. } => {
                (levels.get(Level::Red).unwrap(), levels.get(Level::Orange))
            }
            _ => unreachable!(),
        };
        let other_site = f.rules_for("s2", DeviceKind::Gas, "gas-0002");
        assert_eq!(
            band(&other_site),
            (Band::new(40.0, 30.0), Some(Band::new(20.0, 15.0)))
        );
        let s1 = f.rules_for("s1", DeviceKind::Gas, "gas-0002");
        assert_eq!(band(&s1), (Band::new(35.0, 30.0), None));
        assert_eq!(s1.get("gas.lel").unwrap().debounce.samples, 1);
        let dev = f.rules_for("s1", DeviceKind::Gas, "gas-0001");
        assert_eq!(dev.get("gas.lel").unwrap().debounce.samples, 3);
        // The device section is for a gas device; a crane with that id gets none of it.
        assert_eq!(
            f.rules_for("s1", DeviceKind::Crane, "gas-0001"),
            defaults::crane()
        );
        assert!(f.has_device("gas-0001"));
    }

    #[test]
    fn adds_new_rules_of_every_type() {
        let src = r#"
[kind.crane.rules."crane.gusty_lift"]
type = "all_of"
level = "orange"
conditions = [
  { metric = "moment_pct", direction = "above", raise = 80, clear = 75 },
  { metric = "wind_ms", direction = "above", raise = 10.8, clear = 9.5 },
]

[kind.crane.rules."crane.height"]
type = "threshold"
metric = "height_m"
direction = "above"
red = { raise = 200, clear = 190 }

[kind.water_pressure.rules."water.level_rise"]
type = "rate_of_change"
metric = "level_m"
direction = "above"
window_s = 120
yellow = { raise = 0.5, clear = 0.2 }

[kind.gas.rules."gas.silent"]
type = "offline"
after_s = 600
level = "red"

[kind.gas.rules."gas.tamper"]
type = "fault"
codes = ["tamper"]
level = "orange"
"#;
        let f = RuleFile::parse(src).unwrap();
        let crane = f.rules_for("s", DeviceKind::Crane, "c");
        assert!(matches!(
            crane.get("crane.gusty_lift").unwrap().kind,
            RuleKind::AllOf {
                level: Level::Orange,
                ..
            }
        ));
        assert!(crane.get("crane.height").is_some());
        let gas = f.rules_for("s", DeviceKind::Gas, "g");
        assert_eq!(
            gas.get("gas.silent").unwrap().kind,
            RuleKind::Offline {
                after_ms: 600_000,
                level: Level::Red
            }
        );
        let water = f.rules_for("s", DeviceKind::WaterPressure, "w");
        assert!(matches!(
            water.get("water.level_rise").unwrap().kind,
            RuleKind::RateOfChange {
                window_ms: 120_000,
                ..
            }
        ));
        // The added rule works.
        let mut st = DeviceState::new(0);
        let readings: Readings = [(Metric::HeightM, 250.0)].into_iter().collect();
        let t = crane.evaluate(&mut st, &readings, &[], 1000);
        assert_eq!(
            (t[0].rule.as_str(), t[0].state),
            ("crane.height", AlarmState::Raised)
        );
    }

    #[test]
    fn disables_and_enables() {
        let src = r#"
[kind.water_pressure.rules."water.level_low"]
enabled = true
[kind.gas.rules."gas.co"]
enabled = false
"#;
        let f = RuleFile::parse(src).unwrap();
        assert!(
            f.rules_for("s", DeviceKind::WaterPressure, "w")
                .get("water.level_low")
                .unwrap()
                .enabled
        );
        assert!(
            !f.rules_for("s", DeviceKind::Gas, "g")
                .get("gas.co")
                .unwrap()
                .enabled
        );
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let e = parse_err("\n\n[kind.gas.rules.\"gas.lel\"]\nred = { raise = 40, clear = 45 }\n");
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key, "kind.gas.rules.\"gas.lel\"");
        assert!(
            e.message
                .contains("red.clear (45) must be below red.raise (40)"),
            "{e}"
        );
        assert!(e.to_string().starts_with("rules file line 3: "), "{e}");

        let e = parse_err("[kind.gas.rules.\"gas.lel\"]\nred = { raise = 40, clr = 30 }\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("clr"), "{e}");

        let e = parse_err("[kind.smoke.rules.x]\nenabled = true\n");
        assert!(e.message.contains("unknown device kind `smoke`"), "{e}");

        let e = parse_err("[kind.gas.rules.\"gas.new\"]\nmetric = \"lel_pct\"\n");
        assert!(e.message.contains("needs a `type`"), "{e}");

        let e = parse_err(
            "[kind.gas.rules.\"gas.new\"]\ntype = \"threshold\"\nmetric = \"lel_pct\"\nred = { raise = 1, clear = 0.5 }\n",
        );
        assert_eq!(e.key, "kind.gas.rules.\"gas.new\".direction");

        let e = parse_err("[kind.gas.rules.\"gas.lel\"]\nmetric = \"lel\"\n");
        assert_eq!(e.key, "kind.gas.rules.\"gas.lel\".metric");
        assert!(e.message.contains("lel_pct"), "{e}");

        let e = parse_err("[kind.gas.rules.\"gas.lel\"]\ntype = \"offline\"\n");
        assert!(e.message.contains("type cannot change"), "{e}");

        let e = parse_err("[kind.gas.rules.\"gas.lel\"]\nwindow_s = 60\n");
        assert!(
            e.message.contains("does not apply to a threshold rule"),
            "{e}"
        );

        let e = parse_err("[kind.gas.rules.\"gas.lel\"]\nred = { off = true, raise = 3 }\n");
        assert_eq!(e.key, "kind.gas.rules.\"gas.lel\".red");

        let e = parse_err("[device.d1.rules.\"gas.lel\"]\nenabled = false\n");
        assert!(e.message.contains("kind"), "{e}");

        let e = parse_err("[kind.gas.rules.\"gas.offline\"]\nafter_s = 0.1\n");
        assert_eq!(e.key, "kind.gas.rules.\"gas.offline\".after_s");

        let e = parse_err("version = 2\n");
        assert_eq!(e.key, "version");

        let e = parse_err("[kind.gas\n");
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn combinations_are_validated_at_load() {
        // Each layer alone is fine; site + device together leave clear
        // above raise. Found at load, naming the device's key.
        let src = r#"
[site.s1.kind.gas.rules."gas.lel"]
red = { raise = 30, clear = 25 }
orange = { raise = 20, clear = 15 }
[device.g1]
kind = "gas"
[device.g1.rules."gas.lel"]
red = { clear = 35 }
"#;
        let e = parse_err(src);
        assert!(e.key.starts_with("device.g1"), "{e}");
    }

    const MON: u64 = 1_732_464_000_000; // 2024-11-25 00:00 +08:00, a Monday
    const H: u64 = 3_600_000;

    #[test]
    fn hours_and_link_apply_per_layer() {
        let src = r#"
[kind.crane]
hours = ["mon-sat 07:00-19:00"]

[site.yard]
link = "wired"

[site.night]
hours = ["22:00-06:00"]
utc_offset = "+00:00"

[device.crane-9]
kind = "crane"
site = "yard"
hours = "always"
"#;
        let f = RuleFile::parse(src).unwrap_or_else(|e| panic!("{e}"));
        let crane = f.rules_for("other", DeviceKind::Crane, "c1");
        assert!(crane.hours().contains(MON + 8 * H));
        assert!(!crane.hours().contains(MON + 20 * H));
        assert!(!crane.hours().contains(MON + 6 * 24 * H + 8 * H), "Sunday");
        let after = |set: &RuleSet, id: &str| match set.get(id).map(|r| &r.kind) {
            Some(RuleKind::Offline { after_ms, .. }) => *after_ms,
            _ => 0,
        };
        assert_eq!(after(&crane, "crane.offline"), 180_000, "4G by default");
        let yard = f.rules_for("yard", DeviceKind::Gas, "g1");
        assert_eq!(after(&yard, "gas.offline"), 45_000);
        assert!(yard.hours().is_always(), "kind.crane hours are for cranes");
        // The device's own `always` replaces the kind's hours.
        let c9 = f.rules_for("yard", DeviceKind::Crane, "crane-9");
        assert!(c9.hours().is_always());
        assert_eq!(after(&c9, "crane.offline"), 45_000);
        // 22:00-06:00 UTC every day wraps at midnight and at the week's end.
        let night = f.rules_for("night", DeviceKind::Gas, "g2");
        // MON is Sunday 16:00 UTC.
        assert!(night.hours().contains(MON + 7 * H), "Sunday 23:00 UTC");
        assert!(night.hours().contains(MON + 12 * H), "Monday 04:00 UTC");
        assert!(!night.hours().contains(MON + 20 * H), "Monday 12:00 UTC");
        assert!(night.hours().contains(MON + 31 * H), "Monday 23:00 UTC");
        assert_eq!(night.hours().spans().len(), 8);
    }

    #[test]
    fn crane_limits_set_the_limit_rules() {
        let src = r#"
[device.c1]
kind = "crane"
crane = { rated_load_t = 10, max_radius_m = 60.5, max_height_m = 52, slew_limit_deg = 360 }
[device.c1.rules."crane.height"]
red = { raise = 50, clear = 49.5 }
"#;
        let f = RuleFile::parse(src).unwrap_or_else(|e| panic!("{e}"));
        let set = f.rules_for("s", DeviceKind::Crane, "c1");
        let levels = |id: &str| match set.get(id).map(|r| &r.kind) {
            Some(RuleKind::Threshold { levels, .. }) => *levels,
            _ => Levels::NONE,
        };
        assert_eq!(
            levels("crane.load").get(Level::Red),
            Some(Band::new(10.0, 9.5))
        );
        assert_eq!(
            levels("crane.load").get(Level::Yellow),
            Some(Band::new(9.0, 8.5))
        );
        assert_eq!(
            levels("crane.radius").get(Level::Red),
            Some(Band::new(60.5, 60.0))
        );
        // The section's own patch comes after its settings.
        assert_eq!(
            levels("crane.height").get(Level::Red),
            Some(Band::new(50.0, 49.5))
        );
        assert_eq!(
            levels("crane.slew_neg").get(Level::Orange),
            Some(Band::new(-360.0, -350.0))
        );
        // Other devices keep the example crane's.
        let other = f.rules_for("s", DeviceKind::Crane, "c2");
        assert_eq!(other, defaults::crane());
    }

    #[test]
    fn bad_settings_name_the_key() {
        let cases = [
            (
                "[site.s1]\nhours = [\"mon-fri 07:00\"]\n",
                "site.s1.hours[0]",
                "has no end",
            ),
            (
                "[site.s1]\nhours = [\"mon-fri 07:00-\"]\n",
                "site.s1.hours[0]",
                "has no end",
            ),
            (
                "[site.s1]\nhours = [\"mon-fri 07:00-19:00\", \"fri 18:00-20:00\"]\n",
                "site.s1.hours[1]",
                "overlaps site.s1.hours[0]",
            ),
            (
                "[site.s1]\nhours = [\"mon,mon 07:00-09:00\"]\n",
                "site.s1.hours[0]",
                "names a day twice",
            ),
            (
                "[site.s1]\nhours = [\"07:00-07:00\"]\n",
                "site.s1.hours[0]",
                "is empty",
            ),
            (
                "[site.s1]\nhours = [\"mon-fry 07:00-19:00\"]\n",
                "site.s1.hours[0]",
                "unknown day `fry`",
            ),
            (
                "[site.s1]\nhours = [\"7:00-19:00\"]\n",
                "site.s1.hours[0]",
                "not a time",
            ),
            (
                "[site.s1]\nhours = [\"25:00-26:00\"]\n",
                "site.s1.hours[0]",
                "not a time",
            ),
            ("[site.s1]\nhours = []\n", "site.s1.hours", "empty list"),
            (
                "[site.s1]\nhours = \"never\"\n",
                "site.s1.hours",
                "expected \"always\"",
            ),
            (
                "[site.s1]\nutc_offset = \"+08:00\"\n",
                "site.s1.utc_offset",
                "same section",
            ),
            (
                "[site.s1]\nhours = \"always\"\nutc_offset = \"8\"\n",
                "site.s1.utc_offset",
                "not a UTC offset",
            ),
            (
                "[device.d1]\nkind = \"gas\"\nlink = \"5g\"\n",
                "device.d1.link",
                "unknown link `5g`",
            ),
            (
                "[kind.gas]\ncrane = { rated_load_t = 6 }\n",
                "kind.gas.crane",
                "crane devices only",
            ),
            (
                "[device.c1]\nkind = \"crane\"\ncrane = { rated_load_t = -1 }\n",
                "device.c1.crane.rated_load_t",
                "above 0",
            ),
            (
                "[device.c1]\nkind = \"crane\"\ncrane = { tons = 6 }\n",
                "(syntax)",
                "tons",
            ),
        ];
        for (src, key, msg) in cases {
            let e = parse_err(src);
            assert_eq!(e.key, key, "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
            assert!(e.line.is_some(), "{src}: {e}");
        }
        // 17 spans: a week of two shifts and a third on three days.
        let entries: Vec<String> = [
            "mon-sun 06:00-12:00",
            "mon-sun 13:00-19:00",
            "mon-wed 20:00-21:00",
        ]
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect();
        let e = parse_err(&format!("[site.s1]\nhours = [{}]\n", entries.join(", ")));
        assert!(e.message.contains("more than 16"), "{e}");
    }

    #[test]
    fn effective_rules_print_and_parse_back() {
        let scheduled = RuleFile::parse(
            "[site.s]\nhours = [\"mon-fri 07:00-12:00\", \"mon-fri 13:00-19:00\", \"sun 22:00-06:00\"]\nutc_offset = \"+07:30\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for kind in DeviceKind::ALL {
            for set in [
                defaults::for_kind(kind),
                scheduled.rules_for("s", kind, "d"),
            ] {
                round_trip(kind, set);
            }
        }
    }

    fn round_trip(kind: DeviceKind, set: RuleSet) {
        let text = to_toml(&format!("kind.{kind}"), &set);
        // As patches of the same rules: every key given, nothing changes.
        let f = RuleFile::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(f.rules_for("s", kind, "d"), set);
        // As new rules under fresh ids they rebuild the same rules.
        if set.rules().len() * 2 > crate::MAX_RULES {
            return;
        }
        let renamed = text.replace("rules.\"", "rules.\"x");
        let f = RuleFile::parse(&renamed).unwrap_or_else(|e| panic!("{e}\n{renamed}"));
        let got = f.rules_for("s", kind, "d");
        for r in set.rules() {
            let mut copy = got.get(&format!("x{}", r.id)).unwrap().clone();
            copy.id = r.id.clone();
            assert_eq!(&copy, r);
        }
    }
}
