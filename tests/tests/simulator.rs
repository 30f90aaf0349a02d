//! The simulator against the real gateway binary and Mosquitto as separate
//! processes: a shipped scenario's frames go to Mosquitto, the gateway
//! (its own process) judges them and publishes alarms on `alarms/#`, and
//! `anquan_sim::verify` compares them with the scenario's expected
//! timeline.
//!
//! Every shipped scenario runs here on the gateway's driven clock (`[lab]
//! clock = "driven"`, `anquan_gateway::lab`): the simulator moves the
//! gateway's clock along the scenario's, tick by tick, so offline,
//! rate-of-change and working-hours rules judge simulated time and a
//! simulated day takes seconds. One scenario also runs on the gateway's
//! real clock (the production path) at 60×, which is sound only for rules
//! judged per frame. `every_shipped_scenario_runs_against_the_binary`
//! fails when a scenario file has no test here.

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::services::Mosquitto;
use anquan_sim::run::{Observed, RunOptions, run_blocking, run_engine};
use anquan_sim::scenario::Scenario;
use anquan_sim::verify::{compare, render};

fn load(name: &str) -> Scenario {
    let path = anquan_e2e::workspace_root()
        .join("simulator/scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("scenario: {e}"))
}

/// Runs `scenario` against a fresh Mosquitto and gateway binary: on the
/// driven clock as fast as possible, or on the real clock at `speed`.
fn against_the_binary(scenario: &Scenario, clock: Clock) {
    let name = scenario.name();
    if let Clock::Real { .. } = clock {
        assert!(
            scenario.clock_rules().is_empty(),
            "{name}: {:?} run on the gateway's clock; drive it",
            scenario.clock_rules()
        );
    }
    // Without Nagle's algorithm the broker passes each tick and its answer
    // on at once instead of after the TCP acknowledgement of the frames
    // before it (the simulator and the gateway set TCP_NODELAY too).
    let mq = Mosquitto::start_with("set_tcp_nodelay true");
    let rules_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let rules = rules_dir.path().join("rules.toml");
    std::fs::write(&rules, &scenario.rules_toml).unwrap_or_else(|e| panic!("write rules: {e}"));
    let lab = match clock {
        Clock::Driven => "[lab]\nclock = \"driven\"\n",
        Clock::Real { .. } => "",
    };
    // `start` returns once the gateway has subscribed.
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        mqtt_alarms: true,
        extra: format!("[rules]\nfile = \"{}\"\n\n{lab}", rules.display()),
        ..Setup::default()
    });
    let report = run_blocking(
        scenario,
        &RunOptions {
            speed: match clock {
                Clock::Driven => None,
                Clock::Real { speed } => Some(speed),
            },
            broker: Some(format!("127.0.0.1:{}", mq.port())),
            print: false,
            // Driven: an upper bound; the run ends as soon as every alarm
            // the gateway raised (it says how many) has arrived. Real
            // clock: a pause for the last alarms.
            linger_s: match clock {
                Clock::Driven => 60.0,
                Clock::Real { .. } => 2.0,
            },
            drive_clock: matches!(clock, Clock::Driven),
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{name}: run against Mosquitto: {e}\ngateway log:\n{}",
            gw.log()
        )
    });
    let v = compare(&scenario.spec.expect, &report.alarms);
    let text = render(name, &v);
    println!("{text}");
    assert!(v.passed(), "{text}\ngateway log:\n{}", gw.log());
    if let Clock::Driven = clock {
        // On the driven clock the binary gives exactly the rule engine's
        // alarms at the same simulated seconds (what the in-process run
        // gives too): nothing depended on timing.
        let engine = run_engine(scenario, false).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            transitions(&report.alarms),
            transitions(&engine.alarms),
            "{name}: the binary on the driven clock (left) and the rule engine (right) disagree"
        );
        // Every tick was applied; none refused.
        let page = gw.metrics();
        let refused: Vec<&str> = page
            .lines()
            .filter(|l| {
                l.starts_with("anquan_gateway_lab_clock_ticks_total")
                    && !l.contains("result=\"applied\"")
            })
            .collect();
        assert!(refused.is_empty(), "{refused:?}");
        assert!(
            gw.metric(r#"anquan_gateway_lab_clock_ticks_total{result="applied"}"#) >= 2.0,
            "{page}"
        );
    }
}

/// Alarm transitions in a comparable order: (ms, device, rule, state,
/// level), sorted (alarms of one second may arrive in any order).
fn transitions(alarms: &[Observed]) -> Vec<(u64, String, String, String, String)> {
    let mut v: Vec<_> = alarms
        .iter()
        .map(|o| {
            let e = &o.event;
            (
                (o.t_s * 1000.0).round() as u64,
                e.device.to_string(),
                e.rule.to_string(),
                e.state.as_str().to_string(),
                e.level.as_str().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[derive(Debug, Clone, Copy)]
enum Clock {
    /// `[lab] clock = "driven"`, moved by the simulator.
    Driven,
    /// The gateway's wall clock; the simulator paces at `speed`×.
    Real { speed: f64 },
}

/// Shipped scenarios that cannot run against the binary, with the reason.
/// Empty: every one does. A scenario added here must say why.
const NOT_AGAINST_THE_BINARY: &[(&str, &str)] = &[];

/// One test per shipped scenario on the driven clock, so CI reports each
/// by name, and the test that no scenario is left out.
macro_rules! driven {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                against_the_binary(&load($file), Clock::Driven);
            }
        )*

        #[test]
        fn every_shipped_scenario_runs_against_the_binary() {
            let listed = [$($file),*];
            let dir = anquan_e2e::workspace_root().join("simulator/scenarios");
            let mut shipped: Vec<String> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
                .collect();
            shipped.sort();
            assert!(shipped.len() >= 20, "{shipped:?}");
            for name in &shipped {
                let excepted = NOT_AGAINST_THE_BINARY.iter().any(|(n, _)| n == name);
                assert!(
                    listed.contains(&name.as_str()) || excepted,
                    "{name} does not run against the gateway binary: add it to driven! in tests/tests/simulator.rs"
                );
            }
            for (name, why) in NOT_AGAINST_THE_BINARY {
                assert!(!why.is_empty(), "{name}: say why");
                assert!(shipped.contains(&name.to_string()), "{name}: no such scenario");
                assert!(!listed.contains(name), "{name}: both tested and excepted");
            }
            for name in listed {
                assert!(shipped.iter().any(|s| s == name), "{name}: no such scenario");
            }
        }
    };
}

// `broker-outage` needs no broker stop: its outage is the devices' (none
// reaches the broker; they buffer and flush), as in process, while the
// gateway stays connected and hears the silence. Stopping Mosquitto would
// model another failure: a gateway that cannot hear judges no silence.
driven! {
    broker_outage => "broker-outage.toml",
    corrupt_payloads_offline => "corrupt-payloads-offline.toml",
    crane_gusty_lift => "crane-gusty-lift.toml",
    crane_off_after_work => "crane-off-after-work.toml",
    crane_overload => "crane-overload.toml",
    crane_tilt_and_encoder => "crane-tilt-and-encoder.toml",
    crane_wind_lift => "crane-wind-lift.toml",
    electrical_day => "electrical-day.toml",
    electrical_overload => "electrical-overload.toml",
    electrical_probe_fault => "electrical-probe-fault.toml",
    gas_co_and_button => "gas-co-and-button.toml",
    gas_leak => "gas-leak.toml",
    gas_sensor_fault => "gas-sensor-fault.toml",
    link_faults_quiet => "link-faults-quiet.toml",
    link_jitter_4g => "link-jitter-4g.toml",
    offline_and_last_will => "offline-and-last-will.toml",
    offline_short => "offline-short.toml",
    quiet_site_hour => "quiet-site-hour.toml",
    rules_override => "rules-override.toml",
    venue_closed_at_night => "venue-closed-at-night.toml",
    water_leak_and_burst => "water-leak-and-burst.toml",
    water_pump_failure => "water-pump-failure.toml",
    water_pump_pressure => "water-pump-pressure.toml",
}

#[test]
fn gas_leak_passes_on_the_gateways_real_clock() {
    // The production clock: 900 simulated seconds at 60× = 15 s; every
    // rule involved is judged per frame, so the real clock does not change
    // the outcome (`against_the_binary` refuses scenarios where it would).
    against_the_binary(&load("gas-leak.toml"), Clock::Real { speed: 60.0 });
}

#[test]
fn a_driven_gateway_refuses_bad_ticks_and_holds_a_tick_for_its_frames() {
    use anquan_e2e::mqtt::{gas_frame, telemetry_topic};
    use anquan_gateway::lab::{ACK_TOPIC, TICK_TOPIC, TickAck};
    use std::time::Duration;
    const T0: u64 = 1_732_300_000_000;
    let mq = Mosquitto::start();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        extra: "[lab]\nclock = \"driven\"\n".into(),
        ..Setup::default()
    });
    assert!(gw.log().contains("LAB MODE"), "{}", gw.log());
    let acks = mq.subscribe(ACK_TOPIC, 8, Duration::from_secs(30));
    let ticks = [
        format!(r#"{{"now_ms":{T0},"frames":0}}"#),
        format!(r#"{{"now_ms":{}}}"#, T0 - 1),
        "not json".to_string(),
        r#"{"now_ms":"soon"}"#.to_string(),
        r#"{"now_ms":5}"#.to_string(),
        format!(r#"{{"now_ms":{T0}{}}}"#, " ".repeat(300)),
        format!(r#"{{"now_ms":{}}}"#, T0 + 60_000),
    ];
    mq.publish_lines(TICK_TOPIC, &ticks);
    // Published before its frame: answered only once the frame is in.
    mq.publish(
        TICK_TOPIC,
        &format!(r#"{{"now_ms":{},"frames":1}}"#, T0 + 75_000),
    );
    mq.publish(
        &telemetry_topic("s1", "gas-1"),
        &gas_frame("gas-1", 1, T0 + 75_000, 1.0),
    );
    let answers: Vec<TickAck> = acks
        .lines()
        .iter()
        .map(|l| TickAck::decode(l.as_bytes()).unwrap_or_else(|| panic!("{l}")))
        .collect();
    // Refusals are answered by ingest at once, applied ticks by the
    // pipeline: the answers' order may differ from the ticks'.
    let mut summary: Vec<(u64, u64, Option<&str>)> = answers
        .iter()
        .map(|a| (a.now_ms, a.frames, a.rejected.as_deref()))
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        vec![
            (T0, 0, None),
            (T0, 0, Some("backwards")),
            (T0, 0, Some("malformed")),
            (T0, 0, Some("malformed")),
            (T0, 0, Some("out_of_range")),
            (T0, 0, Some("oversized")),
            (T0 + 60_000, 0, None),
            // Held until its frame was in.
            (T0 + 75_000, 1, None),
        ],
        "gateway log:\n{}",
        gw.log()
    );
    for (result, n) in [
        ("applied", 3.0),
        ("backwards", 1.0),
        ("malformed", 2.0),
        ("out_of_range", 1.0),
        ("oversized", 1.0),
    ] {
        assert_eq!(
            gw.metric(&format!(
                "anquan_gateway_lab_clock_ticks_total{{result=\"{result}\"}}"
            )),
            n,
            "{result}"
        );
    }
    assert!(gw.log().contains("lab clock: tick refused"), "{}", gw.log());
    // Still running, and the frame was judged on the driven clock (not
    // skewed: its device time is the driven time, years from the wall's).
    assert!(gw.healthz().is_some());
    assert_eq!(gw.metric("anquan_gateway_clock_skew_total"), 0.0);
    assert_eq!(
        gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#),
        1.0
    );
}
