//! `anquan-sim`: the anquan-iot lab.
//!
//! `anquan-sim demo` runs the system all in one process: the gateway's
//! embedded MQTT broker, the gateway itself (on an accelerated, simulated
//! clock) with its local sink, and a built-in site (a gas detector, an
//! electrical-fire monitor, a fire-water pressure sensor and a tower crane)
//! publishing real MQTT frames of the wire contract. It prints every alarm
//! the gateway raises, as it happens.

mod demo;
mod demo_monitor;

use std::process::ExitCode;

use anquan_protocol::{DeviceKind, Metric};
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
        /// Keep the gateway's data (durable buffer, points.lp) here instead
        /// of a temporary directory.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
    },
}

/// A reading model: `t` = seconds since start.
pub type Model = fn(f32) -> Vec<(Metric, f32)>;

/// The demo site's devices: id, kind, reading model.
pub const DEVICES: [(&str, DeviceKind, Model); 4] = [
    ("gas-0001", DeviceKind::Gas, gas),
    ("elec-0001", DeviceKind::Electrical, electrical),
    ("wp-0001", DeviceKind::WaterPressure, water),
    ("crane-0001", DeviceKind::Crane, crane),
];

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { minutes, data_dir } => demo::run(minutes, data_dir),
    }
}
