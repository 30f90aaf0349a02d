//! `anquan-sim verify` as a user runs it: exit 0 and a PASSED line for a
//! scenario that holds, a readable diff and a non-zero exit for one whose
//! expectations are wrong.

use std::path::Path;
use std::process::Command;

fn verify(path: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anquan-sim"))
        .arg("verify")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("anquan-sim: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn verify_passes_a_good_scenario_and_fails_a_wrong_one_with_a_diff() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let good = dir.join("gas-sensor-fault.toml");
    let (ok, out) = verify(&good);
    assert!(ok, "{out}");
    assert!(out.contains("gas-sensor-fault: PASSED"), "{out}");

    // The same scenario, expecting the fault alarm to be red and a leak
    // alarm that never comes.
    let text = std::fs::read_to_string(&good).expect("read");
    let wrong = text.replace(
        "level = \"yellow\"\nstate = \"raised\"",
        "level = \"red\"\nstate = \"raised\"",
    ) + "\n[[expect]]\ndevice = \"gas-0003\"\nrule = \"gas.lel\"\nlevel = \"red\"\nstate = \"raised\"\nwindow_s = [300, 400]\n";
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("wrong.toml");
    std::fs::write(&path, wrong).expect("write");
    let (ok, out) = verify(&path);
    assert!(!ok, "{out}");
    assert!(out.contains("WRONG LEVEL"), "{out}");
    assert!(out.contains("MISSING"), "{out}");
    assert!(
        out.contains("gas-sensor-fault: FAILED (2 mismatches"),
        "{out}"
    );
}

#[test]
fn frames_prints_the_same_bytes_for_the_same_seed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/link-faults-quiet.toml");
    let frames = |seed: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_anquan-sim"));
        c.arg("frames").arg(&path);
        if let Some(s) = seed {
            c.args(["--seed", s]);
        }
        let out = c.output().unwrap_or_else(|e| panic!("anquan-sim: {e}"));
        assert!(out.status.success());
        out.stdout
    };
    let a = frames(None);
    assert!(a.len() > 10_000);
    assert_eq!(a, frames(None));
    assert_ne!(a, frames(Some("12345")));
    let text = String::from_utf8_lossy(&a);
    // The link faults are in the stream: a torn frame and a duplicate.
    assert!(
        text.lines()
            .any(|l| l.contains("gas-0020/telemetry") && !l.ends_with('}')),
        "no torn frame"
    );
    let elec: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("elec-0020/telemetry"))
        .collect();
    assert!(elec.windows(2).any(|w| w[0] == w[1]), "no duplicate");
}

#[test]
fn budget_counts_alarms_per_device_day_and_fails_over_budget() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let budget = |path: &Path, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_anquan-sim"))
            .arg("budget")
            .arg(path)
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("anquan-sim: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // A quiet scenario is within a budget of 0.
    let (ok, out) = budget(&dir.join("water-pump-failure.toml"), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("wp-0001"), "{out}");
    assert!(out.contains("within 0 alarm(s)"), "{out}");
    // One that alarms, stripped of its expectations, is over budget.
    let text = std::fs::read_to_string(dir.join("gas-sensor-fault.toml")).expect("read");
    let quiet = &text[..text.find("[[expect]]").unwrap_or(text.len())];
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("noisy.toml");
    std::fs::write(&path, quiet).expect("write");
    let (ok, out) = budget(&path, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("OVER BUDGET"), "{out}");
    // A generous budget lets it pass.
    let (ok, out) = budget(&path, &["--max-per-device-day", "1000"]);
    assert!(ok, "{out}");
    // A scenario that expects alarms is not a budget day.
    let (ok, out) = budget(&dir.join("gas-leak.toml"), &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("verify it instead"), "{out}");
}

#[test]
fn drive_clock_needs_a_broker_and_one_scenario() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_anquan-sim"))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("anquan-sim: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let one = dir.join("gas-leak.toml");
    let one = one.to_str().unwrap_or_default();
    let (ok, err) = run(&["verify", one, "--drive-clock"]);
    assert!(!ok && err.contains("--broker"), "{err}");
    // No connection is attempted: refused before (port 9 is discard).
    let all = dir.to_str().unwrap_or_default();
    let (ok, err) = run(&["verify", all, "--broker", "127.0.0.1:9", "--drive-clock"]);
    assert!(
        !ok && err.contains("one scenario per gateway start"),
        "{err}"
    );
}
