//! Modbus polling bench (issue 6): N simulated Modbus devices (the
//! simulator's server, our firmware register maps) on M TCP links, polled
//! by the gateway binary (a child process) every `--interval-ms`.
//!
//! Prints per mode: the poll cycle time per link as the gateway measures it
//! (`anquan_gateway_modbus_cycle_seconds`: first to last device of a round
//! on one link), the link-bound minimum (the same reads sent back to back
//! by bare tokio-modbus clients, one per link on one connection each, all
//! links at once, in a process of its own; best of 3), their
//! ratio, requests/s, failed polls and the gateway's CPU.
//!
//! Run: `cargo run --release -p anquan-e2e --bin modbus-bench -- --help`

use std::time::{Duration, Instant};

use anquan_e2e::gateway::{GatewayProcess, Setup, metric_value};
use anquan_e2e::modbus::SimServer;
use anquan_e2e::services::Mosquitto;
use anquan_protocol::DeviceKind;
use anquan_sim::modbus::gateway_link_toml;
use tokio_modbus::client::{Client, tcp};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{Request, Slave};

#[derive(Debug, Clone)]
struct Args {
    devices: usize,
    links: usize,
    interval_ms: u64,
    cycles: u32,
    delay_us: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        devices: 1_000,
        links: 10,
        interval_ms: 1_000,
        cycles: 10,
        delay_us: 0,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        if k == "--help" || k == "-h" {
            println!(
                "modbus-bench [--devices N] [--links M] [--interval-ms MS] [--cycles C] [--delay-us US]\n\
                 defaults: 1000 devices on 10 links, polled every 1000 ms (compressed mode), 10 cycles, \
                 devices answer at once (--delay-us: each answer delayed, like a device's turnaround); \
                 the issue's real mode is --interval-ms 15000"
            );
            std::process::exit(0);
        }
        let v = it
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| {
                eprintln!("{k}: needs a number");
                std::process::exit(2)
            });
        match k.as_str() {
            "--devices" => a.devices = v as usize,
            "--links" => a.links = v as usize,
            "--interval-ms" => a.interval_ms = v,
            "--cycles" => a.cycles = v as u32,
            "--delay-us" => a.delay_us = v,
            _ => {
                eprintln!("unknown argument {k}");
                std::process::exit(2)
            }
        }
    }
    a
}

fn proc_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// The reads of one round on one link, back to back on one connection:
/// the link-bound minimum.
async fn link_bound_minimum(port: u16, units: &[(u8, DeviceKind)]) -> Duration {
    let Ok(mut ctx) = tcp::connect(([127, 0, 0, 1], port).into()).await else {
        return Duration::ZERO;
    };
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        for (unit, kind) in units {
            ctx.set_slave(Slave(*unit));
            // The gateway reads a firmware map's whole input image.
            let n = 9 + 2 * anquan_firmware_channels(*kind);
            let _ = ctx.call(Request::ReadInputRegisters(0, n)).await;
        }
        best = best.min(t.elapsed());
    }
    best
}

/// Channels of a kind in our map.
fn anquan_firmware_channels(kind: DeviceKind) -> u16 {
    match kind {
        DeviceKind::Gas => 3,
        DeviceKind::Electrical => 6,
        DeviceKind::WaterPressure => 2,
        DeviceKind::Crane => 7,
        DeviceKind::FirePanel => 4,
    }
}

/// `modbus-bench --probe PORT:KINDS ...`: bare clients, one per link, all
/// links at once (as the gateway polls them), in a process of its own like
/// the gateway; prints each link's best round in microseconds.
fn probe(argv: &[String]) {
    let links: Vec<(u16, Vec<(u8, DeviceKind)>)> = argv
        .iter()
        .filter_map(|a| {
            let (port, kinds) = a.split_once(':')?;
            let units = kinds
                .split(',')
                .enumerate()
                .filter_map(|(i, k)| Some(((i + 1) as u8, DeviceKind::parse(k)?)))
                .collect();
            Some((port.parse().ok()?, units))
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let out = rt.block_on(async move {
        let tasks: Vec<_> = links
            .into_iter()
            .map(|(port, units)| {
                tokio::spawn(async move { link_bound_minimum(port, &units).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.map(|d| d.as_micros()).unwrap_or(0).to_string());
        }
        out
    });
    println!("{}", out.join(" "));
}

/// Runs the probe in a child process; each link's minimum round.
fn probe_in_child(links: &[(u16, Vec<(u8, DeviceKind)>)]) -> Vec<Duration> {
    let args: Vec<String> = links
        .iter()
        .map(|(port, units)| {
            let kinds: Vec<&str> = units.iter().map(|(_, k)| k.as_str()).collect();
            format!("{port}:{}", kinds.join(","))
        })
        .collect();
    let out = std::env::current_exe()
        .and_then(|exe| {
            std::process::Command::new(exe)
                .arg("--probe")
                .args(args)
                .output()
        })
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    out.split_whitespace()
        .map(|v| Duration::from_micros(v.parse().unwrap_or(0)))
        .collect()
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--probe") {
        probe(&argv[1..]);
        return;
    }
    let a = parse_args();
    let per_link = a.devices.div_ceil(a.links);
    assert!(per_link <= 247, "at most 247 devices per link");
    // The four sensor kinds (the mix of earlier runs; a fire panel's map
    // is four registers, lighter than any of them).
    let kinds = [
        DeviceKind::Gas,
        DeviceKind::Electrical,
        DeviceKind::WaterPressure,
        DeviceKind::Crane,
    ];
    let mut servers = Vec::new();
    let mut extra = String::new();
    let mut left = a.devices;
    for l in 0..a.links {
        let n = per_link.min(left);
        left -= n;
        let units: Vec<(u8, DeviceKind)> = (0..n)
            .map(|i| ((i + 1) as u8, kinds[(l * per_link + i) % kinds.len()]))
            .collect();
        let s = SimServer::start(&units);
        s.site.set_answer_delay(Duration::from_micros(a.delay_us));
        extra.push_str(&gateway_link_toml(
            &format!("link{l}"),
            "tcp",
            &format!("127.0.0.1:{}", s.port),
            "s1",
            &format!("l{l}"),
            &units,
            a.interval_ms,
            "timeout_ms = 1000\nretries = 1",
        ));
        servers.push((s, units));
    }
    let links: Vec<(u16, Vec<(u8, DeviceKind)>)> =
        servers.iter().map(|(s, u)| (s.port, u.clone())).collect();
    let minimum = probe_in_child(&links);
    let min_max = minimum.iter().max().copied().unwrap_or_default();
    let min_mean =
        minimum.iter().map(Duration::as_secs_f64).sum::<f64>() / minimum.len().max(1) as f64;

    let mq = Mosquitto::start();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        extra,
        sink_extra: "flush_interval_ms = 1000".into(),
        ..Setup::default()
    });
    let pid = gw.pid().unwrap_or(0);
    // Let every link finish a first round (connects), then measure.
    std::thread::sleep(Duration::from_millis(a.interval_ms * 2));
    let page = gw.metrics();
    let req0: f64 = (0..a.links)
        .map(|l| {
            metric_value(
                &page,
                &format!("anquan_gateway_modbus_requests_total{{link=\"link{l}\"}}"),
            )
        })
        .sum();
    let ticks0 = proc_ticks(pid);
    let t0 = Instant::now();
    let mut cycles: Vec<f64> = Vec::new();
    for _ in 0..a.cycles {
        std::thread::sleep(Duration::from_millis(a.interval_ms));
        let page = gw.metrics();
        for l in 0..a.links {
            cycles.push(metric_value(
                &page,
                &format!("anquan_gateway_modbus_cycle_seconds{{link=\"link{l}\"}}"),
            ));
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let page = gw.metrics();
    let sum = |name: &str| -> f64 {
        (0..a.links)
            .map(|l| metric_value(&page, &format!("{name}{{link=\"link{l}\"}}")))
            .sum()
    };
    let req1 = sum("anquan_gateway_modbus_requests_total");
    let failed: f64 = (0..a.links)
        .map(|l| {
            metric_value(
                &page,
                &format!("anquan_gateway_modbus_polls_total{{link=\"link{l}\",result=\"failed\"}}"),
            )
        })
        .sum();
    let processed = metric_value(
        &page,
        r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#,
    );
    let cpu = (proc_ticks(pid) - ticks0) as f64 / 100.0 / wall;
    cycles.sort_by(f64::total_cmp);
    let pct = |p: f64| cycles[((cycles.len() - 1) as f64 * p).round() as usize];
    println!(
        "modbus-bench: {} devices on {} TCP links ({} per link), poll interval {} ms, answer delay {} us, {} samples",
        a.devices,
        a.links,
        per_link,
        a.interval_ms,
        a.delay_us,
        cycles.len()
    );
    println!(
        "link-bound minimum (bare clients, one per link, all links at once, back to back): mean {:.1} ms, max {:.1} ms per link round",
        min_mean * 1e3,
        min_max.as_secs_f64() * 1e3
    );
    println!(
        "gateway cycle per link: median {:.1} ms, p90 {:.1} ms, max {:.1} ms; median / mean minimum = {:.2}",
        pct(0.5) * 1e3,
        pct(0.9) * 1e3,
        pct(1.0) * 1e3,
        pct(0.5) / min_mean
    );
    println!(
        "requests/s {:.0} (expected {:.0}), failed polls {failed}, telemetry frames processed {processed}, gateway CPU {:.0} % of one core",
        (req1 - req0) / wall,
        a.devices as f64 * 1000.0 / a.interval_ms as f64,
        cpu * 100.0
    );
}
