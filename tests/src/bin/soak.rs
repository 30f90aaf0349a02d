//! The documented soak of RELIABILITY.md: `soak [DEVICES] [PERIOD_S]
//! [MINUTES]` (default 5 000 devices every 15 s for 60 minutes), sampling
//! the gateway every 10 s; prints the samples as CSV, then a summary of
//! the first, middle and last thirds.
//!
//! `cargo run --release -p anquan-e2e --bin soak -- 5000 15 60`

use std::time::Duration;

use anquan_e2e::soak::{self, Sample, third_mean};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let devices = args.first().copied().unwrap_or(5_000) as u32;
    let period = Duration::from_secs(args.get(1).copied().unwrap_or(15));
    let minutes = args.get(2).copied().unwrap_or(60);
    println!("{}", Sample::CSV_HEADER);
    let s = soak::run(
        devices,
        period,
        Duration::from_secs(minutes * 60),
        Duration::from_secs(10),
        |s| println!("{}", s.csv()),
    );
    println!(
        "\n{devices} devices every {} s for {minutes} min: {} frames sent, {} processed, {} alarm transitions delivered; {} Modbus devices polled every second: {} polls ok, {} failed",
        period.as_secs(),
        s.sent,
        s.processed,
        s.alarms,
        soak::MODBUS_UNITS,
        s.modbus_ok,
        s.samples.last().map_or(0, |x| x.modbus_failed)
    );
    println!("| third | RSS MiB | open FDs | points queue | alarms queue |");
    println!("|---|---:|---:|---:|---:|");
    for (i, name) in ["first", "middle", "last"].iter().enumerate() {
        println!(
            "| {name} | {:.1} | {:.1} | {:.0} | {:.0} |",
            third_mean(&s.samples, i, |x| x.rss_kib) / 1024.0,
            third_mean(&s.samples, i, |x| x.fds),
            third_mean(&s.samples, i, |x| x.queue_points),
            third_mean(&s.samples, i, |x| x.queue_alarms),
        );
    }
}
