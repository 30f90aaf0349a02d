//! `anquan-sim`: the anquan-iot lab.
//!
//! `anquan-sim demo` runs a built-in site (a gas detector, an electrical-fire
//! monitor, a fire-water pressure sensor and a tower crane) through the
//! default rules on a simulated clock and prints every alarm as it happens.

use std::process::ExitCode;

use anquan_edge_rules::{DeviceState, RuleSet, defaults};
use anquan_protocol::{AlarmEvent, DeviceKind, EventId, Id, Metric, Readings};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "anquan-sim",
    version,
    about = "The anquan-iot lab: virtual devices, scenarios, verification, load"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the built-in demo site and print alarms as they occur.
    Demo {
        /// Simulated minutes to run.
        #[arg(long, default_value_t = 20)]
        minutes: u64,
    },
}

/// One virtual device of the demo: an id, a kind and a reading model
/// (`t` = seconds since start).
struct DemoDevice {
    id: &'static str,
    kind: DeviceKind,
    model: fn(f32) -> Vec<(Metric, f32)>,
    rules: RuleSet,
    state: DeviceState,
    seq: u64,
}

/// A gas leak from t = 120 s, rising 0.5 %LEL/s, ventilated at t = 300 s.
fn gas(t: f32) -> Vec<(Metric, f32)> {
    let lel = if t < 120.0 {
        1.0
    } else if t < 300.0 {
        1.0 + (t - 120.0) * 0.5
    } else {
        (91.0 - (t - 300.0) * 1.0).max(1.0)
    };
    vec![(Metric::LelPct, lel.min(100.0)), (Metric::CoPpm, 2.0)]
}

/// Cable 3 heats up under an overload from t = 240 s with a 120 s time constant.
fn electrical(t: f32) -> Vec<(Metric, f32)> {
    let hot = if t < 240.0 {
        0.0
    } else {
        1.0 - (-(t - 240.0) / 120.0).exp()
    };
    vec![
        (Metric::ResidualMa, 120.0),
        (Metric::Temp1C, 38.0),
        (Metric::Temp2C, 39.0),
        (Metric::Temp3C, 38.0 + 60.0 * hot),
        (Metric::Temp4C, 37.0),
    ]
}

/// A pipe burst at t = 600 s: pressure falls from 0.45 MPa to 0.04 MPa.
fn water(t: f32) -> Vec<(Metric, f32)> {
    let p = if t < 600.0 {
        0.45
    } else {
        (0.45 - (t - 600.0) * 0.01).max(0.04)
    };
    vec![(Metric::PressureMpa, p)]
}

/// A lift near the moment limit while a gust of 16 m/s blows from t = 840 s for 60 s.
fn crane(t: f32) -> Vec<(Metric, f32)> {
    let wind = if (840.0..900.0).contains(&t) {
        16.0
    } else {
        6.0
    };
    let moment = if (780.0..960.0).contains(&t) {
        92.0
    } else {
        40.0
    };
    vec![
        (Metric::MomentPct, moment),
        (Metric::WindMs, wind),
        (Metric::TiltDeg, 0.1),
    ]
}

fn demo(minutes: u64) -> ExitCode {
    let (Ok(site), Ok(gateway)) = (Id::new("demo-site"), Id::new("gw-demo")) else {
        return ExitCode::FAILURE;
    };
    let start_ms: u64 = 1_732_300_000_000;
    let mut devices: Vec<DemoDevice> = [
        (
            "gas-0001",
            DeviceKind::Gas,
            gas as fn(f32) -> Vec<(Metric, f32)>,
        ),
        ("elec-0001", DeviceKind::Electrical, electrical),
        ("wp-0001", DeviceKind::WaterPressure, water),
        ("crane-0001", DeviceKind::Crane, crane),
    ]
    .into_iter()
    .map(|(id, kind, model)| DemoDevice {
        id,
        kind,
        model,
        rules: defaults::for_kind(kind),
        state: DeviceState::new(start_ms),
        seq: 0,
    })
    .collect();
    println!(
        "anquan-sim demo: site {site}, 4 devices reporting every 15 s, {minutes} simulated minutes"
    );
    let mut alarms = 0;
    for step in 0..=(minutes * 4) {
        let t_s = step * 15;
        let now = start_ms + t_s * 1000;
        for d in &mut devices {
            let readings: Readings = (d.model)(t_s as f32).into_iter().collect();
            let Ok(device) = Id::new(d.id) else { continue };
            for tr in d.rules.evaluate(&mut d.state, &readings, &[], now) {
                d.seq += 1;
                let event = AlarmEvent {
                    event_id: EventId::for_transition(&gateway, &site, &device, &tr.rule, d.seq),
                    site: site.clone(),
                    device: device.clone(),
                    kind: d.kind,
                    rule: tr.rule.clone(),
                    level: tr.level,
                    state: tr.state,
                    value: tr.value,
                    threshold: tr.threshold,
                    ts_ms: now,
                    gateway: gateway.clone(),
                };
                alarms += 1;
                let json = event
                    .to_vec()
                    .ok()
                    .and_then(|v| String::from_utf8(v.to_vec()).ok());
                println!(
                    "t={:>4}s  {:<10} {:<20} {:<10} {:<6} value {:>8.2} threshold {:>7.2}  {}",
                    t_s,
                    d.id,
                    tr.rule.as_str(),
                    tr.state.as_str(),
                    tr.level.as_str(),
                    tr.value,
                    tr.threshold,
                    json.unwrap_or_default()
                );
            }
        }
    }
    println!("anquan-sim demo: {alarms} alarm transitions");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { minutes } => demo(minutes),
    }
}
