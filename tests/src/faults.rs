//! The fault matrix of RELIABILITY.md: under a steady load of simulated gas
//! detectors, inject one fault into one part of a real deployment
//! (Mosquitto, the gateway binary, VictoriaMetrics, an alarm receiver
//! standing in for the monitor), heal it, and count what arrived where.
//!
//! Every frame of the load is exactly one alarm transition (the readings
//! alternate between 60 %LEL, red, and 1 %LEL, cleared), so the alarms
//! expected are known exactly: frame `n` of a device is transition `n`,
//! event id `.../gas.lel/n`. Readings are counted by their `seq` in the
//! TSDB. Nothing in here reads a clock to judge: times are only reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anquan_protocol::AlarmState;

use crate::gateway::{GatewayProcess, Setup, metric_value};
use crate::mqtt::{Publisher, gas_frame, now_ms, telemetry_topic};
use crate::proxy::{Mode, Proxy};
use crate::receiver::Receiver;
use crate::services::{Mosquitto, VictoriaMetrics};

/// Simulated detectors.
pub const DEVICES: usize = 10;
/// Each reports every 100 ms: 100 frames/s and 100 alarm transitions/s.
pub const PERIOD: Duration = Duration::from_millis(100);
/// How long the end waits for stragglers before counting them lost.
const SETTLE: Duration = Duration::from_secs(180);
/// The gateway's disk in the disk-full fault.
const DISK_BYTES: u64 = 32 << 20;

/// One fault of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Mosquitto stopped and started again at once.
    BrokerRestart,
    /// Mosquitto down for the outage.
    BrokerOutage,
    /// VictoriaMetrics stopped for the outage.
    TsdbDown,
    /// The TSDB answers 500 for the outage.
    Tsdb500,
    /// The TSDB never answers (timeouts) for the outage.
    TsdbTimeout,
    /// The monitor unreachable for the outage.
    MonitorDown,
    /// The monitor answers 500 for the outage.
    Monitor500,
    /// The monitor answers after 1 s for the outage.
    MonitorSlow,
    /// The gateway SIGKILLed 5 times at random moments, restarted each time.
    GatewayKill5,
    /// The TSDB down long enough for the disk buffer to hit a 64 KiB cap.
    BufferCap,
    /// The TSDB takes requests at 10 % of the ingest byte rate.
    SlowTsdb,
    /// The TSDB down and the gateway's own disk full for the outage (the
    /// buffer must grow exactly when it cannot), then space freed.
    DiskFull,
}

impl Fault {
    /// Every fault, in report order.
    pub const ALL: [Fault; 12] = [
        Fault::BrokerRestart,
        Fault::BrokerOutage,
        Fault::TsdbDown,
        Fault::Tsdb500,
        Fault::TsdbTimeout,
        Fault::MonitorDown,
        Fault::Monitor500,
        Fault::MonitorSlow,
        Fault::GatewayKill5,
        Fault::BufferCap,
        Fault::SlowTsdb,
        Fault::DiskFull,
    ];

    /// Its row label.
    pub fn label(self) -> &'static str {
        match self {
            Fault::BrokerRestart => "broker stopped and restarted",
            Fault::BrokerOutage => "broker unreachable",
            Fault::TsdbDown => "TSDB down",
            Fault::Tsdb500 => "TSDB answers 500",
            Fault::TsdbTimeout => "TSDB times out",
            Fault::MonitorDown => "monitor down",
            Fault::Monitor500 => "monitor answers 500",
            Fault::MonitorSlow => "monitor answers after 1 s",
            Fault::GatewayKill5 => "gateway SIGKILL ×5, restarted",
            Fault::BufferCap => "disk buffer at its cap (64 KiB)",
            Fault::SlowTsdb => "slow TSDB (10 % of ingest)",
            Fault::DiskFull => "gateway disk full, TSDB down",
        }
    }

    /// Whether readings may be lost by design (the buffer cap drops the
    /// oldest, counted and alarmed).
    pub fn drops_by_design(self) -> bool {
        self == Fault::BufferCap
    }
}

/// What one run counted.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Readings published (and acknowledged by the broker).
    pub readings_sent: u64,
    /// Distinct readings found in the TSDB.
    pub readings_stored: u64,
    /// Samples in the TSDB beyond one per reading (at-least-once writes).
    pub tsdb_duplicates: u64,
    /// Alarm transitions the load implies.
    pub alarms_sent: u64,
    /// Distinct transitions the receiver accepted.
    pub alarms_delivered: u64,
    /// Deliveries of an event id already accepted (absorbed by idempotency).
    pub redeliveries: u64,
    /// Accepted transitions that did not happen: a number beyond the frames
    /// sent, or a state that does not match the frame (a re-raise after a
    /// restart under a new id would show here). What a person would see
    /// twice.
    pub visible_duplicates: u64,
    /// Accepted events of another rule than gas.lel (e.g. a false offline).
    pub unexpected_alarms: u64,
    /// Points the gateway counted as dropped at the buffer cap.
    pub dropped_counted: u64,
    /// The buffer-overflow flag was raised.
    pub overflow_raised: bool,
    /// Failed buffer writes the gateway counted (disk full).
    pub buffer_errors: u64,
    /// The gateway answered `/metrics` at every probe during the fault.
    pub stayed_up: bool,
    /// From healing until everything published before it had arrived.
    pub recovery: Duration,
    /// Gateway RSS at the start and its maximum during the run, KiB.
    pub rss_start_kib: u64,
    /// See `rss_start_kib`.
    pub rss_max_kib: u64,
}

impl Outcome {
    /// Readings that never arrived.
    pub fn readings_lost(&self) -> u64 {
        self.readings_sent.saturating_sub(self.readings_stored)
    }

    /// Alarms that never arrived.
    pub fn alarms_lost(&self) -> u64 {
        self.alarms_sent.saturating_sub(self.alarms_delivered)
    }

    /// The header of [`Outcome::row`].
    pub fn header() -> String {
        "| fault | readings sent | stored | lost | dropped (counted) | TSDB dup. samples | alarms sent | delivered | lost | redeliveries (absorbed) | visible duplicates | unexpected alarms | recovery | gateway RSS start → max |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            .into()
    }

    /// A markdown table row.
    pub fn row(&self, fault: Fault) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} → {} MiB |",
            fault.label(),
            self.readings_sent,
            self.readings_stored,
            self.readings_lost(),
            if self.dropped_counted > 0 || self.overflow_raised {
                format!(
                    "{}{}",
                    self.dropped_counted,
                    if self.overflow_raised {
                        ", alarmed"
                    } else {
                        ""
                    }
                )
            } else {
                "0".into()
            },
            self.tsdb_duplicates,
            self.alarms_sent,
            self.alarms_delivered,
            self.alarms_lost(),
            self.redeliveries,
            self.visible_duplicates,
            self.unexpected_alarms,
            self.recovery.as_secs_f64(),
            self.rss_start_kib / 1024,
            self.rss_max_kib / 1024,
        )
    }
}

/// The simulated detectors: one publisher thread, a frame per device per
/// period, until stopped. Frames wait in the client while the broker is
/// away (a device's store-and-forward).
struct Load {
    stop: Arc<AtomicBool>,
    /// Frames published per device so far (all devices move together).
    rounds: Arc<AtomicU32>,
    thread: Option<std::thread::JoinHandle<Publisher>>,
}

impl Load {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU32::new(0));
        let (s, r) = (stop.clone(), rounds.clone());
        let thread = std::thread::spawn(move || {
            let mut p = Publisher::connect_with_queue(port, "fault-load", 100_000);
            let mut next = Instant::now();
            let mut seq = 0u32;
            while !s.load(Ordering::Acquire) {
                seq += 1;
                let lel = if seq % 2 == 1 { 60.0 } else { 1.0 };
                for d in 0..DEVICES {
                    let dev = format!("gas-{d}");
                    p.publish(
                        &telemetry_topic("s1", &dev),
                        &gas_frame(&dev, seq, now_ms(), lel),
                    );
                }
                r.store(seq, Ordering::Release);
                next += PERIOD;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            p
        });
        Self {
            stop,
            rounds,
            thread: Some(thread),
        }
    }

    fn rounds(&self) -> u32 {
        self.rounds.load(Ordering::Acquire)
    }

    /// Stops publishing and waits until the broker holds every frame.
    fn finish(mut self) -> u32 {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take()
            && let Ok(p) = t.join()
        {
            p.wait_acked(SETTLE);
        }
        self.rounds()
    }
}

/// The parts of one run.
struct Rig {
    mq: Mosquitto,
    vm: VictoriaMetrics,
    tsdb: Proxy,
    rx: Receiver,
    monitor: Proxy,
    gw: GatewayProcess,
    rss_max_kib: u64,
}

impl Rig {
    fn start(fault: Fault) -> Self {
        let mq = Mosquitto::start_persistent();
        let vm = VictoriaMetrics::start();
        let tsdb = Proxy::start(vm.port());
        let rx = Receiver::start("fault-token");
        let monitor = Proxy::start(rx.port());
        let extra = match fault {
            Fault::BufferCap => "[buffer]\npoints_max_bytes = 65536\n".to_string(),
            // A small page cache, so the buffer must write to grow.
            Fault::DiskFull => "[buffer]\ncache_bytes = 1048576\n".to_string(),
            _ => String::new(),
        };
        let gw = GatewayProcess::start(&Setup {
            mqtt_port: mq.port(),
            tsdb_url: Some(tsdb.url()),
            http: Some((monitor.url(), "fault-token".into())),
            extra,
            data_tmpfs_bytes: (fault == Fault::DiskFull).then_some(DISK_BYTES),
            ..Setup::default()
        });
        Self {
            mq,
            vm,
            tsdb,
            rx,
            monitor,
            gw,
            rss_max_kib: 0,
        }
    }

    fn rss_kib(&mut self) -> u64 {
        let rss = self.gw.pid().map_or(0, rss_kib);
        self.rss_max_kib = self.rss_max_kib.max(rss);
        rss
    }

    /// Sleeps `d`, sampling the gateway's RSS.
    fn hold(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.rss_kib();
            std::thread::sleep(Duration::from_millis(200).min(d));
        }
    }

    /// Sleeps `d`, asking the gateway for its metrics every second;
    /// whether it answered every time.
    fn hold_probing(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut answered = true;
        while Instant::now() < until {
            self.rss_kib();
            answered &= !self.gw.metrics().is_empty();
            std::thread::sleep(Duration::from_secs(1).min(d));
        }
        answered
    }

    /// Distinct transitions `n` per device accepted so far, and the count
    /// of accepted events of other rules.
    /// and the accepted events of other rules, and the gas.lel events whose
    /// state does not match their frame (odd frames raise, even clear).
    fn delivered(&self) -> (BTreeMap<String, BTreeSet<u64>>, u64, u64) {
        let mut per_device: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        let (mut other, mut wrong) = (0u64, 0u64);
        for e in self.rx.events() {
            if e.rule.as_str() != "gas.lel" {
                other += 1;
                continue;
            }
            let n: Option<u64> = e
                .event_id
                .as_str()
                .rsplit('/')
                .next()
                .and_then(|n| n.parse().ok());
            let Some(n) = n else {
                wrong += 1;
                continue;
            };
            let want = if n % 2 == 1 {
                AlarmState::Raised
            } else {
                AlarmState::Cleared
            };
            if e.state != want {
                wrong += 1;
            }
            per_device
                .entry(e.device.to_string())
                .or_default()
                .insert(n);
        }
        (per_device, other, wrong)
    }

    /// Whether every reading and transition up to `round` of every device
    /// arrived. Readings are checked by each device's latest `seq` (the
    /// buffer drains in order), on every device: one round's points can be
    /// split over two sink writes, so one device's newest point says
    /// nothing of the others'.
    fn arrived_up_to(&self, round: u32) -> bool {
        let (per_device, _, _) = self.delivered();
        let alarms = (0..DEVICES).all(|d| {
            per_device
                .get(&format!("gas-{d}"))
                .is_some_and(|ns| (1..=u64::from(round)).all(|n| ns.contains(&n)))
        });
        alarms
            && (0..DEVICES).all(|d| {
                self.vm
                    .export(&format!(r#"gas_seq{{device="gas-{d}"}}"#))
                    .iter()
                    .any(|(_, v)| *v as u64 >= u64::from(round))
            })
    }
}

/// The resident set size of process `pid`, KiB (0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A small deterministic generator for the kill moments (xorshift).
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Runs `fault` for `outage` under the load and counts.
pub fn run(fault: Fault, outage: Duration) -> Outcome {
    let mut rig = Rig::start(fault);
    let load = Load::start(rig.mq.port());
    rig.hold(Duration::from_secs(2));
    let rss_start_kib = rig.rss_kib();
    let mut stayed_up = true;

    match fault {
        Fault::BrokerRestart => {
            rig.mq.stop();
            rig.mq.restart();
        }
        Fault::BrokerOutage => {
            rig.mq.stop();
            rig.hold(outage);
            rig.mq.restart();
        }
        Fault::TsdbDown | Fault::BufferCap => {
            rig.vm.stop();
            rig.hold(outage);
            rig.vm.restart();
        }
        Fault::Tsdb500 | Fault::TsdbTimeout => {
            rig.tsdb.set_mode(if fault == Fault::Tsdb500 {
                Mode::Error500
            } else {
                Mode::Hang
            });
            rig.hold(outage);
            rig.tsdb.heal();
        }
        Fault::MonitorDown | Fault::Monitor500 => {
            rig.monitor.set_mode(if fault == Fault::MonitorDown {
                Mode::Refuse
            } else {
                Mode::Error500
            });
            rig.hold(outage);
            rig.monitor.heal();
        }
        Fault::MonitorSlow => {
            rig.monitor.set_delay(Duration::from_secs(1));
            rig.hold(outage);
            rig.monitor.heal();
        }
        Fault::SlowTsdb => {
            // A frame makes two points of about 120 bytes each (the reading
            // and the alarm): 10 % of that.
            let ingest_bytes_per_s = (DEVICES as u64) * 240 * 1000 / PERIOD.as_millis() as u64;
            rig.tsdb.set_throttle(ingest_bytes_per_s / 10);
            rig.hold(outage);
            rig.tsdb.heal();
        }
        Fault::DiskFull => {
            rig.vm.stop();
            rig.gw.fill_data_dir();
            stayed_up = rig.hold_probing(outage);
            rig.gw.free_data_dir();
            rig.vm.restart();
        }
        Fault::GatewayKill5 => {
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            let slot = outage / 5;
            for _ in 0..5 {
                let at = slot.mul_f64((next_random(&mut seed) % 1000) as f64 / 1000.0);
                rig.hold(at);
                rig.gw.kill9();
                rig.hold(Duration::from_millis(200 + next_random(&mut seed) % 800));
                rig.gw.restart();
                rig.hold(slot.saturating_sub(at));
            }
        }
    }

    // Recovery: until everything published before healing has arrived.
    let healed = Instant::now();
    let round_at_heal = load.rounds();
    let deadline = healed + SETTLE;
    let mut recovery = SETTLE;
    while Instant::now() < deadline {
        rig.rss_kib();
        if rig.arrived_up_to(round_at_heal) {
            recovery = healed.elapsed();
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    rig.hold(Duration::from_secs(1));
    let rounds = load.finish();

    // Wait for the rest, then count.
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline && !rig.arrived_up_to(rounds) {
        rig.rss_kib();
        std::thread::sleep(Duration::from_millis(500));
    }
    if fault.drops_by_design() {
        // Dropped points never come: wait for the buffer to drain instead.
        crate::services::eventually(SETTLE, "the points queue drained", || {
            (rig.gw
                .metric(r#"anquan_gateway_queue_depth{queue="points"}"#)
                == 0.0)
                .then_some(())
        });
    }
    let mut out = Outcome {
        readings_sent: (DEVICES as u64) * u64::from(rounds),
        alarms_sent: (DEVICES as u64) * u64::from(rounds),
        recovery,
        rss_start_kib,
        stayed_up,
        ..Outcome::default()
    };
    for d in 0..DEVICES {
        let samples = rig.vm.export(&format!(r#"gas_seq{{device="gas-{d}"}}"#));
        let seqs: BTreeSet<u64> = samples
            .iter()
            .map(|(_, v)| *v as u64)
            .filter(|s| (1..=u64::from(rounds)).contains(s))
            .collect();
        out.readings_stored += seqs.len() as u64;
        out.tsdb_duplicates += (samples.len() as u64).saturating_sub(seqs.len() as u64);
    }
    let (per_device, other, wrong) = rig.delivered();
    let expected = 1..=u64::from(rounds);
    for ns in per_device.values() {
        let inside = ns.range(expected.clone()).count() as u64;
        out.alarms_delivered += inside;
        out.visible_duplicates += ns.len() as u64 - inside;
    }
    out.visible_duplicates += wrong;
    out.unexpected_alarms = other;
    out.redeliveries = rig.rx.counts().1;
    let m = rig.gw.metrics();
    out.dropped_counted =
        metric_value(&m, r#"anquan_gateway_queue_dropped_total{queue="points"}"#) as u64;
    out.overflow_raised = rig.gw.log().contains("durable buffer full");
    out.buffer_errors = metric_value(&m, "anquan_gateway_buffer_errors_total") as u64;
    out.rss_max_kib = rig.rss_max_kib;
    out
}

/// The outage length: `ANQUAN_FAULT_OUTAGE_S` seconds, else `default`.
pub fn outage_from_env(default: Duration) -> Duration {
    std::env::var("ANQUAN_FAULT_OUTAGE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(default, Duration::from_secs)
}
