//! The CI soak: 5 000 gas detectors reporting every 15 s (333 frames/s,
//! with leaks raising and clearing alarms) plus 24 Modbus devices polled
//! every second, for `ANQUAN_SOAK_S` seconds
//! (default 300), the gateway sampled every 10 s. Every frame must be
//! processed, and over the run the gateway must not grow: RSS, open file
//! descriptors and queue depths in the last third stay at the level of the
//! middle third (the first third is warm-up). The 1-hour run is the `soak`
//! binary (RELIABILITY.md).

use std::time::Duration;

use anquan_e2e::soak::{self, Sample, third_mean};

#[test]
fn five_thousand_devices_for_five_minutes_without_growth() {
    let secs = std::env::var("ANQUAN_SOAK_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    println!("{}", Sample::CSV_HEADER);
    let s = soak::run(
        5_000,
        Duration::from_secs(15),
        Duration::from_secs(secs),
        Duration::from_secs(10),
        |s| println!("{}", s.csv()),
    );
    assert!(s.samples.len() >= 6, "too short a soak: {secs} s");
    assert_eq!(s.processed, s.sent, "a frame was not processed");
    assert!(s.alarms > 0, "the leaks raised no alarm");
    // Modbus: polled all along, never failing while the devices answered.
    let last = s.samples.last().copied().unwrap_or_default();
    assert_eq!(last.modbus_failed, 0, "Modbus polls failed: {last:?}");
    let expected = u64::from(soak::MODBUS_UNITS) * last.t_s;
    assert!(
        last.modbus_ok * 10 >= expected * 8,
        "{} Modbus polls in {} s, expected about {expected}",
        last.modbus_ok,
        last.t_s
    );
    let rss_mid = third_mean(&s.samples, 1, |x| x.rss_kib);
    let rss_end = third_mean(&s.samples, 2, |x| x.rss_kib);
    assert!(
        rss_end <= rss_mid * 1.10 + 4096.0,
        "RSS grew: {rss_mid:.0} → {rss_end:.0} KiB"
    );
    let fds_mid = third_mean(&s.samples, 1, |x| x.fds);
    let fds_end = third_mean(&s.samples, 2, |x| x.fds);
    assert!(
        fds_end <= fds_mid + 4.0,
        "file descriptors grew: {fds_mid:.1} → {fds_end:.1}"
    );
    for (name, f) in [
        (
            "points",
            (|x: &Sample| x.queue_points) as fn(&Sample) -> u64,
        ),
        ("alarms", |x: &Sample| x.queue_alarms),
    ] {
        let mid = third_mean(&s.samples, 1, f);
        let end = third_mean(&s.samples, 2, f);
        // A few seconds of frames may be waiting at any sample.
        assert!(
            end <= mid + 1_000.0,
            "{name} queue grew: {mid:.0} → {end:.0}"
        );
    }
}
