//! The soak (RELIABILITY.md): a realistic site load on the real parts
//! (Mosquitto, the gateway binary, VictoriaMetrics, an alarm receiver) for
//! a long time, with the gateway's RSS, open file descriptors and queue
//! depths sampled at a fixed interval, so growth shows. One device in a
//! hundred is a leaking detector whose alarm raises and clears, so the
//! alarm path is soaked too. Beside the MQTT fleet the gateway polls
//! [`MODBUS_UNITS`] devices of the simulator's Modbus TCP server (all four
//! kinds, one link) every second, as a site with both kinds of devices.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anquan_protocol::DeviceKind;

use crate::faults::rss_kib;
use crate::gateway::{GatewayProcess, Setup, metric_value};
use crate::modbus::SimServer;
use crate::mqtt::{Publisher, gas_frame, now_ms, telemetry_topic};
use crate::receiver::Receiver;
use crate::services::{Mosquitto, VictoriaMetrics, eventually};

/// Modbus devices polled beside the MQTT fleet (one link, every second).
pub const MODBUS_UNITS: u8 = 24;

/// One sample of the gateway.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Seconds since the load started.
    pub t_s: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Points waiting for the TSDB.
    pub queue_points: u64,
    /// Alarms waiting for the monitor.
    pub queue_alarms: u64,
    /// Frames processed so far (MQTT and Modbus).
    pub processed: u64,
    /// Successful Modbus polls so far.
    pub modbus_ok: u64,
    /// Failed Modbus polls so far.
    pub modbus_failed: u64,
}

impl Sample {
    /// CSV header of [`Sample::csv`].
    pub const CSV_HEADER: &'static str =
        "t_s,rss_kib,fds,queue_points,queue_alarms,processed,modbus_ok,modbus_failed";

    /// One CSV line.
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{}",
            self.t_s,
            self.rss_kib,
            self.fds,
            self.queue_points,
            self.queue_alarms,
            self.processed,
            self.modbus_ok,
            self.modbus_failed
        )
    }
}

/// What a soak saw.
#[derive(Debug, Clone, Default)]
pub struct Soak {
    /// Frames published over MQTT (and acknowledged by the broker).
    pub sent: u64,
    /// Frames the gateway processed at the end, MQTT ones only (the
    /// Modbus frames subtracted).
    pub processed: u64,
    /// Successful Modbus polls (each one frame), when polling stopped.
    pub modbus_ok: u64,
    /// Alarm transitions delivered to the receiver.
    pub alarms: u64,
    /// The samples, in order.
    pub samples: Vec<Sample>,
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

fn sample(gw: &GatewayProcess, t_s: u64) -> Sample {
    let pid = gw.pid().unwrap_or(0);
    let m = gw.metrics();
    Sample {
        t_s,
        rss_kib: rss_kib(pid),
        fds: open_fds(pid),
        queue_points: metric_value(&m, r#"anquan_gateway_queue_depth{queue="points"}"#) as u64,
        queue_alarms: metric_value(&m, r#"anquan_gateway_queue_depth{queue="alarms_http"}"#) as u64,
        processed: metric_value(
            &m,
            r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#,
        ) as u64,
        modbus_ok: metric_value(
            &m,
            r#"anquan_gateway_modbus_polls_total{link="soak",result="ok"}"#,
        ) as u64,
        modbus_failed: metric_value(
            &m,
            r#"anquan_gateway_modbus_polls_total{link="soak",result="failed"}"#,
        ) as u64,
    }
}

/// Runs `devices` detectors reporting every `period` for `duration`,
/// sampling every `every`; `on_sample` sees each sample as it is taken.
pub fn run(
    devices: u32,
    period: Duration,
    duration: Duration,
    every: Duration,
    mut on_sample: impl FnMut(&Sample),
) -> Soak {
    let mq = Mosquitto::start();
    let vm = VictoriaMetrics::start();
    let rx = Receiver::start("soak");
    let kinds = [
        DeviceKind::Gas,
        DeviceKind::Electrical,
        DeviceKind::WaterPressure,
        DeviceKind::Crane,
    ];
    let units: Vec<(u8, DeviceKind)> = (1..=MODBUS_UNITS)
        .map(|u| (u, kinds[usize::from(u) % kinds.len()]))
        .collect();
    let modbus = SimServer::start(&units);
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        tsdb_url: Some(vm.url()),
        http: Some((rx.url(), "soak".into())),
        extra: anquan_sim::modbus::gateway_link_toml(
            "soak",
            "tcp",
            &format!("127.0.0.1:{}", modbus.port),
            "s1",
            "mb",
            &units,
            1000,
            "timeout_ms = 500\noffline_after = 3\nretries = 1",
        ),
        ..Setup::default()
    });

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (s, n) = (stop.clone(), sent.clone());
    let port = mq.port();
    // Devices report evenly spread over the period, like a real fleet.
    let load = std::thread::spawn(move || {
        let mut p = Publisher::connect_with_queue(port, "soak-devices", 100_000);
        let gap = period / devices.max(1);
        let started = Instant::now();
        let mut k = 0u64;
        while !s.load(Ordering::Acquire) {
            let d = (k % u64::from(devices)) as u32;
            let round = (k / u64::from(devices)) as u32 + 1;
            let dev = format!("gas-{d}");
            // Every hundredth device leaks in every fourth round.
            let lel = if d.is_multiple_of(100) && round.is_multiple_of(4) {
                30.0
            } else {
                2.0
            };
            p.publish(
                &telemetry_topic("s1", &dev),
                &gas_frame(&dev, round, now_ms(), lel),
            );
            n.fetch_add(1, Ordering::Release);
            k += 1;
            let due = started + gap * (k as u32);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        p
    });

    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < duration {
        std::thread::sleep(every);
        let s = sample(&gw, started.elapsed().as_secs());
        on_sample(&s);
        samples.push(s);
    }
    stop.store(true, Ordering::Release);
    if let Ok(p) = load.join() {
        p.wait_acked(Duration::from_secs(120));
    }
    let sent = sent.load(Ordering::Acquire);
    // Stop the Modbus frames: the devices answer too late from now on, so
    // polls fail (no frame) and the count of Modbus frames stays put.
    modbus.site.set_answer_delay(Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(3));
    let modbus_ok = sample(&gw, 0).modbus_ok;
    let processed = eventually(Duration::from_secs(120), "every frame processed", || {
        let p = gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#) as u64;
        (p >= sent + modbus_ok).then_some(p - modbus_ok)
    });
    let alarms = rx.events().len() as u64;
    Soak {
        sent,
        processed,
        modbus_ok,
        alarms,
        samples,
    }
}

/// The mean of `f` over the samples of the `third`-th third (0, 1, 2).
pub fn third_mean(samples: &[Sample], third: usize, f: impl Fn(&Sample) -> u64) -> f64 {
    let n = samples.len();
    let part = &samples[n * third / 3..n * (third + 1) / 3];
    if part.is_empty() {
        return 0.0;
    }
    part.iter().map(&f).sum::<u64>() as f64 / part.len() as f64
}
