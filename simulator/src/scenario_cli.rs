//! `anquan-sim run` and `anquan-sim verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anquan_sim::run::{RunOptions, run_blocking};
use anquan_sim::scenario::Scenario;
use anquan_sim::verify::{compare, render};

/// Arguments of `run` and `verify`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Scenario files (TOML), or directories of them.
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Simulated seconds per real second (in process and with
    /// --drive-clock: pacing only, the result is the same; external broker
    /// without it: default 1, real time).
    #[arg(long, conflicts_with = "as_fast_as_possible")]
    speed: Option<f64>,
    /// In process: run as fast as the gateway commits (the default).
    #[arg(long)]
    as_fast_as_possible: bool,
    /// Publish to this external broker (host:port) for a gateway running
    /// separately, and collect the alarms it publishes on `alarms/#`.
    #[arg(long)]
    broker: Option<String>,
    /// With --broker: drive the gateway's clock along the scenario's (the
    /// gateway runs with `[lab] clock = "driven"`, on a broker of its own,
    /// restarted for each run). Every scenario then verifies as fast as
    /// possible, offline and time-of-day rules included.
    #[arg(long, requires = "broker")]
    drive_clock: bool,
    /// Use this seed instead of the scenario's (does the expectation hold
    /// for other noise?).
    #[arg(long)]
    seed: Option<u64>,
    /// External broker: seconds to wait for late alarms after the end.
    #[arg(long, default_value_t = 3.0)]
    linger_s: f64,
}

/// Arguments of `budget`.
#[derive(clap::Args, Debug)]
pub struct BudgetArgs {
    /// Budget scenario files (TOML, no `[[expect]]`), or directories of
    /// them (`simulator/budget/`).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Alarms per device per simulated day allowed.
    #[arg(long, default_value_t = 0.0)]
    max_per_device_day: f64,
    /// Judge through the in-process gateway (embedded broker, durable
    /// buffer) instead of the rule engine alone: the same rules, slower.
    #[arg(long)]
    via_gateway: bool,
    /// Use this seed instead of the scenario's.
    #[arg(long)]
    seed: Option<u64>,
}

fn files(args: &RunArgs) -> Result<Vec<PathBuf>, String> {
    let f = expand(&args.scenarios)?;
    if args.drive_clock && f.len() > 1 {
        return Err(format!(
            "--drive-clock runs one scenario per gateway start (a driven clock never goes back, and the gateway counts every message it hears); got {}",
            f.len()
        ));
    }
    Ok(f)
}

fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Warns when an external, accelerated run cannot judge clock-based rules.
fn warn_clock(args: &RunArgs, s: &Scenario) {
    let speed = args.speed.unwrap_or(1.0);
    if args.broker.is_some() && !args.drive_clock && (speed - 1.0).abs() > f64::EPSILON {
        let rules = s.clock_rules();
        if !rules.is_empty() {
            eprintln!(
                "anquan-sim: warning: {}: {} run on the gateway's own clock, which --speed {speed} does not accelerate; \
                 verify this scenario in process, at --speed 1, or with --drive-clock (a gateway with [lab] clock = \"driven\")",
                s.name(),
                rules.join(", ")
            );
        }
    }
}

fn options(args: &RunArgs, print: bool) -> RunOptions {
    RunOptions {
        speed: if args.as_fast_as_possible {
            None
        } else {
            args.speed
        },
        broker: args.broker.clone(),
        print,
        linger_s: args.linger_s,
        drive_clock: args.drive_clock,
    }
}

/// `anquan-sim run`.
pub fn run(args: &RunArgs) -> ExitCode {
    let files = match files(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("anquan-sim run: {e}");
            return ExitCode::FAILURE;
        }
    };
    for f in files {
        let mut s = match Scenario::load(&f) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("anquan-sim run: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(seed) = args.seed {
            s.spec.seed = seed;
        }
        warn_clock(args, &s);
        println!(
            "anquan-sim run: {} — {} device(s), {} s simulated, seed {}, {}",
            s.name(),
            s.spec.devices.len(),
            s.spec.duration_s,
            s.spec.seed,
            args.broker.as_deref().map_or(
                "in process (embedded broker, gateway on a simulated clock)".to_string(),
                |b| if args.drive_clock {
                    format!("broker {b}, driving the gateway's clock")
                } else {
                    format!("broker {b}")
                }
            )
        );
        match run_blocking(&s, &options(args, true)) {
            Ok(r) => println!(
                "anquan-sim run: {}: {} alarm transitions, {} messages, {} s simulated in {:.1} s",
                s.name(),
                r.alarms.len(),
                r.messages,
                r.simulated_s,
                r.wall_s
            ),
            Err(e) => {
                eprintln!("anquan-sim run: {}: {e}", s.name());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// `anquan-sim verify`.
pub fn verify(args: &RunArgs) -> ExitCode {
    let files = match files(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("anquan-sim verify: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = Vec::new();
    for f in &files {
        let mut s = match Scenario::load(f) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("anquan-sim verify: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(seed) = args.seed {
            s.spec.seed = seed;
        }
        warn_clock(args, &s);
        println!("verify {} ({})", s.name(), f.display());
        match run_blocking(&s, &options(args, false)) {
            Ok(r) => {
                let v = compare(&s.spec.expect, &r.alarms);
                print!("{}", render(s.name(), &v));
                if !v.passed() {
                    failed.push(s.name().to_string());
                }
            }
            Err(e) => {
                println!("{}: ERROR {e}", s.name());
                failed.push(s.name().to_string());
            }
        }
    }
    if failed.is_empty() {
        println!("anquan-sim verify: {} scenario(s) passed", files.len());
        ExitCode::SUCCESS
    } else {
        println!(
            "anquan-sim verify: {} of {} scenario(s) FAILED: {}",
            failed.len(),
            files.len(),
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}

/// `anquan-sim budget`.
pub fn budget(args: &BudgetArgs) -> ExitCode {
    let files = match expand(&args.scenarios) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("anquan-sim budget: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut over = Vec::new();
    for f in &files {
        let mut s = match Scenario::load(f) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("anquan-sim budget: {e}");
                return ExitCode::FAILURE;
            }
        };
        if !s.spec.expect.is_empty() {
            eprintln!(
                "anquan-sim budget: {}: a budget day expects nothing; verify it instead",
                f.display()
            );
            return ExitCode::FAILURE;
        }
        if let Some(seed) = args.seed {
            s.spec.seed = seed;
        }
        match anquan_sim::budget::run(&s, args.via_gateway) {
            Ok(r) => {
                print!(
                    "{}",
                    anquan_sim::budget::render(&r, args.max_per_device_day)
                );
                if r.worst_per_day() > args.max_per_device_day {
                    over.push(r.name);
                }
            }
            Err(e) => {
                println!("{}: ERROR {e}", s.name());
                over.push(s.name().to_string());
            }
        }
    }
    if over.is_empty() {
        println!(
            "anquan-sim budget: {} day(s) within {} alarm(s) per device per day",
            files.len(),
            args.max_per_device_day
        );
        ExitCode::SUCCESS
    } else {
        println!("anquan-sim budget: OVER BUDGET: {}", over.join(", "));
        ExitCode::FAILURE
    }
}

/// `anquan-sim frames`.
pub fn frames(path: &std::path::Path, seed: Option<u64>) -> ExitCode {
    use std::io::Write as _;
    let mut s = match Scenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("anquan-sim frames: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(seed) = seed {
        s.spec.seed = seed;
    }
    let stream = match anquan_sim::run::stream(&s) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("anquan-sim frames: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for o in stream {
        let line = format!(
            "{:>9.3} {}{} {}\n",
            o.t_ms as f64 / 1000.0,
            o.topic,
            if o.retain { " (retained)" } else { "" },
            String::from_utf8_lossy(&o.payload)
        );
        if out.write_all(line.as_bytes()).is_err() {
            return ExitCode::FAILURE;
        }
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
