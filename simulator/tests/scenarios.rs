//! Every shipped scenario, run in process (embedded broker + the real
//! gateway on a simulated clock), must pass its own verification; a
//! deliberately wrong expectation must fail it; the same seed must give the
//! same frames, byte for byte, and another seed other frames.

use std::path::{Path, PathBuf};

use anquan_protocol::Level;
use anquan_sim::run::{RunOptions, run_blocking, stream_digest};
use anquan_sim::scenario::Scenario;
use anquan_sim::verify::{Finding, compare, render};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn shipped() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("scenarios dir: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

fn load(name: &str) -> Scenario {
    Scenario::load(&dir().join(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_shipped_scenario_passes_verification_in_process() {
    let files = shipped();
    assert!(!files.is_empty());
    let mut report = String::new();
    let mut failed = Vec::new();
    for f in &files {
        let s = Scenario::load(f).unwrap_or_else(|e| panic!("{e}"));
        let r = run_blocking(&s, &RunOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", s.name()));
        let v = compare(&s.spec.expect, &r.alarms);
        report.push_str(&render(s.name(), &v));
        if !v.passed() {
            failed.push(s.name().to_string());
        }
    }
    println!("{report}");
    assert!(failed.is_empty(), "failed: {failed:?}\n{report}");
}

#[test]
fn a_wrong_expectation_fails_verification_with_a_clear_diff() {
    let mut s = load("gas-leak.toml");
    let r = run_blocking(&s, &RunOptions::default()).expect("run");
    assert!(compare(&s.spec.expect, &r.alarms).passed());
    // Say the red alarm should have come a minute earlier and been orange.
    let red = s
        .spec
        .expect
        .iter_mut()
        .find(|x| x.level == Level::Red)
        .expect("a red expectation");
    red.level = Level::Orange;
    red.window_s = [red.window_s[0] - 60.0, red.window_s[1] - 60.0];
    let v = compare(&s.spec.expect, &r.alarms);
    let text = render(s.name(), &v);
    assert!(!v.passed(), "{text}");
    assert!(
        v.findings
            .iter()
            .any(|f| matches!(f, Finding::Missing { .. })),
        "{text}"
    );
    assert!(
        v.findings
            .iter()
            .any(|f| matches!(f, Finding::Unexpected { .. })),
        "{text}"
    );
    assert!(text.contains("FAILED"), "{text}");
}

#[test]
fn same_seed_same_frames_other_seed_other_frames() {
    for f in shipped() {
        let s = Scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
        let a = stream_digest(&s).expect("stream");
        let b = stream_digest(&s).expect("stream");
        assert_eq!(a, b, "{}: same seed, different frames", s.name());
        assert!(a.1 > 0, "{}: no frames", s.name());
        let mut other = s.clone();
        other.spec.seed = s.spec.seed.wrapping_add(1);
        let c = stream_digest(&other).expect("stream");
        assert_ne!(a.0, c.0, "{}: another seed gave the same frames", s.name());
    }
}

#[test]
fn the_same_seed_gives_the_same_alarms_through_the_gateway() {
    let s = load("gas-leak.toml");
    let a = run_blocking(&s, &RunOptions::default()).expect("run");
    let b = run_blocking(&s, &RunOptions::default()).expect("run");
    let key = |r: &anquan_sim::run::RunReport| {
        r.alarms
            .iter()
            .map(|o| {
                (
                    o.t_s as u64,
                    o.event.rule.to_string(),
                    o.event.level,
                    o.event.state,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
}
