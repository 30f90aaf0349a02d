//! Who hears of a warning, when, and by which channel: the notification
//! policy per level (`[policy.red]` … `[policy.blue]`, and
//! `[[policy.overrides]]` per venue), as data with defaults that follow
//! MONITOR-SPEC §1.2 and §2 (red reaches up to the city and the 专班
//! leader, orange the county, yellow the grid officer, blue the
//! enterprise).
//!
//! A policy names groups of people by *selector*, resolved for the
//! warning's venue at the moment it is needed ([`crate::directory`]):
//!
//! | selector | who |
//! |---|---|
//! | `venue.principal`, `venue.safety_officer` | the venue's people in that role |
//! | `grid.officer` | the officers of the venue's grid (网格员) |
//! | `town.<role>`, `county.<role>`, `city.<role>` | on duty in `<role>` (the rota) in the venue's town, county or city |
//! | `region.<role>` | on duty in `<role>` in the nearest region up from the venue that has someone |
//! | `person:<id>` | that person |
//! | `called`, `informed` | (closure only) everyone called, everyone informed so far |
//!
//! Per level: `call` — called at once, in parallel, each must answer (叫应);
//! `inform` — told at once (抄送), no answer expected; `chain` — the steps
//! called in turn while nobody acknowledges within the level's SLA
//! (`[sla]`); `no_response` — told when the chain is exhausted (the shift
//! leader and the level above); `closure` — told of the acknowledgement,
//! the clearing at the source and the disposal (闭环); `call_via` /
//! `inform_via` — the channel kinds used, in the person's own order;
//! `cleared_needs_ack` — whether a warning cleared at the source before
//! anyone answered still waits for a person (else it resolves itself).

use std::collections::HashSet;

use anquan_protocol::Level;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, ROLES};

/// A region tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// 乡镇/街道.
    Town,
    /// 区县.
    County,
    /// 市.
    City,
}

impl Tier {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Town => "town",
            Self::County => "county",
            Self::City => "city",
        }
    }

    /// From [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Town, Self::County, Self::City]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A person's link to a venue.
pub const VENUE_ROLES: [&str; 2] = ["principal", "safety_officer"];

/// A group of people, named in a policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// The venue's people in this role (`venue.principal`).
    Venue(String),
    /// The officers of the venue's grid.
    Grid,
    /// On duty in the role in the venue's region of this tier.
    Tier(Tier, String),
    /// On duty in the role in the nearest region (up from the venue) that
    /// has someone.
    Nearest(String),
    /// One person.
    Person(String),
    /// Closure only: everyone called so far.
    Called,
    /// Closure only: everyone informed so far.
    Informed,
}

impl Selector {
    /// Parses one selector; the error says what is allowed.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(id) = s.strip_prefix("person:") {
            return if anquan_protocol::Id::is_valid(id) {
                Ok(Self::Person(id.to_string()))
            } else {
                Err(format!(
                    "{s:?}: a person id must match [A-Za-z0-9_-]{{1,64}}"
                ))
            };
        }
        match s {
            "called" => return Ok(Self::Called),
            "informed" => return Ok(Self::Informed),
            "grid.officer" => return Ok(Self::Grid),
            _ => {}
        }
        let Some((scope, role)) = s.split_once('.') else {
            return Err(format!(
                "{s:?}: use venue.<role>, grid.officer, town|county|city|region.<role>, person:<id>, called or informed"
            ));
        };
        let rota_role = |role: &str| {
            if ROLES.contains(&role) {
                Ok(role.to_string())
            } else {
                Err(format!(
                    "{s:?}: unknown role {role:?}; use one of {ROLES:?}"
                ))
            }
        };
        match scope {
            "venue" if VENUE_ROLES.contains(&role) => Ok(Self::Venue(role.to_string())),
            "venue" => Err(format!("{s:?}: a venue's people are {VENUE_ROLES:?}")),
            "region" => Ok(Self::Nearest(rota_role(role)?)),
            t => match Tier::parse(t) {
                Some(tier) => Ok(Self::Tier(tier, rota_role(role)?)),
                None => Err(format!(
                    "{s:?}: unknown scope {t:?}; use venue, grid, town, county, city or region"
                )),
            },
        }
    }
}

/// A channel kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    /// SMS through the configured provider (Alibaba Cloud or Tencent Cloud).
    Sms,
    /// A voice call reading the message (Alibaba Cloud VMS, TTS).
    Voice,
    /// A WeCom (企业微信) group robot.
    Wecom,
    /// A DingTalk (钉钉) group robot.
    Dingtalk,
    /// A Feishu (飞书) group bot.
    Feishu,
    /// The signed webhook (own IM/SMS gateway).
    Webhook,
    /// E-mail.
    Email,
}

impl ChannelKind {
    /// Every kind.
    pub const ALL: [Self; 7] = [
        Self::Sms,
        Self::Voice,
        Self::Wecom,
        Self::Dingtalk,
        Self::Feishu,
        Self::Webhook,
        Self::Email,
    ];

    /// The stored name (`deliveries.channel`, metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Voice => "voice",
            Self::Wecom => "wecom",
            Self::Dingtalk => "dingtalk",
            Self::Feishu => "feishu",
            Self::Webhook => "webhook",
            Self::Email => "email",
        }
    }

    /// From [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A group robot (its address is a robot's name in `[[notify.robots]]`).
    pub fn is_robot(self) -> bool {
        matches!(self, Self::Wecom | Self::Dingtalk | Self::Feishu)
    }
}

/// `[policy.<level>]`: every key optional; a missing key takes the
/// level's built-in default (see the module documentation and
/// monitor/README.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LevelPolicy {
    /// Called at once, in parallel; each must acknowledge (叫应).
    pub call: Option<Vec<String>>,
    /// Told at once (抄送); no answer expected.
    pub inform: Option<Vec<String>>,
    /// Steps called in turn while nobody acknowledges within the SLA.
    pub chain: Option<Vec<Vec<String>>>,
    /// Told when the chain is exhausted with no answer (the shift leader,
    /// the level above).
    pub no_response: Option<Vec<String>>,
    /// Told of the acknowledgement, the clearing and the disposal (闭环);
    /// `called` and `informed` name everyone reached so far.
    pub closure: Option<Vec<String>>,
    /// Channel kinds for calls (`sms`, `voice`, `wecom`, `dingtalk`,
    /// `feishu`, `webhook`, `email`), used in each person's own order.
    pub call_via: Option<Vec<String>>,
    /// Channel kinds for everything else (information, closure).
    pub inform_via: Option<Vec<String>>,
    /// A warning cleared at the source before anyone acknowledged still
    /// waits for a person (true) or resolves itself (false).
    pub cleared_needs_ack: Option<bool>,
}

/// `[[policy.overrides]]`: a different policy for some venues at one
/// level; keys not given come from `[policy.<level>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverride {
    /// The venues (ids in `[seed.venues]`).
    pub venues: Vec<String>,
    /// `red`, `orange`, `yellow` or `blue`.
    pub level: String,
    /// See `[policy.<level>]`.
    #[serde(flatten)]
    pub policy: LevelPolicy,
}

/// `[policy]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// 红.
    pub red: LevelPolicy,
    /// 橙.
    pub orange: LevelPolicy,
    /// 黄.
    pub yellow: LevelPolicy,
    /// 蓝.
    pub blue: LevelPolicy,
    /// Per-venue policies.
    pub overrides: Vec<PolicyOverride>,
}

/// A policy ready to use: selectors parsed, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Called at once.
    pub call: Vec<Selector>,
    /// Informed at once.
    pub inform: Vec<Selector>,
    /// The 叫应 chain.
    pub chain: Vec<Vec<Selector>>,
    /// Told when the chain is exhausted.
    pub no_response: Vec<Selector>,
    /// Told of ack, clearing, disposal.
    pub closure: Vec<Selector>,
    /// Channels for calls.
    pub call_via: Vec<ChannelKind>,
    /// Channels for the rest.
    pub inform_via: Vec<ChannelKind>,
    /// Cleared before an ack: still needs one.
    pub cleared_needs_ack: bool,
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A built-in level policy: call, inform, chain, no_response, call_via,
/// inform_via, cleared_needs_ack.
type Builtin<'a> = (
    &'a [&'a str],
    &'a [&'a str],
    Vec<&'a [&'a str]>,
    &'a [&'a str],
    Vec<&'a str>,
    Vec<&'a str>,
    bool,
);

/// The built-in policy of a level (MONITOR-SPEC §2: notify up to city and
/// 专班 leader / county / grid officer / enterprise).
pub fn builtin(level: Level) -> LevelPolicy {
    let all = ChannelKind::ALL.map(ChannelKind::as_str);
    let no_voice: Vec<&str> = all.iter().copied().filter(|k| *k != "voice").collect();
    let quiet: Vec<&str> = no_voice.iter().copied().filter(|k| *k != "sms").collect();
    let (call, inform, chain, no_response, call_via, inform_via, needs_ack): Builtin = match level {
        Level::Red => (
            &["venue.safety_officer", "venue.principal", "grid.officer"],
            &["county.duty_officer"],
            vec![
                &["county.duty_officer", "county.shift_leader"],
                &["city.duty_officer", "city.task_force_leader"],
            ],
            &["city.shift_leader", "city.task_force_leader"],
            all.to_vec(),
            no_voice.clone(),
            true,
        ),
        Level::Orange => (
            &["venue.safety_officer", "venue.principal"],
            &["grid.officer"],
            vec![&["grid.officer"], &["county.duty_officer"]],
            &["county.shift_leader", "city.duty_officer"],
            no_voice.clone(),
            no_voice.clone(),
            true,
        ),
        Level::Yellow => (
            &["venue.safety_officer"],
            &[],
            vec![&["venue.principal"], &["grid.officer"]],
            &["region.shift_leader", "county.duty_officer"],
            no_voice.clone(),
            no_voice.clone(),
            false,
        ),
        Level::Blue => (
            &["venue.safety_officer"],
            &[],
            vec![&["venue.principal"]],
            &["grid.officer"],
            quiet.clone(),
            quiet.clone(),
            false,
        ),
    };
    LevelPolicy {
        call: Some(strs(call)),
        inform: Some(strs(inform)),
        chain: Some(chain.into_iter().map(strs).collect()),
        no_response: Some(strs(no_response)),
        closure: Some(strs(&["called", "informed"])),
        call_via: Some(strs(&call_via)),
        inform_via: Some(strs(&inform_via)),
        cleared_needs_ack: Some(needs_ack),
    }
}

impl LevelPolicy {
    /// `self` with the keys it lacks taken from `base`.
    fn over(&self, base: &LevelPolicy) -> LevelPolicy {
        LevelPolicy {
            call: self.call.clone().or_else(|| base.call.clone()),
            inform: self.inform.clone().or_else(|| base.inform.clone()),
            chain: self.chain.clone().or_else(|| base.chain.clone()),
            no_response: self
                .no_response
                .clone()
                .or_else(|| base.no_response.clone()),
            closure: self.closure.clone().or_else(|| base.closure.clone()),
            call_via: self.call_via.clone().or_else(|| base.call_via.clone()),
            inform_via: self.inform_via.clone().or_else(|| base.inform_via.clone()),
            cleared_needs_ack: self.cleared_needs_ack.or(base.cleared_needs_ack),
        }
    }

    /// Parses every selector and channel; errors name the key under `key`.
    fn compile(&self, key: &str) -> Result<Policy, ConfigError> {
        let group = |name: &str, v: &Option<Vec<String>>, closure: bool| {
            let mut out = Vec::new();
            for (i, s) in v.iter().flatten().enumerate() {
                let sel = Selector::parse(s)
                    .map_err(|e| ConfigError::new(format!("{key}.{name}[{i}]"), e))?;
                if !closure && matches!(sel, Selector::Called | Selector::Informed) {
                    return Err(ConfigError::new(
                        format!("{key}.{name}[{i}]"),
                        "called and informed name people only in closure",
                    ));
                }
                out.push(sel);
            }
            Ok::<_, ConfigError>(out)
        };
        let via = |name: &str, v: &Option<Vec<String>>| {
            let mut out = Vec::new();
            for (i, s) in v.iter().flatten().enumerate() {
                let k = ChannelKind::parse(s).ok_or_else(|| {
                    ConfigError::new(
                        format!("{key}.{name}[{i}]"),
                        format!(
                            "unknown channel {s:?}; use {:?}",
                            ChannelKind::ALL.map(ChannelKind::as_str)
                        ),
                    )
                })?;
                out.push(k);
            }
            if out.is_empty() {
                return Err(ConfigError::new(
                    format!("{key}.{name}"),
                    "name at least one channel",
                ));
            }
            Ok(out)
        };
        let mut chain = Vec::new();
        for (i, step) in self.chain.iter().flatten().enumerate() {
            if step.is_empty() {
                return Err(ConfigError::new(
                    format!("{key}.chain[{i}]"),
                    "a step names at least one selector",
                ));
            }
            chain.push(group(&format!("chain[{i}]"), &Some(step.clone()), false)?);
        }
        Ok(Policy {
            call: group("call", &self.call, false)?,
            inform: group("inform", &self.inform, false)?,
            chain,
            no_response: group("no_response", &self.no_response, false)?,
            closure: group("closure", &self.closure, true)?,
            call_via: via("call_via", &self.call_via)?,
            inform_via: via("inform_via", &self.inform_via)?,
            cleared_needs_ack: self.cleared_needs_ack.unwrap_or(true),
        })
    }
}

/// Every effective policy, compiled once at start.
#[derive(Debug, Clone)]
pub struct Policies {
    levels: [Policy; 4],
    venues: Vec<(String, Level, Policy)>,
    people: Vec<String>,
}

fn idx(level: Level) -> usize {
    match level {
        Level::Blue => 0,
        Level::Yellow => 1,
        Level::Orange => 2,
        Level::Red => 3,
    }
}

impl PolicyConfig {
    fn of(&self, level: Level) -> &LevelPolicy {
        match level {
            Level::Red => &self.red,
            Level::Orange => &self.orange,
            Level::Yellow => &self.yellow,
            Level::Blue => &self.blue,
        }
    }

    /// Compiles and checks every policy. `people` and `venues` are the ids
    /// a policy may name (the `[seed]`); an unknown one is an error naming
    /// the key.
    pub fn compile(
        &self,
        people: &HashSet<&str>,
        venues: &HashSet<&str>,
    ) -> Result<Policies, ConfigError> {
        let check_people = |key: &str, p: &Policy| -> Result<(), ConfigError> {
            let groups = [
                ("call", &p.call),
                ("inform", &p.inform),
                ("no_response", &p.no_response),
                ("closure", &p.closure),
            ];
            let chain = p
                .chain
                .iter()
                .enumerate()
                .map(|(i, g)| (format!("chain[{i}]"), g));
            for (name, g) in groups.iter().map(|(n, g)| (n.to_string(), *g)).chain(chain) {
                for (i, s) in g.iter().enumerate() {
                    if let Selector::Person(id) = s
                        && !people.contains(id.as_str())
                    {
                        return Err(ConfigError::new(
                            format!("{key}.{name}[{i}]"),
                            format!("no person {id:?} in seed.people"),
                        ));
                    }
                }
            }
            Ok(())
        };
        let mut levels = Vec::with_capacity(4);
        for level in [Level::Blue, Level::Yellow, Level::Orange, Level::Red] {
            let key = format!("policy.{}", level.as_str());
            let p = self.of(level).over(&builtin(level)).compile(&key)?;
            check_people(&key, &p)?;
            levels.push(p);
        }
        let mut out = Vec::new();
        for (i, o) in self.overrides.iter().enumerate() {
            let key = format!("policy.overrides[{i}]");
            let level = Level::parse(&o.level).ok_or_else(|| {
                ConfigError::new(
                    format!("{key}.level"),
                    "must be red, orange, yellow or blue",
                )
            })?;
            if o.venues.is_empty() {
                return Err(ConfigError::new(
                    format!("{key}.venues"),
                    "name at least one venue",
                ));
            }
            let base = self.of(level).over(&builtin(level));
            let p = o.policy.over(&base).compile(&key)?;
            check_people(&key, &p)?;
            for (j, v) in o.venues.iter().enumerate() {
                if !venues.contains(v.as_str()) {
                    return Err(ConfigError::new(
                        format!("{key}.venues[{j}]"),
                        format!("no venue {v:?} in seed.venues"),
                    ));
                }
                if out
                    .iter()
                    .any(|(x, l, _): &(String, Level, Policy)| x == v && *l == level)
                {
                    return Err(ConfigError::new(
                        format!("{key}.venues[{j}]"),
                        format!("venue {v:?} has another override at {}", level.as_str()),
                    ));
                }
                out.push((v.clone(), level, p.clone()));
            }
        }
        let mut named: Vec<String> = Vec::new();
        for p in levels.iter().chain(out.iter().map(|(_, _, p)| p)) {
            for s in p
                .call
                .iter()
                .chain(&p.inform)
                .chain(p.chain.iter().flatten())
                .chain(&p.no_response)
                .chain(&p.closure)
            {
                if let Selector::Person(id) = s
                    && !named.contains(id)
                {
                    named.push(id.clone());
                }
            }
        }
        let levels: [Policy; 4] = levels
            .try_into()
            .map_err(|_| ConfigError::new("policy", "internal: four levels expected"))?;
        Ok(Policies {
            levels,
            venues: out,
            people: named,
        })
    }
}

impl Policies {
    /// The built-in policies (no configuration).
    pub fn builtin() -> Self {
        // The built-in selectors name no person and no venue.
        PolicyConfig::default()
            .compile(&HashSet::new(), &HashSet::new())
            .unwrap_or_else(|e| unreachable_policy(&e))
    }

    /// The people the policies name by id (`person:<id>`).
    pub fn people(&self) -> Vec<String> {
        self.people.clone()
    }

    /// The policy for a warning at `level` at `venue`.
    pub fn get(&self, level: Level, venue: Option<&str>) -> &Policy {
        venue
            .and_then(|v| {
                self.venues
                    .iter()
                    .find(|(x, l, _)| x == v && *l == level)
                    .map(|(_, _, p)| p)
            })
            .unwrap_or(&self.levels[idx(level)])
    }
}

#[allow(clippy::panic)]
fn unreachable_policy(e: &ConfigError) -> Policies {
    // The built-in defaults are constants checked by a unit test.
    panic!("the built-in notification policy is invalid: {e}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn selectors_parse_or_say_why_not() {
        assert_eq!(
            Selector::parse("venue.principal"),
            Ok(Selector::Venue("principal".into()))
        );
        assert_eq!(Selector::parse("grid.officer"), Ok(Selector::Grid));
        assert_eq!(
            Selector::parse("county.duty_officer"),
            Ok(Selector::Tier(Tier::County, "duty_officer".into()))
        );
        assert_eq!(
            Selector::parse("region.shift_leader"),
            Ok(Selector::Nearest("shift_leader".into()))
        );
        assert_eq!(
            Selector::parse("person:p-1"),
            Ok(Selector::Person("p-1".into()))
        );
        for bad in [
            "venue.mayor",
            "county.mayor",
            "province.city",
            "nobody",
            "person:",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_builtin_policies_follow_the_spec() {
        let p = Policies::builtin();
        let red = p.get(Level::Red, None);
        assert_eq!(
            red.call.len(),
            3,
            "safety officer, principal, grid officer at once"
        );
        assert!(
            red.inform
                .contains(&Selector::Tier(Tier::County, "duty_officer".into()))
        );
        assert!(
            red.chain
                .iter()
                .flatten()
                .any(|s| *s == Selector::Tier(Tier::City, "task_force_leader".into())),
            "red reaches the city and the 专班 leader"
        );
        assert!(red.call_via.contains(&ChannelKind::Voice));
        assert!(red.cleared_needs_ack);
        let orange = p.get(Level::Orange, None);
        assert!(
            orange
                .chain
                .iter()
                .flatten()
                .all(|s| !matches!(s, Selector::Tier(Tier::City, _))),
            "orange stops at the county"
        );
        assert!(!orange.call_via.contains(&ChannelKind::Voice));
        let blue = p.get(Level::Blue, None);
        assert!(!blue.cleared_needs_ack);
        assert!(!blue.call_via.contains(&ChannelKind::Sms));
    }

    #[test]
    fn config_overrides_and_errors_name_the_key() {
        let people = HashSet::from(["p1"]);
        let venues = HashSet::from(["s1"]);
        let cfg: PolicyConfig = toml::from_str(
            r#"
[red]
call = ["person:p1"]
[[overrides]]
venues = ["s1"]
level = "red"
inform = ["city.city"]
"#,
        )
        .unwrap();
        let p = cfg.compile(&people, &venues).unwrap();
        assert_eq!(
            p.get(Level::Red, None).call,
            [Selector::Person("p1".into())]
        );
        let s1 = p.get(Level::Red, Some("s1"));
        assert_eq!(
            s1.call,
            [Selector::Person("p1".into())],
            "inherits [policy.red]"
        );
        assert_eq!(s1.inform, [Selector::Tier(Tier::City, "city".into())]);
        assert_eq!(
            p.get(Level::Red, None).chain,
            Policies::builtin().get(Level::Red, None).chain,
            "unset keys keep the built-in default"
        );
        for (text, key) in [
            ("[red]\ncall = [\"person:ghost\"]\n", "policy.red.call[0]"),
            (
                "[orange]\nchain = [[\"grid.officer\"], [\"person:ghost\"]]\n",
                "policy.orange.chain[1][0]",
            ),
            ("[red]\ninform = [\"called\"]\n", "policy.red.inform[0]"),
            (
                "[yellow]\ncall_via = [\"pigeon\"]\n",
                "policy.yellow.call_via[0]",
            ),
            ("[blue]\ninform_via = []\n", "policy.blue.inform_via"),
            ("[red]\nchain = [[]]\n", "policy.red.chain[0]"),
            (
                "[[overrides]]\nvenues = [\"nowhere\"]\nlevel = \"red\"\n",
                "policy.overrides[0].venues[0]",
            ),
            (
                "[[overrides]]\nvenues = [\"s1\"]\nlevel = \"purple\"\n",
                "policy.overrides[0].level",
            ),
        ] {
            let cfg: PolicyConfig = toml::from_str(text).unwrap();
            let e = cfg.compile(&people, &venues).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }
}
