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
mod scenario_cli;

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
        /// After the demo, keep the monitor's web UI (duty screen, map,
        /// acknowledgement links) up with demo accounts; prints the URL and
        /// the sign-in.
        #[arg(long)]
        web: bool,
        /// The web UI's address with `--web` (port 0: any free one).
        #[arg(long, default_value = "127.0.0.1:8088", requires = "web")]
        listen: String,
    },
    /// Serve virtual devices' Modbus register maps (our firmware's input
    /// registers), one unit id per device, over Modbus TCP (or RTU on a
    /// serial line, or as a 4G DTU that dials the gateway), with the demo's
    /// scenario driving the readings.
    Modbus {
        /// TCP address to listen on (`127.0.0.1:5020`).
        #[arg(long, default_value = "127.0.0.1:5020")]
        listen: String,
        /// Serve Modbus RTU on this serial device instead of TCP.
        #[arg(long, conflicts_with = "dtu")]
        rtu: Option<String>,
        /// Be a 4G DTU instead of listening: dial the gateway's
        /// `[modbus.dtu] listen` at HOST:PORT, send the registration
        /// (`--dtu-id`), then answer Modbus RTU requests (with CRC) on that
        /// connection; dial again with backoff when it drops.
        #[arg(long, value_name = "HOST:PORT", requires = "dtu_id")]
        dtu: Option<String>,
        /// The DTU's registration packet: text (`DTU0001`), or hex bytes
        /// with `--dtu-hex` (`0x01 0x02`, `01 02`, `0102`).
        #[arg(long, value_name = "ID", requires = "dtu")]
        dtu_id: Option<String>,
        /// `--dtu-id` and `--heartbeat` are hex bytes.
        #[arg(long, requires = "dtu")]
        dtu_hex: bool,
        /// Send the heartbeat packet every this many seconds with `--dtu`
        /// (0: never).
        #[arg(long, value_name = "N", default_value_t = 30, requires = "dtu")]
        heartbeat_s: u64,
        /// The heartbeat packet with `--dtu` (text, or hex bytes with
        /// `--dtu-hex`); default: the registration packet, as many DTUs do.
        #[arg(long, value_name = "PACKET", requires = "dtu")]
        heartbeat: Option<String>,
        /// Baud rate for `--rtu`.
        #[arg(long, default_value_t = 9600)]
        baud: u32,
        /// Devices: `KIND[:COUNT],...` (gas, electrical, water_pressure,
        /// crane); unit ids 1, 2, ... in that order.
        #[arg(long, default_value = "gas,electrical,water_pressure,crane")]
        devices: String,
        /// Scenario speed: simulated seconds per real second.
        #[arg(long, default_value_t = 1.0)]
        speed: f32,
        /// Site id in the printed gateway config.
        #[arg(long, default_value = "s1")]
        site: String,
    },
    /// Run a scenario file and print the alarms as they occur.
    Run(scenario_cli::RunArgs),
    /// Run scenario files and compare the alarms with their expected
    /// timelines; a readable diff, non-zero exit on any mismatch.
    Verify(scenario_cli::RunArgs),
    /// The false-alarm budget: run quiet days (scenarios without
    /// expectations) and report alarms per device per day; non-zero exit
    /// when a device is over budget.
    Budget(scenario_cli::BudgetArgs),
    /// Emulate many devices over a few reused connections and report the
    /// achieved frame rate.
    Load(anquan_sim::load::LoadArgs),
    /// Be a building's GB/T 26875.3 user information transmission device
    /// (用户信息传输装置): dial the gateway's `[gb26875]` listener and report
    /// scripted fire-panel events (`--step fire@1/2=3F east corridor
    /// --step reset`), each waiting for its confirm. Prints `confirmed
    /// serial=N step=STEP` per step and `done`; exits non-zero when a frame
    /// stays unconfirmed after its retries.
    FirePanel(anquan_sim::fire_panel::FirePanelArgs),
    /// Print a scenario's MQTT message stream (time, topic, payload), with
    /// no broker: the same seed prints the same bytes.
    Frames {
        /// Scenario file.
        scenario: std::path::PathBuf,
        /// Use this seed instead of the scenario's.
        #[arg(long)]
        seed: Option<u64>,
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

/// A pipe burst at t = 600 s: pressure falls from 0.45 MPa until the
/// network is drained (0.01 MPa).
fn water(t: f32) -> Vec<(Metric, f32)> {
    let p = if t < 600.0 {
        0.45
    } else {
        (0.45 - (t - 600.0) * 0.01).max(0.01)
    };
    vec![(Metric::PressureMpa, p)]
}

/// A lift near the moment limit (92 %, the pre-warning) while a gust of
/// 16 m/s blows from t = 840 s for 60 s: lifting in Beaufort 6 or more.
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
        Command::Demo {
            minutes,
            data_dir,
            web,
            listen,
        } => demo::run(minutes, data_dir, web.then_some(listen)),
        Command::Modbus {
            listen,
            rtu,
            dtu,
            dtu_id,
            dtu_hex,
            heartbeat_s,
            heartbeat,
            baud,
            devices,
            speed,
            site,
        } => {
            let dtu = match dtu
                .map(|gateway| {
                    anquan_sim::dtu::setup(
                        gateway,
                        dtu_id.as_deref().unwrap_or_default(),
                        dtu_hex,
                        heartbeat_s,
                        heartbeat.as_deref(),
                    )
                })
                .transpose()
            {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            modbus_server(&listen, rtu.as_deref(), dtu, baud, &devices, speed, &site)
        }
        Command::Run(args) => scenario_cli::run(&args),
        Command::Verify(args) => scenario_cli::verify(&args),
        Command::Budget(args) => scenario_cli::budget(&args),
        Command::Load(args) => anquan_sim::load::main(&args),
        Command::FirePanel(args) => anquan_sim::fire_panel::main(&args),
        Command::Frames { scenario, seed } => scenario_cli::frames(&scenario, seed),
    }
}

/// `anquan-sim modbus`: prints the gateway's `[[modbus.links]]` for the
/// site, then serves it (or, with `--dtu`, dials the gateway and serves it
/// on that connection) until Ctrl-C.
fn modbus_server(
    listen: &str,
    rtu: Option<&str>,
    dtu: Option<anquan_sim::dtu::DtuSetup>,
    baud: u32,
    devices: &str,
    speed: f32,
    site: &str,
) -> ExitCode {
    use anquan_sim::modbus;
    let units = match modbus::parse_devices(devices) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("--devices: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let site_state = modbus::Site::new(&units);
        let (transport, target, header) = match (&dtu, rtu) {
            (Some(d), _) => (
                "dtu",
                d.id_config.clone(),
                modbus::gateway_dtu_toml(&d.opts.gateway, d.heartbeat_config.as_deref()),
            ),
            (None, Some(p)) => ("rtu", p.to_string(), String::new()),
            (None, None) => ("tcp", listen.to_string(), String::new()),
        };
        let server = match (dtu, rtu) {
            (Some(d), _) => tokio::spawn({
                let s = site_state.clone();
                async move {
                    anquan_sim::dtu::run(s, d.opts).await;
                    Ok(())
                }
            }),
            (None, Some(path)) => {
                let s = site_state.clone();
                let path = path.to_string();
                tokio::spawn(async move { modbus::serve_rtu(&path, baud, s).await })
            }
            (None, None) => {
                let l = match tokio::net::TcpListener::bind(listen).await {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("--listen {listen}: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                tokio::spawn(modbus::serve_tcp(l, site_state.clone()))
            }
        };
        println!(
            "# anquan-sim: {} Modbus devices on {transport} {target}; gateway config:\n{header}{}",
            units.len(),
            modbus::gateway_link_toml("sim", transport, &target, site, "sim", &units, 15_000, "")
        );
        // The demo's scenario drives the readings.
        let start = std::time::Instant::now();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tick.tick() => {
                    let t = start.elapsed().as_secs_f32() * speed;
                    let now = anquan_gateway::clock::wall_ms();
                    for (unit, kind) in &units {
                        if let Some((_, _, model)) = DEVICES.iter().find(|d| d.1 == *kind) {
                            let _ = site_state.set(*unit, &model(t), now);
                        }
                    }
                    if server.is_finished() {
                        eprintln!("the Modbus server stopped");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        ExitCode::SUCCESS
    })
}
