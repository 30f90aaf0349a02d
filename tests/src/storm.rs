//! The city-scale alarm storm of issue 22 (item 4) as data, for the
//! `storm-bench` binary: which sites are cut, which raise a real red alarm,
//! the alarm events a gateway sends for them (the wire contract, with the
//! default rules' ids and levels), the monitor's registry and
//! configuration, and the statistics of the report. No I/O here: the
//! binary runs the services and the clock.
//!
//! The city: one gateway per site (DESIGN.md: "one gateway serves one
//! site"), one venue per site, ten venues per town (one grid, one grid
//! officer per town), fifty per county (a duty officer and a shift leader
//! on duty), one city (duty officer, 专班 leader, shift leader). Every
//! venue has its own safety officer and principal. Everyone is reached by
//! SMS and voice (the providers' stand-ins) and by webhook (the bench's
//! receiver), so that the first call of an alarm is time-stamped where it
//! arrives.

use std::collections::HashSet;
use std::fmt::Write as _;

use anquan_edge_rules::{RuleKind, defaults};
use anquan_protocol::{AlarmEvent, AlarmState, DeviceKind, EventId, Id, Level, RuleId};

/// The sizes of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Simulated gateways, one site each.
    pub gateways: u32,
    /// Devices in total, spread evenly over the gateways.
    pub devices: u64,
    /// Sites whose power is cut.
    pub cut_sites: u32,
    /// Real red alarms during the storm, at other sites.
    pub reds: u32,
    /// Red alarms of the baseline (no storm), at yet other sites.
    pub baseline_reds: u32,
}

impl Sizes {
    /// The issue's numbers: 200 gateways, 1 000 000 devices, a power cut
    /// at 50 sites, 20 red alarms (and 20 for the baseline).
    pub const ISSUE: Self = Self {
        gateways: 200,
        devices: 1_000_000,
        cut_sites: 50,
        reds: 20,
        baseline_reds: 20,
    };

    /// A quick run.
    pub const SMALL: Self = Self {
        gateways: 20,
        devices: 20_000,
        cut_sites: 5,
        reds: 5,
        baseline_reds: 5,
    };

    /// Checks that the sizes make a storm: the cut, red and baseline sites
    /// are different sites.
    pub fn validate(&self) -> Result<(), String> {
        if self.gateways == 0 || self.gateways > 9_999 {
            return Err("--gateways: 1 to 9999".into());
        }
        if self.devices < u64::from(self.gateways) {
            return Err("--devices: at least one per gateway".into());
        }
        if self.devices / u64::from(self.gateways) > 999_999 {
            return Err("--devices: at most 999 999 per gateway".into());
        }
        let used = u64::from(self.cut_sites) + u64::from(self.reds) + u64::from(self.baseline_reds);
        if used > u64::from(self.gateways) {
            return Err(format!(
                "--cut-sites + --reds + --baseline-reds = {used}: more than the {} sites (each is a different site)",
                self.gateways
            ));
        }
        Ok(())
    }

    /// Devices of gateway `i` (the remainder goes to the first ones).
    pub fn devices_of(&self, i: u32) -> u32 {
        let g = u64::from(self.gateways.max(1));
        let base = self.devices / g;
        let extra = u64::from(u64::from(i) < self.devices % g);
        u32::try_from(base + extra).unwrap_or(u32::MAX)
    }
}

/// A small deterministic generator (splitmix64): the same seed, the same
/// city and the same storm.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// From a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// 32 hex digits.
    pub fn hex(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

/// One simulated site and its gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// 0-based.
    pub index: u32,
    /// `s0001`: the site id, also its venue's id.
    pub id: String,
    /// `gw-0001`.
    pub gateway: String,
    /// Its devices.
    pub devices: u32,
    /// Its gateway's token (`[[auth.gateways]]`).
    pub token: String,
}

/// What the run does where.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The sizes.
    pub sizes: Sizes,
    /// Every site, by index.
    pub sites: Vec<Site>,
    /// Sites whose power is cut (indexes).
    pub cut: Vec<u32>,
    /// Sites of the red alarms during the storm.
    pub storm_reds: Vec<u32>,
    /// Sites of the baseline's red alarms.
    pub baseline_reds: Vec<u32>,
    /// The operator token (acknowledging the red alarms).
    pub operator_token: String,
    /// Secrets the replicas share (webhook HMAC, acknowledgement links).
    pub webhook_secret: String,
    /// The acknowledgement links' key.
    pub ack_secret: String,
}

impl Plan {
    /// Lays out the city; which sites are cut or raise a red alarm is drawn
    /// from `seed`.
    pub fn new(sizes: Sizes, seed: u64) -> Result<Self, String> {
        sizes.validate()?;
        let mut rng = Rng::new(seed);
        let sites: Vec<Site> = (0..sizes.gateways)
            .map(|i| Site {
                index: i,
                id: format!("s{:04}", i + 1),
                gateway: format!("gw-{:04}", i + 1),
                devices: sizes.devices_of(i),
                token: format!("storm-gw-{:04}-{}", i + 1, rng.hex()),
            })
            .collect();
        // A partial Fisher–Yates shuffle: the first sites drawn are cut, the
        // next raise the storm's red alarms, the next the baseline's.
        let mut order: Vec<u32> = (0..sizes.gateways).collect();
        let take = (sizes.cut_sites + sizes.reds + sizes.baseline_reds) as usize;
        for k in 0..take.min(order.len()) {
            let rest = (order.len() - k) as u64;
            let j = k + rng.below(rest) as usize;
            order.swap(k, j);
        }
        let (c, r) = (sizes.cut_sites as usize, sizes.reds as usize);
        let mut cut = order[..c].to_vec();
        let mut storm_reds = order[c..c + r].to_vec();
        let mut baseline_reds = order[c + r..take].to_vec();
        cut.sort_unstable();
        storm_reds.sort_unstable();
        baseline_reds.sort_unstable();
        Ok(Self {
            sizes,
            sites,
            cut,
            storm_reds,
            baseline_reds,
            operator_token: format!("storm-operator-{}", rng.hex()),
            webhook_secret: format!("storm-webhook-{}", rng.hex()),
            ack_secret: format!("storm-ack-{}{}", rng.hex(), rng.hex()),
        })
    }

    /// Devices that go offline in the cut.
    pub fn cut_devices(&self) -> u64 {
        self.cut
            .iter()
            .filter_map(|&i| self.sites.get(i as usize))
            .map(|s| u64::from(s.devices))
            .sum()
    }

    /// The town of site `i` (ten sites a town).
    fn town(i: u32) -> u32 {
        i / 10
    }

    /// The county of town `t` (five towns, fifty sites, a county).
    fn county(t: u32) -> u32 {
        t / 5
    }

    /// Everyone in the registry.
    pub fn people(&self) -> Vec<Person> {
        let mut out = Vec::new();
        let mut push =
            |id: String, name: String, role: &'static str, region: String, what: Role| {
                let phone = format!("139{:08}", out.len() + 1);
                out.push(Person {
                    id,
                    name,
                    role,
                    region,
                    phone,
                    what,
                });
            };
        for s in &self.sites {
            let town = format!("town-{:03}", Self::town(s.index) + 1);
            push(
                format!("p-{}-safety", s.id),
                format!("{} 安全员", s.id),
                "safety_officer",
                town.clone(),
                Role::SafetyOfficer(s.index),
            );
            push(
                format!("p-{}-principal", s.id),
                format!("{} 负责人", s.id),
                "principal",
                town,
                Role::Principal(s.index),
            );
        }
        for t in 0..self.towns() {
            push(
                format!("p-grid-{:03}", t + 1),
                format!("网格员 {:03}", t + 1),
                "grid_officer",
                format!("town-{:03}", t + 1),
                Role::GridOfficer(t),
            );
        }
        for c in 0..self.counties() {
            let region = format!("county-{:02}", c + 1);
            push(
                format!("p-county-{:02}-duty", c + 1),
                format!("县值班 {:02}", c + 1),
                "county",
                region.clone(),
                Role::CountyDuty(c),
            );
            push(
                format!("p-county-{:02}-leader", c + 1),
                format!("县带班 {:02}", c + 1),
                "county",
                region,
                Role::CountyLeader(c),
            );
        }
        for (id, name, what) in [
            ("p-city-duty", "市值班", Role::CityDuty),
            ("p-city-force", "市专班", Role::CityTaskForce),
            ("p-city-leader", "市带班", Role::CityLeader),
        ] {
            push(id.into(), name.into(), "city", "city".into(), what);
        }
        out
    }

    fn towns(&self) -> u32 {
        Self::town(self.sizes.gateways.saturating_sub(1)) + 1
    }

    fn counties(&self) -> u32 {
        Self::county(self.towns().saturating_sub(1)) + 1
    }

    /// The monitor's configuration for one replica: the registry of the
    /// city as `[seed]`, one token per gateway, the providers' stand-ins
    /// (`standin`), everyone's webhook under `hook_base`, then `extra`
    /// (whole sections, e.g. a `[correlation]` of a newer monitor).
    pub fn monitor_config(&self, c: &MonitorConfig<'_>) -> String {
        let mut t = String::new();
        let templates = [
            "call",
            "inform",
            "escalated",
            "no_response",
            "acked",
            "cleared",
            "disposal",
            "resolved",
            "digest",
        ]
        .iter()
        .fold(String::new(), |mut s, m| {
            let _ = writeln!(s, "{m} = \"SMS_{}\"", m.to_uppercase());
            s
        });
        let _ = write!(
            t,
            r#"# storm-bench: replica {name}
[server]
listen = "{listen}"

[database]
url = "{db}"
max_connections = {pool}

[auth]
intake_tokens = []
api_tokens = ["{operator}"]

[scheduler]
tick_ms = 1000

[notify]
lang = "zh"

[notify.webhook]
secret = "{webhook}"
timeout_ms = 5000

# The providers' own flow control per number (their defaults).
[notify.sms]
provider = "aliyun"
endpoint = "{sms}"
access_key_id = "{aid}"
access_key_secret = "{asec}"
sign_name = "安全监管"
per_minute = 1
per_hour = 5

[notify.sms.templates]
{templates}
[notify.voice]
provider = "aliyun"
endpoint = "{voice}"
access_key_id = "{aid}"
access_key_secret = "{asec}"
called_show_number = "057100000000"
per_minute = 1
per_hour = 5

[notify.voice.templates]
call = "TTS_CALL"
escalated = "TTS_ESCALATED"
no_response = "TTS_NO_RESPONSE"

[ack]
secret = "{ack}"

[web]
public_base_url = "http://{listen}"

"#,
            name = c.name,
            listen = c.listen,
            db = c.database_url,
            pool = c.pool,
            operator = self.operator_token,
            webhook = self.webhook_secret,
            sms = c.sms_endpoint,
            voice = c.voice_endpoint,
            aid = c.aliyun_id,
            asec = c.aliyun_secret,
            ack = self.ack_secret,
        );
        for s in &self.sites {
            let _ = write!(
                t,
                "[[auth.gateways]]\nname = \"{}\"\ntoken = \"{}\"\nsites = [\"{}\"]\n\n",
                s.gateway, s.token, s.id
            );
        }
        let _ = write!(
            t,
            "[[seed.regions]]\nid = \"city\"\nname = \"风暴市\"\ntier = \"city\"\n\n"
        );
        for c in 0..self.counties() {
            let _ = write!(
                t,
                "[[seed.regions]]\nid = \"county-{n:02}\"\nname = \"第{n}县\"\ntier = \"county\"\nparent_id = \"city\"\n\n",
                n = c + 1
            );
        }
        for tw in 0..self.towns() {
            let _ = write!(
                t,
                "[[seed.regions]]\nid = \"town-{n:03}\"\nname = \"第{n}镇\"\ntier = \"town\"\nparent_id = \"county-{c:02}\"\n\n\
                 [[seed.grids]]\nid = \"grid-{n:03}\"\nname = \"第{n}镇网格\"\nregion_id = \"town-{n:03}\"\nofficers = [\"p-grid-{n:03}\"]\n\n",
                n = tw + 1,
                c = Self::county(tw) + 1
            );
        }
        for s in &self.sites {
            let town = Self::town(s.index) + 1;
            let _ = write!(
                t,
                "[[seed.venues]]\nid = \"{id}\"\nname = \"场所 {id}\"\nsector = \"construction\"\naddress = \"{n} Storm Road\"\n\
                 lat = {lat:.4}\nlon = {lon:.4}\nregion_id = \"town-{town:03}\"\ngrid_id = \"grid-{town:03}\"\n\n\
                 [[seed.venue_people]]\nvenue_id = \"{id}\"\nperson_id = \"p-{id}-safety\"\nrole = \"safety_officer\"\n\n\
                 [[seed.venue_people]]\nvenue_id = \"{id}\"\nperson_id = \"p-{id}-principal\"\nrole = \"principal\"\n\n",
                id = s.id,
                n = s.index + 1,
                lat = 30.0 + f64::from(s.index % 100) * 0.01,
                lon = 120.0 + f64::from(s.index / 100) * 0.01,
            );
        }
        for p in self.people() {
            let _ = write!(
                t,
                "[[seed.people]]\nid = \"{id}\"\nname = \"{name}\"\nrole = \"{role}\"\nregion_id = \"{region}\"\n\
                 phone = \"{phone}\"\nchannels = \"sms,voice,webhook\"\nwebhook = \"{hook}/{id}\"\n\n",
                id = p.id,
                name = p.name,
                role = p.role,
                region = p.region,
                phone = p.phone,
                hook = c.hook_base,
            );
        }
        for c in 0..self.counties() {
            let _ = write!(
                t,
                "[[seed.duty]]\nperson_id = \"p-county-{n:02}-duty\"\nrole = \"duty_officer\"\nregion_id = \"county-{n:02}\"\n\n\
                 [[seed.duty]]\nperson_id = \"p-county-{n:02}-leader\"\nrole = \"shift_leader\"\nregion_id = \"county-{n:02}\"\n\n",
                n = c + 1
            );
        }
        for (p, role) in [
            ("p-city-duty", "duty_officer"),
            ("p-city-force", "task_force_leader"),
            ("p-city-leader", "shift_leader"),
        ] {
            let _ = write!(
                t,
                "[[seed.duty]]\nperson_id = \"{p}\"\nrole = \"{role}\"\nregion_id = \"city\"\n\n"
            );
        }
        t.push_str(c.extra);
        t
    }
}

/// What one replica's configuration needs besides the plan.
#[derive(Debug, Clone, Copy)]
pub struct MonitorConfig<'a> {
    /// `A` or `B`, for the file's comment.
    pub name: &'a str,
    /// `127.0.0.1:port`.
    pub listen: &'a str,
    /// `postgres://…`.
    pub database_url: &'a str,
    /// Connections of its pool.
    pub pool: u32,
    /// The Alibaba Cloud SMS stand-in's endpoint.
    pub sms_endpoint: &'a str,
    /// The voice stand-in's endpoint.
    pub voice_endpoint: &'a str,
    /// The stand-in's AccessKeyId.
    pub aliyun_id: &'a str,
    /// Its AccessKeySecret.
    pub aliyun_secret: &'a str,
    /// `http://127.0.0.1:port/hook`: a person's webhook is `{hook_base}/{id}`.
    pub hook_base: &'a str,
    /// TOML appended at the end.
    pub extra: &'a str,
}

/// Who a person is, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The safety officer of site `i`.
    SafetyOfficer(u32),
    /// The principal of site `i`.
    Principal(u32),
    /// The grid officer of town `t`.
    GridOfficer(u32),
    /// The duty officer of county `c`.
    CountyDuty(u32),
    /// The shift leader of county `c`.
    CountyLeader(u32),
    /// The city's duty officer.
    CityDuty,
    /// The city's 专班 leader.
    CityTaskForce,
    /// The city's shift leader.
    CityLeader,
}

/// A person of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Registry id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Registry role.
    pub role: &'static str,
    /// Region.
    pub region: String,
    /// Phone (SMS, voice).
    pub phone: String,
    /// Who they are.
    pub what: Role,
}

impl Person {
    /// The venue (site index) a venue person belongs to.
    pub fn site(&self) -> Option<u32> {
        match self.what {
            Role::SafetyOfficer(i) | Role::Principal(i) => Some(i),
            _ => None,
        }
    }
}

/// A default offline rule of one kind: what a gateway raises when a
/// device of that kind falls silent.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineRule {
    /// The kind.
    pub kind: DeviceKind,
    /// `gas.offline`, `elec.offline`, …
    pub rule: RuleId,
    /// Its level.
    pub level: Level,
    /// The silence that raises it, seconds (the event's threshold).
    pub after_s: f32,
}

/// The default offline rule of every kind, in [`DeviceKind::ALL`] order,
/// from the rules the gateway runs (`anquan_edge_rules::defaults`).
pub fn offline_rules() -> Result<Vec<OfflineRule>, String> {
    DeviceKind::ALL
        .iter()
        .map(|&kind| {
            let set = defaults::for_kind(kind);
            set.rules()
                .iter()
                .find_map(|r| match r.kind {
                    RuleKind::Offline { after_ms, level } => Some(OfflineRule {
                        kind,
                        rule: r.id.clone(),
                        level,
                        after_s: after_ms as f32 / 1000.0,
                    }),
                    _ => None,
                })
                .ok_or_else(|| format!("no offline rule among the {kind} defaults"))
        })
        .collect()
}

/// The red alarm: the gas detector's `gas.lel` rule over its red raise
/// threshold (from the defaults), as a real leak would raise it.
#[derive(Debug, Clone, PartialEq)]
pub struct RedRule {
    /// `gas.lel`.
    pub rule: RuleId,
    /// The red band's raise threshold.
    pub threshold: f32,
}

/// [`RedRule`] from the gas defaults.
pub fn red_rule() -> Result<RedRule, String> {
    let set = defaults::for_kind(DeviceKind::Gas);
    let r = set
        .get("gas.lel")
        .ok_or("no gas.lel among the gas defaults")?;
    match r.kind {
        RuleKind::Threshold { levels, .. } => levels
            .get(Level::Red)
            .map(|b| RedRule {
                rule: r.id.clone(),
                threshold: b.raise,
            })
            .ok_or_else(|| "gas.lel has no red band".to_string()),
        _ => Err("gas.lel is not a threshold rule".into()),
    }
}

/// The device id of the `j`-th device of a site: its kind (every fourth
/// device of each of the four sensor kinds; fire panels report through
/// GB/T 26875.3, not in this fleet) and a number.
pub fn device(j: u32) -> (DeviceKind, String) {
    let kinds = [
        DeviceKind::Gas,
        DeviceKind::Electrical,
        DeviceKind::WaterPressure,
        DeviceKind::Crane,
    ];
    let kind = kinds[j as usize % kinds.len()];
    let short = match kind {
        DeviceKind::Gas => "gas",
        DeviceKind::Electrical => "elec",
        DeviceKind::WaterPressure => "wp",
        DeviceKind::Crane => "crane",
        DeviceKind::FirePanel => "fp",
    };
    (kind, format!("{short}-{j:06}"))
}

fn id(s: &str) -> Result<Id, String> {
    Id::new(s).map_err(|e| format!("id {s:?}: {e:?}"))
}

/// The event a gateway sends when device `j` of `site` falls silent (its
/// first transition: `n` = 1), stamped `ts_ms`.
pub fn offline_event(
    site: &Site,
    j: u32,
    rules: &[OfflineRule],
    ts_ms: u64,
) -> Result<AlarmEvent, String> {
    let (kind, dev) = device(j);
    let r = rules
        .iter()
        .find(|r| r.kind == kind)
        .ok_or_else(|| format!("no offline rule for {kind}"))?;
    let (gw, st, dv) = (id(&site.gateway)?, id(&site.id)?, id(&dev)?);
    Ok(AlarmEvent {
        event_id: EventId::for_transition(&gw, &st, &dv, &r.rule, 1),
        site: st,
        device: dv,
        kind,
        rule: r.rule.clone(),
        level: r.level,
        state: AlarmState::Raised,
        value: r.after_s,
        threshold: r.after_s,
        ts_ms,
        gateway: gw,
    })
}

/// The red alarm of `site`: its first gas detector (device 0) reads
/// 10 %LEL over the red threshold; transition `n`.
pub fn red_event(site: &Site, red: &RedRule, n: u64, ts_ms: u64) -> Result<AlarmEvent, String> {
    let (kind, dev) = device(0);
    let (gw, st, dv) = (id(&site.gateway)?, id(&site.id)?, id(&dev)?);
    Ok(AlarmEvent {
        event_id: EventId::for_transition(&gw, &st, &dv, &red.rule, n),
        site: st,
        device: dv,
        kind,
        rule: red.rule.clone(),
        level: Level::Red,
        state: AlarmState::Raised,
        value: red.threshold + 10.0,
        threshold: red.threshold,
        ts_ms,
        gateway: gw,
    })
}

/// `n` moments within `window_ms`, drawn from `rng`, sorted: when the red
/// alarms of the storm happen ("in the same minute").
pub fn red_offsets(n: u32, window_ms: u64, rng: &mut Rng) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).map(|_| rng.below(window_ms.max(1))).collect();
    v.sort_unstable();
    v
}

/// Minimum, median, 90th percentile (nearest rank), maximum and mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Values.
    pub n: usize,
    /// Smallest.
    pub min: f64,
    /// Median (the lower middle of an even count).
    pub median: f64,
    /// 90th percentile, nearest rank.
    pub p90: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Summary {
    /// Of `values` (NaN left out); `None` when there is none.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let rank = |p: f64| {
            let r = (p * n as f64).ceil() as usize;
            v[r.clamp(1, n) - 1]
        };
        Some(Self {
            n,
            min: v[0],
            median: v[(n - 1) / 2],
            p90: rank(0.9),
            max: v[n - 1],
            mean: v.iter().sum::<f64>() / n as f64,
        })
    }
}

/// Whether the site sets are disjoint (a test and a sanity check).
pub fn disjoint(sets: &[&[u32]]) -> bool {
    let mut seen = HashSet::new();
    sets.iter().flat_map(|s| s.iter()).all(|i| seen.insert(*i))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_issue_sizes_make_a_city() {
        let p = Plan::new(Sizes::ISSUE, 22).unwrap();
        assert_eq!(p.sites.len(), 200);
        assert_eq!(
            p.sites.iter().map(|s| u64::from(s.devices)).sum::<u64>(),
            1_000_000
        );
        assert_eq!(p.cut.len(), 50);
        assert_eq!(p.storm_reds.len(), 20);
        assert_eq!(p.baseline_reds.len(), 20);
        assert_eq!(p.cut_devices(), 250_000);
        assert!(disjoint(&[&p.cut, &p.storm_reds, &p.baseline_reds]));
        // Deterministic.
        let q = Plan::new(Sizes::ISSUE, 22).unwrap();
        assert_eq!(p.cut, q.cut);
        assert_eq!(p.sites, q.sites);
        let r = Plan::new(Sizes::ISSUE, 23).unwrap();
        assert_ne!(p.cut, r.cut);
    }

    #[test]
    fn uneven_devices_go_to_the_first_gateways() {
        let s = Sizes {
            gateways: 3,
            devices: 10,
            cut_sites: 1,
            reds: 1,
            baseline_reds: 1,
        };
        assert_eq!(
            (0..3).map(|i| s.devices_of(i)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        let too_many = Sizes { reds: 2, ..s };
        assert!(too_many.validate().unwrap_err().contains("different site"));
    }

    #[test]
    fn people_and_phones_are_unique() {
        let p = Plan::new(Sizes::ISSUE, 1).unwrap();
        let people = p.people();
        // 2 per venue, a grid officer per town, 2 per county, 3 in the city.
        assert_eq!(people.len(), 400 + 20 + 2 * 4 + 3);
        let ids: HashSet<_> = people.iter().map(|x| &x.id).collect();
        let phones: HashSet<_> = people.iter().map(|x| &x.phone).collect();
        assert_eq!(ids.len(), people.len());
        assert_eq!(phones.len(), people.len());
        assert!(people.iter().all(|x| x.phone.len() == 11));
    }

    #[test]
    fn offline_events_follow_the_wire_contract_and_the_default_rules() {
        let rules = offline_rules().unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(
            names,
            [
                "gas.offline",
                "elec.offline",
                "water.offline",
                "crane.offline",
                "fire_panel.offline"
            ]
        );
        let p = Plan::new(Sizes::SMALL, 1).unwrap();
        let s = &p.sites[6];
        let e = offline_event(s, 7, &rules, 1_800_000_000_000).unwrap();
        assert_eq!(
            e.event_id.as_str(),
            "gw-0007/s0007/crane-000007/crane.offline/1"
        );
        assert_eq!(e.level, Level::Orange);
        assert_eq!(e.state, AlarmState::Raised);
        // What the monitor decodes is what was meant.
        let json = serde_json::to_vec(&e).unwrap();
        assert_eq!(AlarmEvent::decode(&json).unwrap(), e);
        let g = offline_event(s, 4, &rules, 1_800_000_000_000).unwrap();
        assert_eq!(g.rule.as_str(), "gas.offline");
        assert_eq!(g.level, Level::Yellow);
    }

    #[test]
    fn the_red_alarm_is_over_the_red_threshold() {
        let red = red_rule().unwrap();
        assert_eq!(red.rule.as_str(), "gas.lel");
        let p = Plan::new(Sizes::SMALL, 1).unwrap();
        let e = red_event(&p.sites[0], &red, 1, 1_800_000_000_000).unwrap();
        assert_eq!(e.level, Level::Red);
        assert!(e.value > e.threshold);
        assert_eq!(e.event_id.as_str(), "gw-0001/s0001/gas-000000/gas.lel/1");
        let json = serde_json::to_vec(&e).unwrap();
        assert_eq!(AlarmEvent::decode(&json).unwrap(), e);
    }

    #[test]
    fn reds_fall_in_the_window() {
        let mut rng = Rng::new(5);
        let v = red_offsets(20, 60_000, &mut rng);
        assert_eq!(v.len(), 20);
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        assert!(v.iter().all(|&t| t < 60_000));
    }

    #[test]
    fn summaries() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[f64::NAN]), None);
        let s = Summary::of(&[3.0, 1.0, 2.0, f64::NAN]).unwrap();
        assert_eq!(
            (s.n, s.min, s.median, s.max, s.mean),
            (3, 1.0, 2.0, 3.0, 2.0)
        );
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = Summary::of(&v).unwrap();
        assert_eq!((s.median, s.p90, s.max), (10.0, 18.0, 20.0));
        assert_eq!(Summary::of(&[7.0]).unwrap().p90, 7.0);
    }

    #[test]
    fn the_configuration_is_one_todays_monitor_accepts() {
        let p = Plan::new(Sizes::SMALL, 3).unwrap();
        let text = p.monitor_config(&MonitorConfig {
            name: "A",
            listen: "127.0.0.1:18088",
            database_url: "postgres://postgres@127.0.0.1:5432/anquan",
            pool: 8,
            sms_endpoint: "http://127.0.0.1:9/aliyun/sms/",
            voice_endpoint: "http://127.0.0.1:9/aliyun/voice/",
            aliyun_id: "LTAI-standin-key",
            aliyun_secret: "standin-aliyun-secret",
            hook_base: "http://127.0.0.1:9/hook",
            extra: "",
        });
        let cfg = anquan_monitor::Config::parse(&text).unwrap();
        assert_eq!(cfg.seed.venues.len(), 20);
        assert_eq!(cfg.seed.people.len(), p.people().len());
        assert_eq!(cfg.auth.gateways.len(), 20);
    }
}
