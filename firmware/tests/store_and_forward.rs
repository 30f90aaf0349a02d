//! The offline buffer: a 10-minute outage loses nothing and leaves no gap in
//! `seq`; a longer one drops the oldest telemetry, keeps every event, and
//! says how many it dropped.

mod common;

use anquan_firmware::sim::TransportSim;
use anquan_firmware::sim::rigs::{GasRig, SIM_EPOCH_MS, WaterRig};
use anquan_protocol::{Metric, TopicKind};

use common::{assert_contiguous, config, frames};

#[test]
fn ten_minutes_down_then_up_delivers_everything_in_order() {
    let rig = GasRig::new();
    let mut device = rig.device(config("gas-0001")).unwrap();
    let mut link = TransportSim::connected();
    let mut produced = 0;
    let (down_at, up_at, end) = (60u64, 660u64, 700u64);
    let mut peak = 0;
    for s in 0..end {
        if s == down_at {
            link.down();
        }
        if s == up_at {
            link.up();
        }
        // A leak during the outage: events while offline.
        rig.set_lel(if (300..320).contains(&s) { 30.0 } else { 1.0 });
        let out = device.step(s * 1_000, &mut link);
        produced += u32::from(out.queued);
        peak = peak.max(device.outbox().len());
        if (down_at..up_at).contains(&s) {
            assert_eq!(out.published, 0);
        }
    }
    let frames = frames(&link);
    assert_eq!(frames.len() as u32, produced);
    assert_contiguous(&frames);
    // Oldest first: device time never goes backwards across the frames.
    assert!(frames.windows(2).all(|w| w[0].1.ts_ms <= w[1].1.ts_ms));
    assert!(frames.iter().all(|(_, f)| f.dropped == 0));
    // 40 telemetry frames and the leak's events were held.
    let offline: Vec<_> = frames
        .iter()
        .filter(|(_, f)| (down_at..up_at).contains(&((f.ts_ms - SIM_EPOCH_MS) / 1000)))
        .collect();
    assert_eq!(
        offline
            .iter()
            .filter(|(k, _)| *k == TopicKind::Telemetry)
            .count(),
        40
    );
    assert!(offline.iter().any(|(k, _)| *k == TopicKind::Event));
    assert_eq!(peak, offline.len());
    // The retained online status again after the new session.
    assert_eq!(link.statuses(), ["online", "online"]);
    // Drained within two steps of the reconnect (32 frames per step).
    assert_eq!(device.outbox().len(), 0);
    assert_eq!(device.stats().dropped, 0);
}

#[test]
fn overflow_drops_oldest_telemetry_counts_it_and_keeps_events() {
    let rig = WaterRig::new();
    let mut device = rig.device(config("wp-0001")).unwrap();
    let mut link = TransportSim::disconnected();
    let hours = 2;
    let end = hours * 3_600;
    let mut produced = 0u32;
    let mut events = 0u32;
    for s in 0..end {
        // A pressure dip every 10 minutes: low-pressure events.
        let dip = s % 600 < 30;
        rig.set_pressure_mpa(if dip { 0.04 } else { 0.3 });
        let out = device.step(s * 1_000, &mut link);
        produced += u32::from(out.queued);
        events = device.stats().events;
    }
    let capacity = device.outbox().capacity_bytes();
    assert!(device.outbox().bytes_used() <= capacity);
    let dropped = device.outbox().dropped_since_delivery();
    assert!(dropped > 0, "two hours must overflow the buffer");
    assert_eq!(device.stats().dropped, dropped);
    link.up();
    // Steps between two samples only publish: drain without new frames.
    for k in 0..20 {
        let out = device.step((end - 1) * 1_000 + 500 + k, &mut link);
        assert!(!out.sampled);
    }
    assert_eq!(device.outbox().len(), 0);
    let frames = frames(&link);
    let before: Vec<_> = frames
        .iter()
        .filter(|(_, f)| f.ts_ms < SIM_EPOCH_MS + end * 1_000)
        .collect();
    // Every frame is either delivered or counted as dropped.
    assert_eq!(before.len() as u32 + dropped, produced);
    // The first delivered frame carries the count; later ones do not.
    assert_eq!(before[0].1.dropped, dropped);
    assert!(before[1..].iter().all(|(_, f)| f.dropped == 0));
    // Every event survived; only telemetry was dropped.
    let delivered_events = before
        .iter()
        .filter(|(k, _)| *k == TopicKind::Event)
        .count() as u32;
    assert_eq!(delivered_events, events);
    // Delivered in seq order (with gaps where telemetry was dropped).
    assert!(frames.windows(2).all(|w| w[0].1.seq < w[1].1.seq));
    // The newest telemetry is kept: the last 45 minutes are complete (the
    // 4 KiB ring holds 256 water-pressure frames, the events among them).
    let last_minutes = before
        .iter()
        .filter(|(k, f)| {
            *k == TopicKind::Telemetry && f.ts_ms >= SIM_EPOCH_MS + (end - 2_700) * 1_000
        })
        .count();
    assert_eq!(last_minutes, 180);
    assert!(
        before
            .iter()
            .all(|(_, f)| f.readings.get(Metric::PressureMpa).is_some())
    );
}

#[test]
fn a_busy_stack_delays_but_never_loses() {
    let rig = GasRig::new();
    let mut device = rig.device(config("gas-0002")).unwrap();
    let mut link = TransportSim::connected();
    // The stack takes one message per step at most (its window is full).
    for s in 0..120u64 {
        link.budget = Some(1);
        device.step(s * 1_000, &mut link);
    }
    link.budget = None;
    device.step(120_000, &mut link);
    let frames = frames(&link);
    assert_contiguous(&frames);
    assert_eq!(frames.len() as u32, device.stats().frames);
    assert!(device.stats().publish_errors > 0);
}
