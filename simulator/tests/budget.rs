//! The false-alarm budget (issue 18, item 7): a simulated day per kind at
//! realistic noise raises no alarm, and the same days under the rules this
//! project shipped before issue 18 do, so the budget can fail.

use std::path::{Path, PathBuf};

use anquan_edge_rules::file::RuleFile;
use anquan_sim::budget;
use anquan_sim::scenario::Scenario;

fn days() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("budget");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_quiet_day_of_every_kind_raises_nothing() {
    let files = days();
    let mut kinds = std::collections::BTreeSet::new();
    let mut text = String::new();
    let mut over = Vec::new();
    for f in &files {
        let s = Scenario::load(f).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            s.spec.expect.is_empty(),
            "{}: a budget day expects nothing",
            s.name()
        );
        assert!(s.spec.duration_s >= 86_400, "{}: a whole day", s.name());
        kinds.extend(s.spec.devices.iter().map(|d| d.kind));
        let r = budget::run(&s, false).unwrap_or_else(|e| panic!("{}: {e}", s.name()));
        text.push_str(&budget::render(&r, 0.0));
        if r.worst_per_day() > 0.0 {
            over.push(r.name.clone());
        }
    }
    println!("{text}");
    assert_eq!(kinds.len(), 4, "a day for every kind: {kinds:?}");
    assert!(over.is_empty(), "over budget: {over:?}\n{text}");
}

/// The rules before issue 18, as a site rules file: blue levels inside the
/// normal range, 45 s offline on every link, no working hours.
const BEFORE_ISSUE_18: &str = r#"
[kind.gas.rules."gas.lel"]
blue = { raise = 5, clear = 4 }
yellow = { raise = 10, clear = 8 }
orange = { raise = 25, clear = 20 }
[kind.gas.rules."gas.co"]
blue = { raise = 10, clear = 8 }
yellow = { raise = 25, clear = 20 }
orange = { raise = 50, clear = 40 }
red = { raise = 150, clear = 120 }
[kind.gas.rules."gas.offline"]
after_s = 45
[kind.electrical.rules."elec.residual"]
blue = { raise = 200, clear = 150 }
[kind.electrical.rules."elec.temp1"]
blue = { raise = 55, clear = 50 }
[kind.electrical.rules."elec.temp3"]
blue = { raise = 55, clear = 50 }
[kind.electrical.rules."elec.offline"]
after_s = 45
[kind.water_pressure.rules."water.pressure_low"]
blue = { raise = 0.15, clear = 0.17 }
yellow = { raise = 0.10, clear = 0.12 }
orange = { raise = 0.07, clear = 0.09 }
red = { raise = 0.05, clear = 0.07 }
[kind.water_pressure.rules."water.pressure_drop"]
enabled = true
[kind.water_pressure.rules."water.offline"]
after_s = 45
[kind.crane.rules."crane.moment"]
blue = { raise = 80, clear = 75 }
[kind.crane.rules."crane.offline"]
after_s = 45
"#;

#[test]
fn the_same_days_under_the_old_defaults_are_noisy() {
    let old = RuleFile::parse(BEFORE_ISSUE_18).unwrap_or_else(|e| panic!("{e}"));
    let mut text = String::new();
    let mut quiet = Vec::new();
    for f in days() {
        let mut s = Scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
        s.rules = old.clone();
        let r = budget::run(&s, false).unwrap_or_else(|e| panic!("{}: {e}", s.name()));
        text.push_str(&budget::render(&r, 0.0));
        if r.worst_per_day() == 0.0 {
            quiet.push(r.name.clone());
        }
    }
    println!("{text}");
    assert!(
        quiet.is_empty(),
        "quiet even under the old rules: {quiet:?}\n{text}"
    );
}
