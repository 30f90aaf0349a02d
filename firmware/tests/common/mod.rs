//! Helpers shared by the host scenario tests.
// Test support: a panic here is a failed test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use anquan_firmware::DeviceConfig;
use anquan_firmware::sim::TransportSim;
use anquan_protocol::{Id, Telemetry, TopicKind};

pub fn config(device: &str) -> DeviceConfig {
    DeviceConfig::new(Id::new("s1").unwrap(), Id::new(device).unwrap())
}

/// Every frame the transport took, decoded with the contract's strict
/// decoder (a frame that does not decode fails the test).
pub fn frames(t: &TransportSim) -> Vec<(TopicKind, Telemetry)> {
    t.frames()
        .into_iter()
        .map(|f| f.expect("every frame is valid contract JSON"))
        .collect()
}

/// Asserts the frames' seq are 0, 1, 2… with no gap and no repeat.
pub fn assert_contiguous(frames: &[(TopicKind, Telemetry)]) {
    for (i, (_, f)) in frames.iter().enumerate() {
        assert_eq!(f.seq, i as u32, "frame {i} has seq {}", f.seq);
    }
}

/// The last frame sent.
pub fn last(t: &TransportSim) -> Telemetry {
    frames(t).pop().expect("a frame was sent").1
}
