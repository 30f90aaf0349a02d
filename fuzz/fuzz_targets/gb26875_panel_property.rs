//! A transmission device's byte stream as the gateway's `[gb26875]`
//! listener handles it (`anquan_gateway::gb26875`): frames decoded one
//! after the other (garbage skipped with `resync`), every send-data frame
//! whose objects all decode applied to the device's `Panel`. Never panic;
//! after every frame the panel's reading is a valid `fire_panel` frame
//! (every count finite and inside its metric's range, so the gateway's
//! validator never rejects, and loses, a fire), and the panel survives its
//! JSON form (what the listener saves before confirming).
//!
//! Shared by the fuzz target (`gb26875_panel.rs`) and the replay of its
//! corpus and regressions (`gateway/tests/fuzz_corpus.rs`).

use anquan_gateway::gb26875::panel::Panel;
use anquan_protocol::gb26875::{Command, Frame, resync};
use anquan_protocol::{DeviceKind, Id, Metric, Telemetry};

/// Checks the properties on one input (a byte stream from one device).
pub fn check(data: &[u8]) {
    let mut panel = Panel::default();
    let mut rest = data;
    while !rest.is_empty() {
        match Frame::decode(rest) {
            Ok((frame, used)) => {
                rest = &rest[used..];
                if frame.header.command != Command::Send {
                    continue;
                }
                let Ok(objects) = frame.objects().collect::<Result<Vec<_>, _>>() else {
                    continue;
                };
                for o in &objects {
                    panel.apply(o);
                }
                verify(&panel);
            }
            Err(e) if e.is_incomplete() => break,
            Err(_) => {
                let skip = resync(rest);
                assert!(skip >= 1);
                rest = &rest[skip..];
            }
        }
    }
}

fn verify(panel: &Panel) {
    let readings = panel.readings();
    for m in [
        Metric::FirePoints,
        Metric::FaultPoints,
        Metric::IsolatedPoints,
        Metric::SupervisionPoints,
    ] {
        let v = readings
            .get(m)
            .unwrap_or_else(|| panic!("{m} missing: every count, every frame"));
        assert!(m.in_range(v), "{m} = {v}");
    }
    let frame = Telemetry {
        device: Id::new("fp-1").unwrap_or_else(|e| panic!("{e}")),
        kind: DeviceKind::FirePanel,
        seq: 0,
        ts_ms: 0,
        readings,
        faults: panel.faults(),
        dropped: 0,
    };
    assert_eq!(frame.validate(), Ok(()));
    let json = serde_json::to_vec(panel).unwrap_or_else(|e| panic!("a panel serializes: {e}"));
    let back: Panel =
        serde_json::from_slice(&json).unwrap_or_else(|e| panic!("and parses back: {e}"));
    assert_eq!(&back, panel);
}
