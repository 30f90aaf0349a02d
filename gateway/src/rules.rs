//! The site's rules: the `edge-rules` engine per device, fed by the site
//! rules file (`anquan_edge_rules::file::RuleFile`), reloaded on SIGHUP and
//! when the file changes. A new file is parsed and fully validated before
//! it replaces the old one; a bad file keeps the old rules and says why
//! (log line with the file's line and key, `rules_reloads_total{result="error"}`).
//!
//! Rule sets are shared: every device of a (site, kind) without its own
//! section in the file points at the same `Arc<RuleSet>`, so a hundred
//! thousand devices cost one rule set per kind, not one each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anquan_edge_rules::RuleSet;
use anquan_edge_rules::file::{RuleFile, RuleFileError};
use anquan_protocol::DeviceKind;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::ConfigError;
use crate::metrics::Metrics;

/// `[rules]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// The site rules file (TOML, see README "Overriding the defaults").
    /// Without it every device runs its kind's built-in defaults.
    pub file: Option<PathBuf>,
    /// How often the file is checked for changes, ms (0 = only on SIGHUP).
    pub watch_interval_ms: u64,
    /// How often every device's offline rule is checked, ms.
    pub offline_tick_ms: u64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            file: None,
            watch_interval_ms: 2_000,
            offline_tick_ms: 1_000,
        }
    }
}

impl RulesConfig {
    /// Checks the values, and the rules file itself.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=3_600_000).contains(&self.offline_tick_ms) {
            return Err(ConfigError::new(
                "rules.offline_tick_ms",
                "must be between 10 and 3600000",
            ));
        }
        Ok(())
    }

    /// Loads and validates the rules file (or the defaults without one).
    pub fn load(&self) -> Result<RuleFile, ConfigError> {
        load(self.file.as_deref()).map_err(|e| ConfigError::new("rules.file", e.to_string()))
    }
}

/// Loads a rules file, or the built-in defaults when there is none.
pub fn load(path: Option<&Path>) -> Result<RuleFile, RuleFileError> {
    match path {
        Some(p) => RuleFile::load(p),
        None => Ok(RuleFile::default()),
    }
}

/// The rule sets in force, shared between devices.
#[derive(Debug)]
pub struct Rules {
    file: RuleFile,
    shared: HashMap<(String, DeviceKind), RuleRef>,
}

/// A device's rule set, with what the gateway needs to know about it.
#[derive(Debug, Clone)]
pub struct RuleRef {
    /// The rules.
    pub set: Arc<RuleSet>,
    /// Its [`fingerprint`].
    pub fp: u64,
    /// No enabled rule measures a rate of change (a rate is measured over
    /// time, so every frame's verdict rests on the clock).
    pub replayable: bool,
    /// The enabled rules with a debounce in time: they look at the clock
    /// only while their condition holds or they are active (see
    /// [`RuleRef::clock_free`]).
    pub timed: Vec<usize>,
}

impl RuleRef {
    fn new(set: RuleSet) -> Self {
        let enabled = || set.rules().iter().enumerate().filter(|(_, r)| r.enabled);
        Self {
            fp: fingerprint(&set),
            replayable: !enabled()
                .any(|(_, r)| matches!(r.kind, anquan_edge_rules::RuleKind::RateOfChange { .. })),
            timed: enabled()
                .filter(|(_, r)| {
                    r.debounce.ms > 0
                        && !matches!(r.kind, anquan_edge_rules::RuleKind::Offline { .. })
                })
                .map(|(i, _)| i)
                .collect(),
            set: Arc::new(set),
        }
    }

    /// Whether, in `state`, no rule of the set would look at the clock for
    /// a frame that leaves them as they are: no rate rule, and every rule
    /// with a debounce in time quiet with nothing pending. A frame judged
    /// from and into such states comes out the same whenever it is judged
    /// (the CO rule held for 15 minutes costs the gas set nothing while CO
    /// is low).
    pub fn clock_free(&self, state: &anquan_edge_rules::DeviceState) -> bool {
        self.replayable && self.timed.iter().all(|&i| state.is_settled(i))
    }
}

/// Whether every enabled rule judges a frame from the frame and the rule
/// state alone, in every state: no rate of change and no debounce in time.
pub fn judges_without_the_clock(set: &RuleSet) -> bool {
    let r = RuleRef::new(set.clone());
    r.replayable && r.timed.is_empty()
}

/// A fingerprint of a rule set (FNV-1a of its TOML form), stored with each
/// device's persisted rule state: the state is restored only under the
/// same rules it was built for.
pub fn fingerprint(set: &RuleSet) -> u64 {
    anquan_edge_rules::file::to_toml("r", set)
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

impl Rules {
    /// Rules from a validated file.
    pub fn new(file: RuleFile) -> Self {
        Self {
            file,
            shared: HashMap::new(),
        }
    }

    /// The rule set of one device.
    pub fn for_device(&mut self, site: &str, kind: DeviceKind, device: &str) -> RuleRef {
        if self.file.has_device(device) {
            return RuleRef::new(self.file.rules_for(site, kind, device));
        }
        let file = &self.file;
        self.shared
            .entry((site.to_string(), kind))
            .or_insert_with(|| RuleRef::new(file.rules_for(site, kind, device)))
            .clone()
    }
}

/// Watches the rules file: on SIGHUP, and every `watch_interval_ms` when its
/// content changed and then stayed the same for one more interval, parses it and sends the validated result. A file that
/// fails validation is reported once per change and not sent.
pub async fn watch(
    cfg: RulesConfig,
    tx: mpsc::Sender<RuleFile>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let Some(path) = cfg.file.clone() else {
        return;
    };
    let mut last = std::fs::read(&path).ok();
    let mut hup = hangup();
    let interval = Duration::from_millis(if cfg.watch_interval_ms == 0 {
        u64::MAX / 4
    } else {
        cfg.watch_interval_ms
    });
    loop {
        let forced = tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => false,
            Some(()) = next_hup(&mut hup) => true,
        };
        let mut now = tokio::fs::read(&path).await.ok();
        if !forced && now == last {
            continue;
        }
        // An editor that writes in place is sometimes seen mid-write, and a
        // truncated file can still parse (an empty one is "the defaults").
        // Load only content that held still for one more interval.
        if !forced {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
                let again = tokio::fs::read(&path).await.ok();
                if again == now {
                    break;
                }
                now = again;
            }
        }
        last = now;
        match RuleFile::load(&path) {
            Ok(file) => {
                tracing::info!(file = %path.display(), forced, "rules file reloaded");
                metrics.rules_reloads.with_label_values(&["ok"]).inc();
                if tx.send(file).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                metrics.rules_reloads.with_label_values(&["error"]).inc();
                tracing::error!(file = %path.display(), error = %e, "rules file rejected; keeping the rules in force");
            }
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup() -> Hangup {
    None
}

#[cfg(unix)]
async fn next_hup(h: &mut Hangup) -> Option<()> {
    match h {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
#[cfg(not(unix))]
async fn next_hup(_: &mut Hangup) -> Option<()> {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_without_overrides_share_a_rule_set() {
        let file = RuleFile::parse(
            "[device.special]\nkind = \"gas\"\n[device.special.rules.\"gas.lel\"]\nred = { raise = 40, clear = 30 }\n",
        )
        .unwrap();
        let mut r = Rules::new(file);
        let a = r.for_device("s1", DeviceKind::Gas, "a");
        let b = r.for_device("s1", DeviceKind::Gas, "b");
        assert!(Arc::ptr_eq(&a.set, &b.set));
        assert_eq!(a.fp, b.fp);
        let s = r.for_device("s1", DeviceKind::Gas, "special");
        assert!(!Arc::ptr_eq(&a.set, &s.set));
        assert_ne!(*a.set, *s.set);
        assert_ne!(a.fp, s.fp);
        let other_site = r.for_device("s2", DeviceKind::Gas, "c");
        assert!(!Arc::ptr_eq(&a.set, &other_site.set));
        assert_eq!(a.fp, other_site.fp, "same rules, same fingerprint");
    }

    #[test]
    fn which_default_sets_judge_without_the_clock() {
        use anquan_edge_rules::DeviceState;
        use anquan_edge_rules::defaults::for_kind;
        // Every default set has a rule held in time (CO for 15 minutes,
        // a pump running without pressure, a sustained lean): clock-free
        // while those are quiet, not once one starts counting.
        for kind in DeviceKind::ALL {
            let r = RuleRef::new(for_kind(kind));
            assert!(r.replayable, "{kind:?}: no rate rule by default");
            assert!(r.clock_free(&DeviceState::new(0)), "{kind:?}");
        }
        let gas = RuleRef::new(for_kind(DeviceKind::Gas));
        assert!(!gas.timed.is_empty() && !judges_without_the_clock(&gas.set));
        let mut st = DeviceState::new(0);
        let co = |ppm: f32| {
            let mut m = anquan_protocol::Readings::new();
            m.set(anquan_protocol::Metric::CoPpm, ppm).unwrap();
            m
        };
        let _ = gas.set.evaluate(&mut st, &co(40.0), &[], 1_000);
        assert!(!gas.clock_free(&st), "the 15-minute CO hold is counting");
        let _ = gas.set.evaluate(&mut st, &co(2.0), &[], 2_000);
        assert!(gas.clock_free(&st), "CO low again: nothing pending");
        // A rate rule switched on: never clock-free.
        let file = RuleFile::parse(
            "[kind.water_pressure.rules.\"water.pressure_drop\"]\nenabled = true\n",
        )
        .unwrap();
        let mut r = Rules::new(file);
        let wp = r.for_device("s", DeviceKind::WaterPressure, "w");
        assert!(!wp.replayable && !wp.clock_free(&DeviceState::new(0)));
    }

    #[test]
    fn a_bad_file_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rules.toml");
        std::fs::write(
            &p,
            "[kind.gas.rules.\"gas.lel\"]\nred = { raise = 40, clear = 45 }\n",
        )
        .unwrap();
        let cfg = RulesConfig {
            file: Some(p),
            ..RulesConfig::default()
        };
        let e = cfg.load().unwrap_err();
        assert_eq!(e.key, "rules.file");
        assert!(e.message.contains("red.clear"), "{e}");
    }
}
