//! The simulator against the real gateway binary and Mosquitto as separate
//! processes: a shipped scenario's frames go to Mosquitto, the gateway
//! (its own process, real clock) judges them and publishes alarms on
//! `alarms/#`, and `anquan_sim::verify` compares them with the scenario's
//! expected timeline.

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::services::{Mosquitto, eventually};
use anquan_sim::run::{RunOptions, run_blocking};
use anquan_sim::scenario::Scenario;
use anquan_sim::verify::{compare, render};
use std::time::Duration;

fn external(name: &str, speed: f64) {
    let path = anquan_e2e::workspace_root()
        .join("simulator/scenarios")
        .join(name);
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("scenario: {e}"));
    assert!(
        speed == 1.0 || scenario.clock_rules().is_empty(),
        "{name}: {:?} run on the gateway's clock; verify it at speed 1",
        scenario.clock_rules()
    );
    let mq = Mosquitto::start();
    let rules_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let rules = rules_dir.path().join("rules.toml");
    std::fs::write(&rules, &scenario.rules_toml).unwrap_or_else(|e| panic!("write rules: {e}"));
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        mqtt_alarms: true,
        extra: format!("[rules]\nfile = \"{}\"\n", rules.display()),
        ..Setup::default()
    });
    eventually(Duration::from_secs(30), "gateway subscribed", || {
        (gw.metric("anquan_gateway_mqtt_subscribed") == 1.0).then_some(())
    });
    let report = run_blocking(
        &scenario,
        &RunOptions {
            speed: Some(speed),
            broker: Some(format!("127.0.0.1:{}", mq.port())),
            print: false,
            linger_s: 2.0,
        },
    )
    .unwrap_or_else(|e| panic!("run against Mosquitto: {e}"));
    let v = compare(&scenario.spec.expect, &report.alarms);
    let text = render(scenario.name(), &v);
    println!("{text}");
    assert!(v.passed(), "{text}\ngateway log:\n{}", gw.log());
}

#[test]
fn gas_leak_scenario_passes_against_the_gateway_binary_and_mosquitto() {
    // 900 simulated seconds at 30× = 30 s; every rule involved is judged
    // per frame, so the gateway's real clock does not change the outcome.
    external("gas-leak.toml", 30.0);
}

// The scenarios whose rules are all judged per frame (thresholds, debounce
// in samples, combinations, faults, the button) run accelerated; those
// with offline or rate-of-change rules depend on the gateway's own clock
// and are verified in process (`cargo test -p anquan-sim`).

#[test]
fn gas_co_and_button_scenario_passes_against_the_gateway_binary() {
    external("gas-co-and-button.toml", 30.0);
}

#[test]
fn crane_gusty_lift_scenario_passes_against_the_gateway_binary() {
    external("crane-gusty-lift.toml", 30.0);
}

#[test]
fn rules_override_scenario_passes_against_the_gateway_binary() {
    external("rules-override.toml", 30.0);
}

#[test]
fn link_faults_quiet_scenario_stays_quiet_against_the_gateway_binary() {
    external("link-faults-quiet.toml", 30.0);
}

#[test]
fn electrical_probe_fault_scenario_passes_against_the_gateway_binary() {
    external("electrical-probe-fault.toml", 30.0);
}

#[test]
fn offline_short_scenario_passes_in_real_time_against_the_gateway_binary() {
    // The offline rule runs on the gateway's own clock: real time, 100 s.
    external("offline-short.toml", 1.0);
}

#[test]
fn gas_sensor_fault_scenario_passes_against_the_gateway_binary() {
    external("gas-sensor-fault.toml", 30.0);
}

#[test]
fn crane_tilt_and_encoder_scenario_passes_against_the_gateway_binary() {
    external("crane-tilt-and-encoder.toml", 30.0);
}
