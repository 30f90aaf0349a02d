//! `anquan-sim load` through the in-process gateway: every frame sent over
//! the shared connections is acknowledged by the broker and committed by
//! the gateway (no rate threshold: the machine's speed is not under test).

use std::time::Duration;

use anquan_sim::load::{LoadArgs, run};

#[test]
fn load_frames_are_all_acknowledged_and_committed() {
    let args = LoadArgs {
        devices: 300,
        period: Duration::from_secs(1),
        rate: None,
        duration: Duration::from_secs(2),
        connections: 3,
        broker: None,
        site: "load-site".into(),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let r = rt.block_on(run(&args)).expect("load run");
    assert!(r.sent > 0);
    assert_eq!(r.acked, r.sent, "{r:?}");
    assert_eq!(r.handled, Some(r.sent), "{r:?}");
    assert!((r.target_rate - 300.0).abs() < 1e-9);
}
