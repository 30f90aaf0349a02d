use std::collections::BTreeMap;

use anquan_protocol::{Level, Readings};
use proptest::prelude::*;

use super::*;
use crate::validate::DeviceDecl;

const T0: u64 = 1_732_300_000_000;

type Records = Vec<(String, Vec<u8>)>;

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

fn judge(records: Records, was_clean: bool, now: u64) -> Judge {
    Judge::new(
        id("gw"),
        ValidateConfig::default(),
        RuleFile::default(),
        records,
        was_clean,
        now,
    )
}

fn frame(kind: DeviceKind, device: &str, seq: u32, ts_ms: u64, reading: (&str, f32)) -> Telemetry {
    let mut readings = Readings::new();
    let metric = anquan_protocol::Metric::parse(reading.0).unwrap();
    readings.set(metric, reading.1).unwrap();
    Telemetry {
        device: id(device),
        kind,
        seq,
        ts_ms,
        readings,
        faults: Default::default(),
        dropped: 0,
    }
}

fn gas(device: &str, seq: u32, ts_ms: u64, lel: f32, guarantee: Guarantee) -> Input {
    Input {
        site: id("s1"),
        device: id(device),
        body: Body::Telemetry(frame(DeviceKind::Gas, device, seq, ts_ms, ("lel_pct", lel))),
        guarantee,
    }
}

const QOS1: Guarantee = Guarantee::UntilAcked { repeat: false };
const DUP: Guarantee = Guarantee::UntilAcked { repeat: true };

fn take(fx: &mut Effects) -> Vec<Alarm> {
    std::mem::take(&mut fx.alarms)
}

#[test]
fn alarm_time_is_the_device_clock_when_trusted_else_the_receive_time() {
    let mut j = judge(vec![], true, T0);
    let mut fx = Effects::default();
    // Trusted device clock (within 300 s): device time.
    j.judge(&gas("g1", 1, T0 - 2_000, 60.0, QOS1), T0, &mut fx)
        .unwrap();
    // No clock: receive time.
    j.judge(&gas("g2", 1, 0, 60.0, QOS1), T0 + 5, &mut fx)
        .unwrap();
    // Skewed by an hour: receive time.
    let acc = j
        .judge(&gas("g3", 1, T0 - 3_600_000, 60.0, QOS1), T0 + 7, &mut fx)
        .unwrap();
    assert!(acc.skewed);
    let ts: Vec<u64> = take(&mut fx).iter().map(|a| a.event.ts_ms).collect();
    assert_eq!(ts, [T0 - 2_000, T0 + 5, T0 + 7]);
    assert!(fx.readings.contains(&format!(" {}", T0 - 2_000)));
    // Silence is the gateway's: an offline alarm carries the gateway time
    // (the first tick starts the silence clock; the default link is 4G).
    let later = T0 + 46_000;
    let after = u64::from(anquan_edge_rules::defaults::OFFLINE_AFTER_MS);
    j.tick(later, true, &mut fx);
    j.tick(later + after + 1_000, true, &mut fx);
    let offline = take(&mut fx);
    assert_eq!(offline.len(), 3, "{offline:?}");
    assert!(
        offline
            .iter()
            .all(|a| a.event.ts_ms == later + after + 1_000 && !a.early)
    );
    // Back after the outage, the device first sends a frame it buffered
    // 100 s ago (its clock trusted): the frame's readings keep their time,
    // the end of the silence is when the gateway heard it.
    let heard = later + after + 5_000;
    j.judge(&gas("g1", 2, heard - 100_000, 1.0, QOS1), heard, &mut fx)
        .unwrap();
    let back = take(&mut fx);
    let clear = back
        .iter()
        .find(|a| a.event.rule.as_str() == "gas.offline")
        .expect("offline cleared");
    assert_eq!(clear.event.state, AlarmState::Cleared);
    assert_eq!(clear.event.ts_ms, heard);
    assert!(fx.readings.contains(&format!(" {}", heard - 100_000)));
}

#[test]
fn only_repeatable_judgments_go_early() {
    let mut j = judge(vec![], true, T0);
    let mut fx = Effects::default();
    // MQTT QoS 1, gas defaults: early.
    j.judge(&gas("g", 1, 0, 60.0, QOS1), T0, &mut fx).unwrap();
    assert!(take(&mut fx)[0].early);
    // A Modbus reading (delivered once): after the commit, and the device
    // is unsure until its batch is committed.
    j.judge(&gas("g", 2, 0, 1.0, Guarantee::Once), T0 + 1, &mut fx)
        .unwrap();
    assert!(!take(&mut fx)[0].early);
    j.judge(&gas("g", 3, 0, 60.0, QOS1), T0 + 2, &mut fx)
        .unwrap();
    assert!(
        !take(&mut fx)[0].early,
        "the device's state rests on an input that will not come again"
    );
    let (b, _) = j.close_batch();
    j.judge(&gas("g", 4, 0, 1.0, QOS1), T0 + 3, &mut fx)
        .unwrap();
    assert!(!take(&mut fx)[0].early, "still not committed");
    j.committed(b);
    j.judge(&gas("g", 5, 0, 60.0, QOS1), T0 + 4, &mut fx)
        .unwrap();
    assert!(take(&mut fx)[0].early, "committed: repeatable again");

    // A device restart is judged from the DUP flag: not early.
    j.judge(&gas("g", 0, 0, 1.0, QOS1), T0 + 5, &mut fx)
        .unwrap();
    let a = take(&mut fx);
    assert_eq!(a[0].event.state, AlarmState::Cleared);
    assert!(!a[0].early);

    // CO held above 26 ppm starts the 15-minute hold of gas.co_sustained:
    // a rule that now looks at the clock, so the frame's LEL alarm waits
    // for its commit; CO low again and committed: early again.
    let with_co = |seq: u32, lel: f32, co: f32| {
        let mut f = frame(DeviceKind::Gas, "c", seq, 0, ("lel_pct", lel));
        f.readings.set(anquan_protocol::Metric::CoPpm, co).unwrap();
        Input {
            site: id("s1"),
            device: id("c"),
            body: Body::Telemetry(f),
            guarantee: QOS1,
        }
    };
    j.judge(&with_co(1, 60.0, 40.0), T0 + 10, &mut fx).unwrap();
    let a = take(&mut fx);
    assert_eq!(a[0].event.rule.as_str(), "gas.lel");
    assert!(!a[0].early, "the CO hold is counting");
    j.judge(&with_co(2, 1.0, 2.0), T0 + 11, &mut fx).unwrap();
    assert!(
        !take(&mut fx)[0].early,
        "judged from a state that rests on the clock"
    );
    let (b, _) = j.close_batch();
    j.committed(b);
    j.judge(&with_co(3, 60.0, 2.0), T0 + 12, &mut fx).unwrap();
    assert!(take(&mut fx)[0].early, "CO low and committed");

    // A rate rule switched on (water.pressure_drop is off by default):
    // never early.
    let file =
        RuleFile::parse("[kind.water_pressure.rules.\"water.pressure_drop\"]\nenabled = true\n")
            .unwrap();
    let mut j = Judge::new(id("gw"), ValidateConfig::default(), file, vec![], true, T0);
    let wp = Input {
        site: id("s1"),
        device: id("wp"),
        body: Body::Telemetry(frame(
            DeviceKind::WaterPressure,
            "wp",
            1,
            0,
            ("pressure_mpa", 0.01),
        )),
        guarantee: QOS1,
    };
    j.judge(&wp, T0, &mut fx).unwrap();
    let mut wp2 = wp.clone();
    if let Body::Telemetry(f) = &mut wp2.body {
        f.seq = 2;
    }
    j.judge(&wp2, T0 + 1, &mut fx).unwrap();
    let a = take(&mut fx);
    assert_eq!(a[0].event.level, Level::Red);
    assert!(!a[0].early);
}

#[test]
fn an_offline_clear_waits_for_the_commit_and_the_rest_of_the_frame_does_not() {
    let mut j = judge(vec![], true, T0);
    let mut fx = Effects::default();
    j.judge(&gas("g", 1, 0, 1.0, QOS1), T0, &mut fx).unwrap();
    let status = Input {
        site: id("s1"),
        device: id("g"),
        body: Body::Status(DeviceStatus::Offline),
        guarantee: QOS1,
    };
    j.judge(&status, T0 + 10, &mut fx).unwrap();
    let a = take(&mut fx);
    assert_eq!(
        (a[0].event.rule.as_str(), a[0].early),
        ("gas.offline", false)
    );
    assert_eq!(j.online_offline(), (0, 1));
    j.judge(&gas("g", 2, 0, 60.0, QOS1), T0 + 20, &mut fx)
        .unwrap();
    let a = take(&mut fx);
    let got: Vec<(&str, AlarmState, bool)> = a
        .iter()
        .map(|a| (a.event.rule.as_str(), a.event.state, a.early))
        .collect();
    assert_eq!(
        got,
        [
            ("gas.lel", AlarmState::Raised, true),
            ("gas.offline", AlarmState::Cleared, false)
        ]
    );
    assert_eq!(j.online_offline(), (1, 0));
}

#[test]
fn records_resume_and_changed_rules_after_a_crash_skip_ids() {
    let mut j = judge(vec![], true, T0);
    let mut fx = Effects::default();
    j.judge(&gas("g", 1, 0, 60.0, QOS1), T0, &mut fx).unwrap();
    take(&mut fx);
    let (_, records) = j.close_batch();
    assert_eq!(records.len(), 1);
    // Same rules: resumes (the next transition is a clear, n = 2).
    let mut j2 = judge(records.clone(), false, T0 + 1);
    j2.judge(&gas("g", 2, 0, 1.0, DUP), T0 + 2, &mut fx)
        .unwrap();
    let a = take(&mut fx);
    assert_eq!(a[0].event.event_id.as_str(), "gw/s1/g/gas.lel/2");
    assert_eq!(a[0].event.state, AlarmState::Cleared);
    // Other rules after a crash: quiet state, ids far beyond any that may
    // have left early.
    let file = RuleFile::parse("[kind.gas.rules.\"gas.lel\"]\nred = { raise = 40, clear = 30 }\n")
        .unwrap();
    let mut j3 = Judge::new(
        id("gw"),
        ValidateConfig::default(),
        file.clone(),
        records.clone(),
        false,
        T0,
    );
    j3.judge(&gas("g", 2, 0, 45.0, DUP), T0 + 2, &mut fx)
        .unwrap();
    let a = take(&mut fx);
    assert_eq!(
        a[0].event.event_id.as_str(),
        format!("gw/s1/g/gas.lel/{}", 2 + SPECULATION_MARGIN)
    );
    // After a clean stop nothing left early: no jump.
    let mut j4 = Judge::new(id("gw"), ValidateConfig::default(), file, records, true, T0);
    j4.judge(&gas("g", 2, 0, 45.0, DUP), T0 + 2, &mut fx)
        .unwrap();
    assert_eq!(
        take(&mut fx)[0].event.event_id.as_str(),
        "gw/s1/g/gas.lel/2"
    );
    // A lost broker session after a crash: every counter jumps.
    j4.forget_speculation();
    let (_, recs) = j4.close_batch();
    let r = DeviceRecord::parse(&recs[0].1).unwrap();
    assert_eq!(r.n, 2 + SPECULATION_MARGIN);
}

#[test]
fn declared_devices_and_registry_policy() {
    let cfg = ValidateConfig {
        unknown_devices: UnknownDevices::Reject,
        devices: vec![DeviceDecl {
            id: id("g"),
            site: id("s1"),
            kind: DeviceKind::Gas,
        }],
        ..ValidateConfig::default()
    };
    let mut j = Judge::new(id("gw"), cfg, RuleFile::default(), vec![], true, T0);
    let mut fx = Effects::default();
    assert_eq!(j.device_count(), 1);
    assert!(j.judge(&gas("g", 1, 0, 1.0, QOS1), T0, &mut fx).is_ok());
    assert_eq!(
        j.judge(&gas("other", 1, 0, 1.0, QOS1), T0, &mut fx),
        Err(Reject::UnknownDevice)
    );
    let mut wrong_site = gas("g", 2, 0, 1.0, QOS1);
    wrong_site.site = id("s2");
    assert_eq!(j.judge(&wrong_site, T0, &mut fx), Err(Reject::SiteMismatch));
    let mut spoof = gas("g", 3, 0, 1.0, QOS1);
    spoof.device = id("h");
    assert_eq!(j.judge(&spoof, T0, &mut fx), Err(Reject::DeviceMismatch));
    assert_eq!(
        j.judge(&gas("g", 1, 0, 1.0, DUP), T0, &mut fx),
        Err(Reject::Duplicate)
    );
    assert_eq!(fx.readings_count, 1);
}

#[test]
fn per_device_state_stays_small() {
    // Budget (issue 5): ≤ 512 bytes of state per device.
    let per = std::mem::size_of::<Device>() + std::mem::size_of::<Box<str>>() + 16 + 1;
    assert!(per <= 512, "{per} bytes per device");
}

/// One step of a device's life in the property test below.
#[derive(Debug, Clone)]
enum Step {
    /// A frame over MQTT QoS 1 with this %LEL and CO ppm (CO above 26 ppm
    /// starts gas.co_sustained's 15-minute hold: a rule on the clock).
    Frame { device: u8, lel: u8, co: u8 },
    /// The same over a source that delivers once (Modbus, QoS 0).
    Once { device: u8, lel: u8, co: u8 },
    /// The device rebooted: its sequence starts over.
    Reboot { device: u8 },
    /// A status message (QoS 1).
    Status { device: u8, online: bool },
    /// Time passes and the offline rules are checked.
    Tick { ms: u32 },
    /// The open batch is closed and handed to the store.
    Close,
    /// The oldest batch handed to the store is durable.
    Commit,
}

fn step() -> impl Strategy<Value = Step> {
    let lel = prop_oneof![Just(1u8), Just(12), Just(30), Just(60)];
    let co = prop_oneof![4 => Just(0u8), 1 => Just(40), 1 => Just(200)];
    prop_oneof![
        8 => (0u8..3, lel.clone(), co.clone()).prop_map(|(device, lel, co)| Step::Frame { device, lel, co }),
        1 => (0u8..3, lel, co).prop_map(|(device, lel, co)| Step::Once { device, lel, co }),
        1 => (0u8..3).prop_map(|device| Step::Reboot { device }),
        1 => (0u8..3, any::<bool>()).prop_map(|(device, online)| Step::Status { device, online }),
        1 => (1u32..60_000).prop_map(|ms| Step::Tick { ms }),
        // Long enough for the CO hold to complete between two frames.
        1 => (600_000u32..1_200_000).prop_map(|ms| Step::Tick { ms }),
        2 => Just(Step::Close),
        2 => Just(Step::Commit),
    ]
}

/// What the receivers compare (everything but `ts_ms`).
fn compared(
    e: &AlarmEvent,
) -> (
    String,
    String,
    String,
    DeviceKind,
    String,
    Level,
    AlarmState,
    u32,
    u32,
    String,
) {
    (
        e.event_id.to_string(),
        e.site.to_string(),
        e.device.to_string(),
        e.kind,
        e.rule.to_string(),
        e.level,
        e.state,
        e.value.to_bits(),
        e.threshold.to_bits(),
        e.gateway.to_string(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The fast lane's premise, checked against a crash at every point: an
    /// alarm that left before its commit is judged again, from the durable
    /// records and the frames the broker redelivers (DUP set, later, on
    /// another clock), into the same event under the same id.
    #[test]
    fn an_early_alarm_is_judged_again_into_the_same_event(
        steps in proptest::collection::vec(step(), 1..120),
        restart_after_ms in 1u64..600_000,
    ) {
        let mut j = judge(vec![], true, T0);
        let mut fx = Effects::default();
        let mut now = T0;
        let mut seq = [0u32; 3];
        // Durable records, and the batches handed over but not durable.
        let mut durable: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut handed: std::collections::VecDeque<(u64, Records)> = Default::default();
        // Inputs the broker holds until their batch is durable, with the
        // batch they are judged in (the open one: j's next batch number).
        let mut unacked: Vec<(u64, Input)> = Vec::new();
        let mut open = 1u64;
        let mut early: Vec<(u64, AlarmEvent)> = Vec::new();
        for s in steps {
            now += 7;
            match s {
                Step::Frame { device, lel, co } | Step::Once { device, lel, co } => {
                    let d = usize::from(device);
                    seq[d] += 1;
                    let once = matches!(s, Step::Once { .. });
                    let mut input = gas(
                        &format!("g{device}"),
                        seq[d],
                        0,
                        f32::from(lel),
                        if once { Guarantee::Once } else { QOS1 },
                    );
                    if let Body::Telemetry(f) = &mut input.body {
                        f.readings.set(anquan_protocol::Metric::CoPpm, f32::from(co)).unwrap();
                    }
                    let _ = j.judge(&input, now, &mut fx);
                    if !once {
                        unacked.push((open, input));
                    }
                }
                Step::Reboot { device } => seq[usize::from(device)] = 0,
                Step::Status { device, online } => {
                    let input = Input {
                        site: id("s1"),
                        device: id(&format!("g{device}")),
                        body: Body::Status(if online { DeviceStatus::Online } else { DeviceStatus::Offline }),
                        guarantee: QOS1,
                    };
                    let _ = j.judge(&input, now, &mut fx);
                    unacked.push((open, input));
                }
                Step::Tick { ms } => {
                    now += u64::from(ms);
                    j.tick(now, true, &mut fx);
                }
                Step::Close => {
                    let (b, recs) = j.close_batch();
                    handed.push_back((b, recs));
                    open = b + 1;
                }
                Step::Commit => {
                    if let Some((b, recs)) = handed.pop_front() {
                        durable.extend(recs);
                        j.committed(b);
                        unacked.retain(|(batch, _)| *batch > b);
                    }
                }
            }
            let batch = open;
            early.extend(take(&mut fx).into_iter().filter(|a| a.early).map(|a| (batch, a.event)));
        }
        // Crash. The restarted gateway judges what the broker redelivers.
        let committed_through = handed.front().map_or(open, |(b, _)| *b) - 1;
        let mut j2 = judge(durable.into_iter().collect(), false, now + restart_after_ms);
        let mut again: BTreeMap<String, AlarmEvent> = BTreeMap::new();
        let mut t = now + restart_after_ms;
        for (batch, mut input) in unacked {
            prop_assert!(batch > committed_through);
            input.guarantee = DUP;
            t += 3;
            let _ = j2.judge(&input, t, &mut fx);
            for a in take(&mut fx) {
                again.insert(a.event.event_id.to_string(), a.event);
            }
        }
        // An early alarm of a batch that was not durable must come out
        // again, identical; one of a durable batch must not be reused.
        for (batch, e) in &early {
            match again.get(e.event_id.as_str()) {
                Some(e2) => prop_assert_eq!(compared(e), compared(e2)),
                None => prop_assert!(
                    *batch <= committed_through,
                    "{} left early and was never judged again", e.event_id
                ),
            }
        }
    }
}
