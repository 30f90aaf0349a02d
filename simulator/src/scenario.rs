//! Scenario files (TOML): a site, its devices, a timeline of events and the
//! alarms expected from the gateway. The format is documented, with an
//! example, in `simulator/README.md`.
//!
//! Loading checks everything before anything runs and names the key at
//! fault: unknown keys, devices used by an event but not declared, events
//! that do not fit the device's kind, expectations naming unknown rules.

use std::path::{Path, PathBuf};

use anquan_edge_rules::file::RuleFile;
use anquan_protocol::{AlarmState, DeviceKind, Id, Level};
use serde::Deserialize;

use crate::models::ModelParams;

/// A scenario, as loaded.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Where it was loaded from (for messages), if from a file.
    pub path: Option<PathBuf>,
    /// The parsed file.
    pub spec: Spec,
    /// The site rules the gateway and the devices run (the site rules
    /// file merged with the devices' own override files), as TOML.
    pub rules_toml: String,
    /// `rules_toml`, parsed and validated.
    pub rules: RuleFile,
}

/// The file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Short name.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Site id.
    pub site: String,
    /// Seed of every random number of the run.
    #[serde(default)]
    pub seed: u64,
    /// Simulated duration, s.
    pub duration_s: u64,
    /// When t = 0 is, RFC 3339 (`"2024-11-25T06:00:00+08:00"`): what the
    /// devices' clocks and the gateway's clock read, so that working hours
    /// fall where the scenario says. Default 2024-11-22T18:26:40Z.
    #[serde(default)]
    pub start: Option<String>,
    /// Site rules file (edge-rules `RuleFile` TOML), relative to the
    /// scenario file.
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// The devices.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    /// The timeline.
    #[serde(default)]
    pub events: Vec<EventSpec>,
    /// The alarms expected (an empty list: the scenario must stay quiet).
    #[serde(default)]
    pub expect: Vec<Expect>,
}

/// One device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Device id.
    pub id: String,
    /// Kind.
    pub kind: DeviceKind,
    /// Rule overrides of this device alone: a TOML file whose top-level
    /// `rules` table is what a site rules file has under
    /// `[device.<id>.rules]` (relative to the scenario file).
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// Telemetry period, s (default 15).
    #[serde(default)]
    pub report_period_s: Option<u32>,
    /// Physical model parameters (per kind; see README).
    #[serde(default)]
    pub model: ModelParams,
}

/// One event of the timeline.
#[derive(Debug, Clone, Deserialize)]
pub struct EventSpec {
    /// When, s since start.
    pub at_s: f64,
    /// The device it happens to (not needed by `broker_outage`).
    #[serde(default)]
    pub device: Option<String>,
    /// What happens.
    #[serde(flatten)]
    pub what: Event,
}

/// What happens at an event.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// Gas: a leak starts; the source concentration rises at `rate`
    /// %LEL/s to `lel`, and the concentration at the detector follows it
    /// with the diffusion time constant `tau_s`.
    #[serde(rename_all = "snake_case")]
    GasLeak {
        /// Source level, %LEL.
        lel: f64,
        /// Rise of the source, %LEL/s (0 = at once).
        #[serde(default)]
        rate: f64,
        /// Diffusion time constant, s (default: the device's).
        #[serde(default)]
        tau_s: Option<f64>,
    },
    /// Gas: CO released; the source rises to `ppm`.
    CoRelease {
        /// Source level, ppm.
        ppm: f64,
        /// Rise of the source, ppm/s (0 = at once).
        #[serde(default)]
        rate: f64,
    },
    /// Gas: the leak is stopped and the room ventilated (sources back to
    /// the baseline).
    Ventilate,
    /// Electrical: the load current of cable `channel` (1–4), A.
    LoadCurrent {
        /// Cable 1–4.
        channel: usize,
        /// Amperes.
        amps: f64,
    },
    /// Electrical: the residual (leakage) current moves to `ma`, ramping at
    /// `rate` mA/s (0 = at once).
    ResidualCurrent {
        /// mA.
        ma: f64,
        /// mA/s.
        #[serde(default)]
        rate: f64,
    },
    /// Water: the pump starts (`on = true`) or stops/fails.
    Pump {
        /// Running.
        on: bool,
    },
    /// Water: a slow leak, MPa per minute of pressure lost while it lasts.
    PipeLeak {
        /// MPa/min.
        mpa_per_min: f64,
    },
    /// Water: a burst: the pressure collapses towards `residual_mpa`
    /// (default 0.02) within seconds.
    PipeBurst {
        /// The pressure left, MPa.
        #[serde(default)]
        residual_mpa: Option<f64>,
    },
    /// Water: the leak or burst is repaired.
    PipeRepair,
    /// Crane: a new lifting cycle: `load_t` at `radius_m`, one cycle every
    /// `cycle_s`.
    Lift {
        /// Hook load, t.
        load_t: f64,
        /// Radius at which the load is set down, m.
        radius_m: f64,
        /// Length of one cycle, s.
        #[serde(default)]
        cycle_s: Option<f64>,
    },
    /// Crane: a gust of `speed_ms` for `duration_s`.
    Gust {
        /// m/s.
        speed_ms: f64,
        /// s.
        duration_s: f64,
    },
    /// Crane: the mean wind changes.
    Wind {
        /// m/s.
        mean_ms: f64,
    },
    /// Crane: the mast leans (°).
    Tilt {
        /// Degrees.
        deg: f64,
    },
    /// The device loses its link for `duration_s` (frames wait in its
    /// buffer and go out on reconnect). With `last_will`, the broker
    /// publishes the device's retained `offline` status at once.
    Offline {
        /// s.
        duration_s: f64,
        /// The broker publishes the last will.
        #[serde(default)]
        last_will: bool,
    },
    /// The device is powered off for `duration_s` and boots again (seq
    /// restarts at 0, the buffer is lost). With `announced`, it first sends
    /// a frame saying so (`power_off_min`, the planned power-off of the wire
    /// contract), as a crane keyed off after work or a venue closing does.
    PowerOff {
        /// s.
        duration_s: f64,
        /// A planned power-off, announced in a last frame.
        #[serde(default)]
        announced: bool,
    },
    /// The device's cellular link drops now and then for `duration_s`:
    /// outages start at random (on average one every `mean_interval_s`) and
    /// last between `min_s` and `max_s`; frames buffered meanwhile go out on
    /// reconnect. Ordinary 4G jitter.
    LinkJitter {
        /// s.
        duration_s: f64,
        /// Mean time between outages, s.
        mean_interval_s: f64,
        /// Shortest outage, s.
        min_s: f64,
        /// Longest outage, s.
        max_s: f64,
    },
    /// A sensor fault on `channel` (a metric name) for `duration_s`
    /// (absent: to the end).
    SensorFault {
        /// The channel, e.g. `lel_pct`, `temp3_c`, `pressure_mpa`, `radius_m`.
        channel: String,
        /// `open_circuit` (default) or `short_circuit`.
        #[serde(default)]
        fault: Option<String>,
        /// s.
        #[serde(default)]
        duration_s: Option<f64>,
    },
    /// Payloads are corrupted on the way to the broker for `duration_s`.
    CorruptPayloads {
        /// s.
        duration_s: f64,
    },
    /// The device clock jumps by `offset_s` (frames carry the wrong time).
    ClockSkew {
        /// s (negative: behind).
        offset_s: f64,
    },
    /// Every frame is delivered twice for `duration_s`.
    DuplicateFrames {
        /// s.
        duration_s: f64,
    },
    /// Someone presses the one-key alarm button.
    Button,
    /// The broker is unreachable for every device for `duration_s`.
    BrokerOutage {
        /// s.
        duration_s: f64,
    },
}

impl Event {
    /// The kinds the event applies to (`None`: any kind).
    pub fn kinds(&self) -> Option<&'static [DeviceKind]> {
        use DeviceKind::*;
        match self {
            Self::GasLeak { .. } | Self::CoRelease { .. } | Self::Ventilate => Some(&[Gas]),
            Self::LoadCurrent { .. } | Self::ResidualCurrent { .. } => Some(&[Electrical]),
            Self::Pump { .. }
            | Self::PipeLeak { .. }
            | Self::PipeBurst { .. }
            | Self::PipeRepair => Some(&[WaterPressure]),
            Self::Lift { .. } | Self::Gust { .. } | Self::Wind { .. } | Self::Tilt { .. } => {
                Some(&[Crane])
            }
            Self::Button => Some(&[Gas, Electrical]),
            _ => None,
        }
    }

    /// The event's name in the file.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GasLeak { .. } => "gas_leak",
            Self::CoRelease { .. } => "co_release",
            Self::Ventilate => "ventilate",
            Self::LoadCurrent { .. } => "load_current",
            Self::ResidualCurrent { .. } => "residual_current",
            Self::Pump { .. } => "pump",
            Self::PipeLeak { .. } => "pipe_leak",
            Self::PipeBurst { .. } => "pipe_burst",
            Self::PipeRepair => "pipe_repair",
            Self::Lift { .. } => "lift",
            Self::Gust { .. } => "gust",
            Self::Wind { .. } => "wind",
            Self::Tilt { .. } => "tilt",
            Self::Offline { .. } => "offline",
            Self::PowerOff { .. } => "power_off",
            Self::LinkJitter { .. } => "link_jitter",
            Self::SensorFault { .. } => "sensor_fault",
            Self::CorruptPayloads { .. } => "corrupt_payloads",
            Self::ClockSkew { .. } => "clock_skew",
            Self::DuplicateFrames { .. } => "duplicate_frames",
            Self::Button => "button",
            Self::BrokerOutage { .. } => "broker_outage",
        }
    }
}

/// One expected alarm transition.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Device id.
    pub device: String,
    /// Rule id.
    pub rule: String,
    /// Level (for `cleared`: the level cleared).
    pub level: Level,
    /// Transition.
    pub state: AlarmState,
    /// It must arrive within `[from, to]` s since start.
    pub window_s: [f64; 2],
    /// It may arrive (in its window) or not: a level the physics passes
    /// within a sample or two, whose own transition depends on the noise.
    #[serde(default)]
    pub optional: bool,
}

/// A scenario error, naming the file and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// Unix ms of an RFC 3339 time, after 2000 (devices' clocks start there).
fn start_ms(s: &str) -> Result<u64, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("`{s}`: {e} (expected RFC 3339, e.g. 2024-11-25T06:00:00+08:00)"))?;
    u64::try_from(t.timestamp_millis())
        .ok()
        .filter(|ms| (anquan_protocol::MIN_TS_MS..anquan_protocol::MAX_TS_MS).contains(ms))
        .ok_or_else(|| format!("`{s}`: outside 2000–2200"))
}

fn err(where_: &str, msg: impl std::fmt::Display) -> ScenarioError {
    ScenarioError(format!("{where_}: {msg}"))
}

impl Scenario {
    /// Loads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(&path.display().to_string(), e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut s = Self::parse(&text, dir).map_err(|e| err(&path.display().to_string(), e))?;
        s.path = Some(path.to_path_buf());
        Ok(s)
    }

    /// Parses and checks a scenario; relative paths are resolved from `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Self, ScenarioError> {
        let spec: Spec = toml::from_str(text).map_err(|e| ScenarioError(e.to_string()))?;
        Id::new(&spec.site).map_err(|e| err("site", e))?;
        if spec.duration_s == 0 {
            return Err(err("duration_s", "must be at least 1"));
        }
        if let Some(s) = &spec.start {
            start_ms(s).map_err(|e| err("start", e))?;
        }
        let mut rules_doc = match &spec.rules {
            Some(p) => {
                let p = dir.join(p);
                let t = std::fs::read_to_string(&p)
                    .map_err(|e| err("rules", format!("{}: {e}", p.display())))?;
                t.parse::<toml::Table>()
                    .map_err(|e| err("rules", format!("{}: {e}", p.display())))?
            }
            None => toml::Table::new(),
        };
        let mut ids = std::collections::BTreeSet::new();
        for (i, d) in spec.devices.iter().enumerate() {
            let key = format!("devices[{i}]");
            Id::new(&d.id).map_err(|e| err(&format!("{key}.id"), e))?;
            if !ids.insert(d.id.clone()) {
                return Err(err(&format!("{key}.id"), format!("`{}` twice", d.id)));
            }
            if let Some(p) = d.report_period_s
                && !(1..=3600).contains(&p)
            {
                return Err(err(&format!("{key}.report_period_s"), "must be 1–3600"));
            }
            d.model
                .check(d.kind)
                .map_err(|e| err(&format!("{key}.model"), e))?;
            if let Some(p) = &d.rules {
                let p = dir.join(p);
                let t = std::fs::read_to_string(&p)
                    .map_err(|e| err(&format!("{key}.rules"), format!("{}: {e}", p.display())))?;
                let mut own: toml::Table = t
                    .parse()
                    .map_err(|e| err(&format!("{key}.rules"), format!("{}: {e}", p.display())))?;
                let rules = own.remove("rules").ok_or_else(|| {
                    err(
                        &format!("{key}.rules"),
                        format!("{}: no [rules] table", p.display()),
                    )
                })?;
                if let Some(k) = own.keys().next() {
                    return Err(err(
                        &format!("{key}.rules"),
                        format!("{}: unknown key `{k}`", p.display()),
                    ));
                }
                let devices = rules_doc
                    .entry("device")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(devices) = devices.as_table_mut() else {
                    return Err(err("rules", "`device` is not a table"));
                };
                if devices.contains_key(&d.id) {
                    return Err(err(
                        &format!("{key}.rules"),
                        format!(
                            "the site rules file has a [device.{}] section already",
                            d.id
                        ),
                    ));
                }
                let mut sec = toml::Table::new();
                sec.insert("kind".into(), toml::Value::String(d.kind.as_str().into()));
                sec.insert("rules".into(), rules);
                devices.insert(d.id.clone(), toml::Value::Table(sec));
            }
        }
        let rules_toml = toml::to_string(&rules_doc).map_err(|e| err("rules", e))?;
        let rules = RuleFile::parse(&rules_toml).map_err(|e| err("rules", e))?;
        let kind_of = |id: &str| spec.devices.iter().find(|d| d.id == id).map(|d| d.kind);
        for (i, e) in spec.events.iter().enumerate() {
            let key = format!("events[{i}] ({})", e.what.name());
            if !(0.0..=spec.duration_s as f64).contains(&e.at_s) {
                return Err(err(&format!("{key}.at_s"), "outside 0..=duration_s"));
            }
            match (&e.device, &e.what) {
                (None, Event::BrokerOutage { .. }) => {}
                (Some(_), Event::BrokerOutage { .. }) => {
                    return Err(err(&key, "a broker outage hits every device: no `device`"));
                }
                (None, _) => return Err(err(&key, "needs `device`")),
                (Some(d), what) => {
                    let kind = kind_of(d).ok_or_else(|| {
                        err(&format!("{key}.device"), format!("`{d}` is not declared"))
                    })?;
                    if let Some(kinds) = what.kinds()
                        && !kinds.contains(&kind)
                    {
                        return Err(err(&key, format!("does not apply to a {kind} device")));
                    }
                    if let Event::SensorFault { channel, fault, .. } = what {
                        crate::device::check_fault(kind, channel, fault.as_deref())
                            .map_err(|m| err(&key, m))?;
                    }
                    if let Event::LoadCurrent { channel, .. } = what
                        && !(1..=4).contains(channel)
                    {
                        return Err(err(&format!("{key}.channel"), "must be 1–4"));
                    }
                    if let Event::PowerOff {
                        duration_s,
                        announced: true,
                    } = what
                        && !(60.0..=20_160.0 * 60.0).contains(duration_s)
                    {
                        return Err(err(
                            &format!("{key}.duration_s"),
                            "an announced power-off lasts 1 minute to 14 days",
                        ));
                    }
                    if let Event::LinkJitter {
                        mean_interval_s,
                        min_s,
                        max_s,
                        ..
                    } = what
                        && !(*mean_interval_s > 0.0 && *min_s >= 1.0 && max_s >= min_s)
                    {
                        return Err(err(
                            &key,
                            "needs mean_interval_s > 0 and 1 <= min_s <= max_s",
                        ));
                    }
                }
            }
        }
        for (i, x) in spec.expect.iter().enumerate() {
            let key = format!("expect[{i}]");
            let kind = kind_of(&x.device).ok_or_else(|| {
                err(
                    &format!("{key}.device"),
                    format!("`{}` is not declared", x.device),
                )
            })?;
            let set = rules.rules_for(&spec.site, kind, &x.device);
            if !set.rules().iter().any(|r| r.id.as_str() == x.rule) {
                return Err(err(
                    &format!("{key}.rule"),
                    format!("`{}` is not a rule of {}", x.rule, x.device),
                ));
            }
            if x.window_s[0] > x.window_s[1] {
                return Err(err(&format!("{key}.window_s"), "from after to"));
            }
        }
        Ok(Self {
            path: None,
            spec,
            rules_toml,
            rules,
        })
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Unix ms of t = 0.
    pub fn start_ms(&self) -> u64 {
        self.spec
            .start
            .as_deref()
            .and_then(|s| start_ms(s).ok())
            .unwrap_or(crate::device::START_MS)
    }

    /// Rules of the scenario's devices judged on the gateway's clock
    /// (offline, rate of change, debounce in ms): against a gateway on the
    /// real clock they only verify at `--speed 1`.
    pub fn clock_rules(&self) -> Vec<String> {
        use anquan_edge_rules::RuleKind;
        let mut out = Vec::new();
        for d in &self.spec.devices {
            for r in self.rules.rules_for(&self.spec.site, d.kind, &d.id).rules() {
                let clocked = matches!(
                    r.kind,
                    RuleKind::Offline { .. } | RuleKind::RateOfChange { .. }
                ) || r.debounce.ms > 0;
                let silent = self.spec.events.iter().any(|e| {
                    matches!(
                        e.what,
                        Event::Offline { .. }
                            | Event::BrokerOutage { .. }
                            | Event::PowerOff { .. }
                            | Event::LinkJitter { .. }
                            | Event::CorruptPayloads { .. }
                    )
                });
                let expected = self
                    .spec
                    .expect
                    .iter()
                    .any(|x| x.device == d.id && x.rule == r.id.as_str());
                let offline = matches!(r.kind, RuleKind::Offline { .. });
                if r.enabled
                    && clocked
                    && (expected || (offline && silent))
                    && !out.contains(&r.id.to_string())
                {
                    out.push(r.id.to_string());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
name = "t"
site = "s1"
duration_s = 600

[[devices]]
id = "gas-1"
kind = "gas"

[[devices]]
id = "wp-1"
kind = "water_pressure"
"#;

    fn parse(extra: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(&format!("{BASE}{extra}"), Path::new("."))
    }

    #[test]
    fn a_good_scenario_loads() {
        let s = parse(
            r#"
[[events]]
at_s = 10
device = "gas-1"
type = "gas_leak"
lel = 30
rate = 1

[[events]]
at_s = 20
type = "broker_outage"
duration_s = 5

[[expect]]
device = "gas-1"
rule = "gas.lel"
level = "orange"
state = "escalated"
window_s = [10, 100]
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.spec.events.len(), 2);
        assert_eq!(
            s.spec.events[0].what,
            Event::GasLeak {
                lel: 30.0,
                rate: 1.0,
                tau_s: None
            }
        );
    }

    #[test]
    fn the_start_time_is_rfc_3339() {
        let with = |start: &str| {
            Scenario::parse(
                &format!("name = \"t\"\nsite = \"s\"\nduration_s = 1\nstart = \"{start}\"\n"),
                Path::new("."),
            )
        };
        let s = with("2024-11-25T07:00:00+08:00").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.start_ms(), 1_732_489_200_000);
        let e = with("tomorrow morning")
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(e.starts_with("start: `tomorrow morning`"), "{e}");
        let e = with("1970-01-01T00:00:00Z")
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(e.contains("outside 2000–2200"), "{e}");
        let none = parse("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(none.start_ms(), crate::device::START_MS);
    }

    #[test]
    fn mistakes_are_refused_naming_the_key() {
        let cases = [
            (
                "\n[[events]]\nat_s = 1\ndevice = \"gas-1\"\ntype = \"gas_leak\"\nlel = 3\nrat = 1\n",
                "rat",
            ),
            (
                "\n[[events]]\nat_s = 1\ndevice = \"wp-1\"\ntype = \"gas_leak\"\nlel = 3\n",
                "does not apply to a water_pressure",
            ),
            (
                "\n[[events]]\nat_s = 1\ndevice = \"nope\"\ntype = \"button\"\n",
                "`nope` is not declared",
            ),
            (
                "\n[[events]]\nat_s = 900\ndevice = \"gas-1\"\ntype = \"button\"\n",
                "at_s",
            ),
            (
                "\n[[events]]\nat_s = 1\ndevice = \"gas-1\"\ntype = \"sensor_fault\"\nchannel = \"wind_ms\"\n",
                "no faultable channel",
            ),
            (
                "\n[[events]]\nat_s = 1\ntype = \"button\"\n",
                "needs `device`",
            ),
            (
                "\n[[expect]]\ndevice = \"gas-1\"\nrule = \"water.offline\"\nlevel = \"red\"\nstate = \"raised\"\nwindow_s = [0, 1]\n",
                "not a rule of gas-1",
            ),
            (
                "\n[[expect]]\ndevice = \"gas-1\"\nrule = \"gas.lel\"\nlevel = \"red\"\nstate = \"raised\"\nwindow_s = [5, 1]\n",
                "window_s",
            ),
            (
                "\n[devices.model]\nload_t = 3\n",
                "load_t: not a parameter of a water_pressure device",
            ),
            (
                "\n[devices.model]\ndrift_lel = 1\n",
                "drift_lel: not a parameter of a water_pressure device",
            ),
            (
                "\n[[events]]\nat_s = 1\ndevice = \"gas-1\"\ntype = \"power_off\"\nduration_s = 30\nannounced = true\n",
                "1 minute to 14 days",
            ),
            (
                "\n[[events]]\nat_s = 1\ndevice = \"gas-1\"\ntype = \"link_jitter\"\nduration_s = 60\nmean_interval_s = 10\nmin_s = 50\nmax_s = 20\n",
                "min_s <= max_s",
            ),
        ];
        for (extra, want) in cases {
            let e = parse(extra)
                .err()
                .unwrap_or_else(|| panic!("accepted: {extra}"));
            assert!(e.0.contains(want), "{want:?} not in {e}");
        }
    }
}
