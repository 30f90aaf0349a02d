//! Alarm storms: one cause, one warning. When a site loses power every
//! device on it goes offline at once; when a pump trips every pressure
//! sensor on the loop falls together. Without grouping each alarm opens its
//! own warning and its own call ladder, and the people on duty get hundreds
//! of calls for one cause while a real red alarm waits behind them in the
//! providers' rate limits.
//!
//! A grouping rule ([`GroupRule`], data in `[[correlation.rules]]` with the
//! defaults of [`CorrelationConfig::default`]) takes alarms of matching
//! rules within one scope (the devices of one gateway site, or of one
//! venue) into one **group warning** once `min_members` of them were raised
//! within `window_s`. The group is an ordinary warning (one row, one call
//! ladder, one line on the dashboard, one line in the reports) of kind
//! `group` and rule `group.<name>`, whose value is the number of members in
//! it now; its members are listed (`warning_members`). Intake does the
//! grouping (`crate::intake`):
//!
//! * a matching alarm whose group is open **joins** it (no warning of its
//!   own, nobody called again); one that would escalate the group past the
//!   rule's `max_level` does not join;
//! * while fewer than `min_members` arrived, each opens its own warning,
//!   whose first call waits `settle_s` (a hold, like a maintenance
//!   window's): when the group forms meanwhile, those not yet called are
//!   folded into it (resolved as grouped) and nobody was called twice.
//!   Those already called (`settle_s` 0, or waited out) keep their own
//!   warning and are members too: their transitions go to both;
//! * a member that **recovers** leaves the group; when the last one has,
//!   the group is cleared at the source (those called hear it);
//! * a member that goes **red** on its own **breaks out**: it leaves the
//!   group and opens its own warning, called at once. No group ever takes a
//!   red alarm: a rule whose `max_level` is red is refused at load, naming
//!   the rule.
//!
//! The first matching rule (in file order) decides; an alarm matching none
//! is handled alone as always.

use anquan_protocol::Level;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::db::Columns;

use crate::config::ConfigError;
use crate::error::Result;

/// The device kind of a group warning.
pub const GROUP_KIND: &str = "group";
/// The device column of a group warning (it has many).
pub const GROUP_DEVICE: &str = "*";

/// `[correlation]`: alarm storms gathered into one warning per cause
/// (monitor/README.md, "Alarm storms").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// Group storms of alarms into one warning per cause (`false`: every
    /// alarm alone, as before).
    pub enabled: bool,
    /// `[[correlation.rules]]`, in order (the first match decides). Leaving
    /// the key out keeps the defaults: `site_offline` (every `*.offline`
    /// alarm of one site, 3 within 120 s, first calls held 30 s: an
    /// offline alarm is judged after minutes of silence anyway) and
    /// `venue_burst` (one rule on 3 devices of one venue within 60 s, not
    /// held: a gas alarm is called at once, and from the third on they
    /// gather in one warning). Red alarms are never held or grouped.
    pub rules: Vec<GroupRule>,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: vec![
                GroupRule {
                    name: "site_offline".into(),
                    rules: "*.offline".into(),
                    by: GroupScope::Site,
                    per_rule: false,
                    min_members: 3,
                    window_s: 120,
                    settle_s: 30,
                    max_level: "orange".into(),
                },
                GroupRule {
                    name: "venue_burst".into(),
                    rules: "*".into(),
                    by: GroupScope::Venue,
                    per_rule: true,
                    min_members: 3,
                    window_s: 60,
                    settle_s: 0,
                    max_level: "orange".into(),
                },
            ],
        }
    }
}

/// What a group gathers over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupScope {
    /// The devices behind one gateway site (a power or uplink loss).
    Site,
    /// The devices of one venue (needs the site registered to a venue).
    Venue,
}

/// One grouping rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    /// Its name (`[a-z0-9_]`, unique): the group's rule is `group.<name>`,
    /// named in messages by `readings."group.<name>"` of messages.toml.
    pub name: String,
    /// The alarm rules it takes: a rule id (`gas.lel`), `*.suffix`
    /// (`*.offline`), `prefix.*` (`water.*`) or `*` (any).
    pub rules: String,
    /// `site` or `venue`.
    pub by: GroupScope,
    /// One group per alarm rule within the scope (the same rule on many
    /// devices) instead of one for every matching rule.
    #[serde(default)]
    pub per_rule: bool,
    /// Members that make a group (2 to 10 000).
    pub min_members: u32,
    /// … raised within this many seconds (1 to 3600).
    pub window_s: u64,
    /// Seconds a matching alarm's first call waits while a group may form
    /// (0 to 300; 0: called at once, and only later ones are grouped).
    pub settle_s: u64,
    /// The highest level a group takes (`blue`, `yellow` or `orange`; a
    /// red alarm always stands alone).
    pub max_level: String,
}

impl GroupRule {
    /// The group's rule id.
    pub fn group_rule(&self) -> String {
        format!("group.{}", self.name)
    }

    /// The level ceiling (validated at load; blue when unparsable).
    pub fn ceiling(&self) -> Level {
        Level::parse(&self.max_level).unwrap_or(Level::Blue)
    }

    /// Whether it takes alarms of `rule`.
    pub fn matches(&self, rule: &str) -> bool {
        let p = self.rules.as_str();
        if p == "*" {
            true
        } else if let Some(suffix) = p.strip_prefix('*') {
            rule.ends_with(suffix)
        } else if let Some(prefix) = p.strip_suffix('*') {
            rule.starts_with(prefix)
        } else {
            rule == p
        }
    }

    /// The group's alarm key for an alarm of `rule` within `scope` (a site
    /// or venue id): one open group per key (the open-alarm unique index).
    pub fn key(&self, scope: &str, rule: &str) -> String {
        if self.per_rule {
            format!("group/{}/{scope}/{rule}", self.name)
        } else {
            format!("group/{}/{scope}", self.name)
        }
    }
}

impl CorrelationConfig {
    /// The rule that takes a raised alarm of `rule` at `level`, if any
    /// (never a red one).
    pub fn rule_for(&self, rule: &str, level: Level) -> Option<&GroupRule> {
        if !self.enabled || level == Level::Red || rule.starts_with("group.") {
            return None;
        }
        self.rules
            .iter()
            .find(|r| r.matches(rule) && level <= r.ceiling())
    }

    /// Checks the rules; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let key = |k: &str| format!("correlation.rules[{i}].{k}");
            if r.name.is_empty()
                || r.name.len() > 40
                || !r
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(ConfigError::new(
                    key("name"),
                    format!("{:?}: 1 to 40 of a-z, 0-9 and _", r.name),
                ));
            }
            if !names.insert(r.name.as_str()) {
                return Err(ConfigError::new(
                    key("name"),
                    format!("{:?} is used by an earlier rule", r.name),
                ));
            }
            let p = r.rules.as_str();
            let body = p.trim_start_matches('*').trim_end_matches('*');
            if p.is_empty()
                || (p != "*" && body.is_empty())
                || body.contains('*')
                || (p.starts_with('*') && p.ends_with('*') && p != "*")
                || !body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(ConfigError::new(
                    key("rules"),
                    format!(
                        "{p:?}: a rule id, *.suffix, prefix.* or * (rule {:?})",
                        r.name
                    ),
                ));
            }
            match Level::parse(&r.max_level) {
                Some(Level::Red) => {
                    return Err(ConfigError::new(
                        key("max_level"),
                        format!(
                            "rule {:?} would swallow red alarms into a group; a red alarm always stands alone (use orange or lower)",
                            r.name
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(ConfigError::new(
                        key("max_level"),
                        format!("{:?}: blue, yellow or orange", r.max_level),
                    ));
                }
            }
            if !(2..=10_000).contains(&r.min_members) {
                return Err(ConfigError::new(
                    key("min_members"),
                    format!("{} (rule {:?}): 2 to 10 000", r.min_members, r.name),
                ));
            }
            if !(1..=3600).contains(&r.window_s) {
                return Err(ConfigError::new(
                    key("window_s"),
                    format!("{} (rule {:?}): 1 to 3600", r.window_s, r.name),
                ));
            }
            if r.settle_s > 300 {
                return Err(ConfigError::new(
                    key("settle_s"),
                    format!(
                        "{} (rule {:?}): at most 300; a longer wait delays every call it covers",
                        r.settle_s, r.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

crate::db::row! {
    /// One alarm of a group warning.
    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    pub struct GroupMember {
        /// The alarm: `site/device/rule`.
        pub alarm_key: String,
        /// Device id.
        pub device: String,
        /// Its rule.
        pub rule: String,
        /// Its level (the latest).
        pub level: String,
        /// When it joined (Unix ms).
        pub joined_ms: i64,
        /// When it left (Unix ms); none while in the group.
        #[schema(required = true)]
        pub left_ms: Option<i64>,
        /// Why it left: `recovered` or `broke out` (went red on its own).
        #[schema(required = true)]
        pub left_why: Option<String>,
    }
}

/// The members of group warning `id`, those in it first, then by arrival
/// (at most 10 000).
pub async fn members(c: &mut AnyConnection, id: &str) -> Result<Vec<GroupMember>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM warning_members WHERE group_id = $1 \
         ORDER BY CASE WHEN left_ms IS NULL THEN 0 ELSE 1 END, joined_ms, alarm_key LIMIT 10000",
        GroupMember::select()
    ))
    .bind(id)
    .fetch_all(&mut *c)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_documented() {
        let mut r = CorrelationConfig::default().rules[0].clone();
        assert!(r.matches("gas.offline") && r.matches("crane.offline"));
        assert!(!r.matches("gas.lel") && !r.matches("offline.gas"));
        r.rules = "water.*".into();
        assert!(r.matches("water.pressure_low") && !r.matches("gas.lel"));
        r.rules = "gas.lel".into();
        assert!(r.matches("gas.lel") && !r.matches("gas.lel2"));
        r.rules = "*".into();
        assert!(r.matches("anything"));
    }

    #[test]
    fn red_stands_alone_and_the_first_rule_decides() {
        let c = CorrelationConfig::default();
        assert_eq!(
            c.rule_for("gas.offline", Level::Yellow)
                .map(|r| r.name.as_str()),
            Some("site_offline")
        );
        assert_eq!(
            c.rule_for("gas.lel", Level::Orange)
                .map(|r| r.name.as_str()),
            Some("venue_burst")
        );
        assert_eq!(c.rule_for("gas.lel", Level::Red), None);
        assert_eq!(c.rule_for("group.venue_burst", Level::Blue), None);
        let off = CorrelationConfig {
            enabled: false,
            ..c
        };
        assert_eq!(off.rule_for("gas.offline", Level::Yellow), None);
    }

    #[test]
    fn keys_separate_scopes_and_rules() {
        let c = CorrelationConfig::default();
        let (site, venue) = (&c.rules[0], &c.rules[1]);
        assert_eq!(
            site.key("s1", "gas.offline"),
            site.key("s1", "crane.offline")
        );
        assert_ne!(site.key("s1", "gas.offline"), site.key("s2", "gas.offline"));
        assert_ne!(venue.key("v1", "gas.lel"), venue.key("v1", "gas.co"));
    }

    #[test]
    fn bad_rules_are_refused_naming_the_key() {
        let base = CorrelationConfig::default();
        assert!(base.validate().is_ok());
        let with = |f: &dyn Fn(&mut GroupRule)| {
            let mut c = base.clone();
            f(&mut c.rules[1]);
            c.validate().err().map(|e| (e.key, e.reason))
        };
        let (k, why) = with(&|r| r.max_level = "red".into()).unwrap();
        assert_eq!(k, "correlation.rules[1].max_level");
        assert!(why.contains("venue_burst") && why.contains("red"), "{why}");
        assert_eq!(
            with(&|r| r.max_level = "pink".into()).unwrap().0,
            "correlation.rules[1].max_level"
        );
        assert_eq!(
            with(&|r| r.name = "site_offline".into()).unwrap().0,
            "correlation.rules[1].name"
        );
        assert_eq!(
            with(&|r| r.name = "Bad Name".into()).unwrap().0,
            "correlation.rules[1].name"
        );
        for p in ["", "**", "*a*", "a*b", "gas lel"] {
            assert_eq!(
                with(&|r| r.rules = p.into()).unwrap().0,
                "correlation.rules[1].rules",
                "{p}"
            );
        }
        assert_eq!(
            with(&|r| r.min_members = 1).unwrap().0,
            "correlation.rules[1].min_members"
        );
        assert_eq!(
            with(&|r| r.window_s = 0).unwrap().0,
            "correlation.rules[1].window_s"
        );
        assert_eq!(
            with(&|r| r.settle_s = 301).unwrap().0,
            "correlation.rules[1].settle_s"
        );
    }
}
