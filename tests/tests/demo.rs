//! README's first command: `cargo run -p anquan-sim -- demo` must run and
//! print the alarms of the built-in scenario.

use std::process::Command;

use anquan_protocol::{AlarmEvent, AlarmState, Level};

#[test]
fn demo_prints_the_expected_alarms() {
    let out = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "anquan-sim",
            "--",
            "demo",
            "--minutes",
            "20",
        ])
        .current_dir(anquan_e2e::workspace_root())
        .output()
        .expect("cargo run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<AlarmEvent> = stdout
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .map(|json| {
            AlarmEvent::decode(json.as_bytes()).expect("printed events follow the contract")
        })
        .collect();
    let has = |rule: &str, state: AlarmState, level: Level| {
        events
            .iter()
            .any(|e| e.rule == rule && e.state == state && e.level == level)
    };
    assert!(
        has("gas.lel", AlarmState::Escalated, Level::Red),
        "{stdout}"
    );
    assert!(
        has("gas.lel", AlarmState::Cleared, Level::Orange),
        "{stdout}"
    );
    assert!(
        has("elec.temp3", AlarmState::Escalated, Level::Orange),
        "{stdout}"
    );
    // The burst drains the network: the static floor goes red. The
    // pressure-drop rate rule ships disabled (a pump stop looks like a
    // burst to it).
    assert!(
        has("water.pressure_low", AlarmState::Raised, Level::Red)
            || has("water.pressure_low", AlarmState::Escalated, Level::Red),
        "{stdout}"
    );
    assert!(
        !events.iter().any(|e| e.rule == "water.pressure_drop"),
        "{stdout}"
    );
    // 92 % of the rated moment is the pre-warning; lifting it in a 16 m/s
    // gust (Beaufort 6 or more) is orange while the gust lasts.
    assert!(
        has("crane.moment", AlarmState::Raised, Level::Yellow),
        "{stdout}"
    );
    assert!(
        has("crane.wind_lift", AlarmState::Raised, Level::Orange),
        "{stdout}"
    );
    assert!(
        has("crane.wind_lift", AlarmState::Cleared, Level::Orange),
        "{stdout}"
    );
    // Quiet devices stay quiet: no alarm on the untouched channels.
    assert!(
        !events
            .iter()
            .any(|e| e.rule == "elec.temp1" || e.rule == "elec.residual"),
        "{stdout}"
    );
    // The monitor ("六个自动") took every transition over HTTP and called
    // the people on duty, the next one when nobody acknowledged (叫应).
    assert!(
        stdout.contains(&format!(
            "monitor took {} of {} alarm transitions",
            events.len(),
            events.len()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("monitor -> safety1"), "{stdout}");
    assert!(stdout.contains("[叫应 #1]"), "{stdout}");
    assert!(
        stdout.contains("monitor: warning gas-0001   gas.lel              max red"),
        "{stdout}"
    );
    // Event ids are unique.
    let mut ids: Vec<_> = events
        .iter()
        .map(|e| e.event_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len());
}
