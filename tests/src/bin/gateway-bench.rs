//! End-to-end bench of the gateway (issues 5 and 19): Mosquitto +
//! VictoriaMetrics + the gateway (a child process, the same program as
//! `anquan-gateway`), driven by simulated gas detectors over MQTT. One run
//! prints, each figure next to its baseline measured in the same run:
//!
//! 1. at 1 000, 5 000 and 10 000 frames/s (QoS 1) and at the highest rate
//!    the publishers reach: frame → alarm latency matched per frame (the
//!    load generator's publish → the event's arrival at an `alarms/#`
//!    subscriber), against the broker delivering the same frames to a
//!    plain subscriber (publish → arrival, per frame); gateway CPU and
//!    RSS; at max rate, the gateway's throughput against the broker's;
//! 2. the same, 9 of every 10 messages malformed (issue 5);
//! 3. the time-series buffer draining after a TSDB outage (issue 5);
//! 4. RSS with 100 000 registered devices (issue 5);
//! 5. alarms drained after a monitor outage, on loopback and through a
//!    proxy that delays every answer by 50 ms (a 50 ms round trip).
//!
//! Run (release, see BENCHMARKS.md):
//! `cargo run --release -p anquan-e2e --bin gateway-bench -- --help`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anquan_e2e::gateway::{GatewayProcess, Setup, metric_value};
use anquan_e2e::mqtt::{gas_frame, now_ms, telemetry_topic};
use anquan_e2e::proxy::{Mode, Proxy};
use anquan_e2e::receiver::Receiver;
use anquan_e2e::services::{Mosquitto, VictoriaMetrics};
use anquan_protocol::{AlarmEvent, AlarmState};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[derive(Debug, Clone)]
struct Args {
    devices: u32,
    rates: Vec<u32>,
    seconds: u32,
    max_frames: u32,
    drain_alarms: u32,
    connections: usize,
    flood: u32,
    outage_points: u32,
    registry: u32,
}

fn parse_args() -> Args {
    let mut a = Args {
        devices: 200,
        rates: vec![1_000, 5_000, 10_000],
        seconds: 15,
        max_frames: 200_000,
        drain_alarms: 20_000,
        connections: 4,
        flood: 100_000,
        outage_points: 240_000,
        registry: 100_000,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        if k == "--help" || k == "-h" {
            println!(
                "gateway-bench [--devices N] [--rates R,R,..] [--seconds S] [--max-frames N] [--drain-alarms N] \
                 [--connections N] [--flood N] [--outage-points N] [--registry N]\n\
                 defaults: 200 gas devices (one reading in ten over the red threshold), 1000,5000,10000 frames/s \
                 for 15 s each, 200000 frames at max rate, 20000 alarms per monitor outage, 4 publishing \
                 connections, a 100000-message flood, 240000 points during the TSDB outage, 100000 registered \
                 devices. 0 skips a section."
            );
            std::process::exit(0);
        }
        let Some(v) = it.next() else {
            eprintln!("{k} needs a value");
            std::process::exit(2)
        };
        let n = || -> u64 {
            v.parse().unwrap_or_else(|_| {
                eprintln!("{k} needs a number");
                std::process::exit(2)
            })
        };
        match k.as_str() {
            "--devices" => a.devices = n() as u32,
            "--rates" => a.rates = v.split(',').filter_map(|r| r.parse().ok()).collect(),
            "--seconds" => a.seconds = n() as u32,
            "--max-frames" => a.max_frames = n() as u32,
            "--drain-alarms" => a.drain_alarms = n() as u32,
            "--connections" => a.connections = n() as usize,
            "--flood" => a.flood = n() as u32,
            "--outage-points" => a.outage_points = n() as u32,
            "--registry" => a.registry = n() as u32,
            _ => {
                eprintln!("unknown option {k}");
                std::process::exit(2)
            }
        }
    }
    a
}

/// Arrivals at a subscriber: (when, device number, seq or transition n).
type Arrivals = Arc<Mutex<Vec<(Instant, u32, u32)>>>;

/// The bench's own clients must not add Nagle's delays to what they
/// measure.
fn nodelay(mut n: rumqttc::NetworkOptions) -> rumqttc::NetworkOptions {
    n.set_tcp_nodelay(true);
    n
}

/// The device number of `gas-000123`.
fn device_no(id: &str) -> u32 {
    id.trim_start_matches("gas-").parse().unwrap_or(u32::MAX)
}

/// `"seq":N` of a frame, without a full decode (the subscriber must not be
/// the bottleneck it measures).
fn seq_of(payload: &[u8]) -> Option<(u32, u32)> {
    let s = std::str::from_utf8(payload).ok()?;
    let dev = s.split("\"device\":\"").nth(1)?.split('"').next()?;
    let seq = s
        .split("\"seq\":")
        .nth(1)?
        .split(',')
        .next()?
        .parse()
        .ok()?;
    Some((device_no(dev), seq))
}

/// A subscriber recording arrivals; `alarms`: decode alarm events (device,
/// transition n), else frames (device, seq).
async fn subscriber(port: u16, id: &str, filter: &str, alarms: bool) -> (Arc<AtomicU64>, Arrivals) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_max_packet_size(16 * 1024, 16 * 1024);
    o.set_inflight(1_000);
    let (c, mut el) = AsyncClient::new(o, 1_000);
    el.set_network_options(nodelay(el.network_options()));
    let _ = c.subscribe(filter, QoS::AtLeastOnce).await;
    let count = Arc::new(AtomicU64::new(0));
    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::with_capacity(1 << 20)));
    let (cn, ar) = (count.clone(), arrivals.clone());
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        let _c = c;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(t) = ready_tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let now = Instant::now();
                    cn.fetch_add(1, Ordering::Relaxed);
                    let key = if alarms {
                        AlarmEvent::decode(&p.payload).ok().map(|e| {
                            let n = e
                                .event_id
                                .as_str()
                                .rsplit('/')
                                .next()
                                .and_then(|n| n.parse().ok())
                                .unwrap_or(0);
                            (device_no(e.device.as_str()), n)
                        })
                    } else {
                        seq_of(&p.payload)
                    };
                    if let (Some((d, s)), Ok(mut a)) = (key, ar.lock()) {
                        a.push((now, d, s));
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
    (count, arrivals)
}

/// The simulated detectors: a few MQTT connections publishing QoS 1; each
/// device always on the same connection (its frames stay in order). Frame
/// `seq` of a device is over the red threshold when `seq % 10 == 0`, so it
/// raises and the next one clears: one frame in five is an alarm.
struct Load {
    clients: Vec<AsyncClient>,
    acked: Arc<AtomicU64>,
    sent: u64,
    seq: HashMap<u32, (u32, u64)>,
    /// Alarms per device so far (the `n` of its next event id - 1).
    n: HashMap<u32, u32>,
    /// Publish time of each frame and of each alarm-causing frame.
    frames: HashMap<(u32, u32), Instant>,
    alarms: HashMap<(u32, u32), (Instant, AlarmState)>,
    record: bool,
}

impl Load {
    async fn connect(port: u16, n: usize, tag: &str) -> Self {
        let acked = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        for i in 0..n {
            let mut o = MqttOptions::new(format!("bench-{tag}-{i}"), "127.0.0.1", port);
            o.set_keep_alive(Duration::from_secs(60));
            o.set_inflight(1_000);
            o.set_max_packet_size(16 * 1024, 16 * 1024);
            let (c, mut el) = AsyncClient::new(o, 10_000);
            el.set_network_options(nodelay(el.network_options()));
            let a = acked.clone();
            tokio::spawn(async move {
                loop {
                    match el.poll().await {
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            a.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            });
            clients.push(c);
        }
        Self {
            clients,
            acked,
            sent: 0,
            seq: HashMap::new(),
            n: HashMap::new(),
            frames: HashMap::new(),
            alarms: HashMap::new(),
            record: false,
        }
    }

    /// Publishes the next frame of device `dev`; `pattern`: one reading in
    /// ten over the threshold (else always quiet).
    async fn frame(&mut self, dev: u32, pattern: bool) {
        let s = self.seq.entry(dev).or_insert((0, 0));
        s.0 += 1;
        s.1 = now_ms().max(s.1 + 1);
        let (seq, ts) = *s;
        let over = pattern && seq % 10 == 0;
        let name = format!("gas-{dev:06}");
        let c = &self.clients[dev as usize % self.clients.len()];
        let now = Instant::now();
        let _ = c
            .publish(
                telemetry_topic("bench", &name),
                QoS::AtLeastOnce,
                false,
                gas_frame(&name, seq, ts, if over { 60.0 } else { 1.0 }).into_bytes(),
            )
            .await;
        self.sent += 1;
        if self.record {
            self.frames.insert((dev, seq), now);
        }
        // The transitions this frame causes (a clear follows a raise).
        let was_over = pattern && seq > 1 && (seq - 1) % 10 == 0;
        let state = if over {
            Some(AlarmState::Raised)
        } else if was_over {
            Some(AlarmState::Cleared)
        } else {
            None
        };
        if let Some(state) = state {
            let n = self.n.entry(dev).or_insert(0);
            *n += 1;
            if self.record {
                self.alarms.insert((dev, *n), (now, state));
            }
        }
    }

    async fn wait_acked(&self) {
        while self.acked.load(Ordering::Relaxed) < self.sent {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Alarms the gateway will have raised in total.
    fn alarms_total(&self) -> u64 {
        self.n.values().map(|n| u64::from(*n)).sum()
    }
}

/// RSS (VmRSS, VmHWM) in KiB and CPU ticks (utime + stime) of a process.
fn proc_stats(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (kib("VmRSS:"), kib("VmHWM:"), ticks)
}

/// At max rate, the most frames published and not yet at the plain
/// subscriber.
const MAX_AHEAD: u64 = 2_000;

/// Linux USER_HZ.
const TICKS_PER_S: f64 = 100.0;

fn processed(gw: &GatewayProcess) -> f64 {
    gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#)
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() > timeout {
            eprintln!("bench: timed out waiting for {what}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t0.elapsed()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latencies (ms) of the arrivals matched against publish times.
fn matched<K: std::hash::Hash + Eq + Copy>(
    arrivals: &[(Instant, u32, u32)],
    sent: &HashMap<(u32, u32), K>,
    at: impl Fn(&K) -> Instant,
) -> (Vec<f64>, usize) {
    let mut lat = Vec::new();
    for (when, d, s) in arrivals {
        if let Some(k) = sent.get(&(*d, *s)) {
            lat.push(when.saturating_duration_since(at(k)).as_secs_f64() * 1000.0);
        }
    }
    lat.sort_by(f64::total_cmp);
    let n = lat.len();
    (lat, n)
}

/// Upper bounds of the p50 and p99 buckets (ms) of a Prometheus histogram
/// between two scrapes (`name` may carry a label set without the closing
/// brace).
fn histogram_delta(before: &str, after: &str, name: &str) -> (f64, f64) {
    let (base, labels) = match name.split_once('{') {
        Some((b, l)) => (b.to_string(), format!("{l},")),
        None => (name.to_string(), String::new()),
    };
    let prefix = format!("{base}_bucket{{{labels}le=\"");
    let buckets = |page: &str| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = page
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(&prefix)?;
                let (le, n) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, n.parse().ok()?))
            })
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let (b0, b1) = (buckets(before), buckets(after));
    let delta: Vec<(f64, f64)> = b1
        .iter()
        .map(|(le, n)| {
            (
                *le,
                n - b0.iter().find(|(l, _)| l == le).map_or(0.0, |(_, m)| *m),
            )
        })
        .collect();
    let total = delta.last().map_or(0.0, |d| d.1);
    let q = |p: f64| {
        delta
            .iter()
            .find(|(_, c)| *c >= total * p && total > 0.0)
            .map_or(f64::NAN, |(le, _)| *le * 1000.0)
    };
    (q(0.5), q(0.99))
}

/// What one load phase measured.
#[derive(Debug)]
struct Phase {
    label: String,
    offered: f64,
    base_p50: f64,
    base_p99: f64,
    base_n: usize,
    alarm_p50: f64,
    alarm_p99: f64,
    alarm_max: f64,
    alarm_n: usize,
    alarms_expected: usize,
    cpu_pct: f64,
    rss_mib: f64,
    peak_mib: f64,
    lag_s: f64,
    commits: f64,
    per_commit: f64,
    broker_rate: f64,
    gateway_rate: f64,
    commit_p99: f64,
    inside_p50: f64,
    inside_p99: f64,
}

impl Phase {
    fn print_inside(&self) {
        println!(
            "| {} | ≤ {} / ≤ {} | ≤ {} |",
            self.label, self.inside_p50, self.inside_p99, self.commit_p99
        );
    }

    fn print(&self) {
        println!(
            "| {} | {:.0} | {:.2} / {:.2} | {:.2} / {:.2} (max {:.1}) | {} of {} | {:+.2} | {:.1} % | {:.1} (peak {:.1}) | {:.0} ({:.1} frames each) | {} |",
            self.label,
            self.offered,
            self.base_p50,
            self.base_p99,
            self.alarm_p50,
            self.alarm_p99,
            self.alarm_max,
            self.alarm_n,
            self.alarms_expected,
            self.alarm_p99 - self.base_p99,
            self.cpu_pct,
            self.rss_mib,
            self.peak_mib,
            self.commits,
            self.per_commit,
            if self.broker_rate > 0.0 {
                format!(
                    "gateway {:.0} / broker {:.0} frames/s = {:.2}",
                    self.gateway_rate,
                    self.broker_rate,
                    self.gateway_rate / self.broker_rate
                )
            } else {
                format!("lag at the end {:.3} s", self.lag_s)
            }
        );
    }
}

/// Publishes for one phase (`rate` frames/s for `seconds`, or `max_frames`
/// as fast as the publishers go when `rate` is 0) and measures.
#[allow(clippy::too_many_arguments)]
async fn phase(
    label: &str,
    gw: &GatewayProcess,
    pid: u32,
    load: &mut Load,
    base: &(Arc<AtomicU64>, Arrivals),
    alarms: &(Arc<AtomicU64>, Arrivals),
    devices: u32,
    rate: u32,
    seconds: u32,
    max_frames: u32,
) -> Phase {
    // Start clean: nothing of the previous phase in flight.
    base.1.lock().map(|mut a| a.clear()).ok();
    alarms.1.lock().map(|mut a| a.clear()).ok();
    load.frames.clear();
    load.alarms.clear();
    load.record = true;
    let m0 = gw.metrics();
    let before = metric_value(
        &m0,
        r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#,
    );
    let base_before = base.0.load(Ordering::Relaxed);
    let (_, _, cpu0) = proc_stats(pid);
    let t0 = Instant::now();
    let total = if rate == 0 {
        max_frames
    } else {
        rate * seconds
    };
    let mut rss_peak = 0;
    let mut i = 0u32;
    if rate == 0 {
        // As fast as the broker delivers: never more than MAX_AHEAD frames
        // ahead of the plain subscriber, so the broker's own queue stays
        // short and what is measured is the gateway keeping up with it.
        while i < total {
            while u64::from(i) > base.0.load(Ordering::Relaxed) - base_before + MAX_AHEAD {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            load.frame(i % devices, true).await;
            i += 1;
            if i.is_multiple_of(5_000) {
                rss_peak = rss_peak.max(proc_stats(pid).0);
            }
        }
    } else {
        let per_tick = f64::from(rate) / 1000.0;
        let mut budget = 0.0;
        let mut next_tick = tokio::time::Instant::now();
        while i < total {
            budget += per_tick;
            while budget >= 1.0 && i < total {
                budget -= 1.0;
                load.frame(i % devices, true).await;
                i += 1;
            }
            if i.is_multiple_of(1_000) {
                rss_peak = rss_peak.max(proc_stats(pid).0);
            }
            next_tick += Duration::from_millis(1);
            tokio::time::sleep_until(next_tick).await;
        }
    }
    let send_s = t0.elapsed().as_secs_f64();
    load.wait_acked().await;
    let target = before + f64::from(total);
    let base_target = base_before + u64::from(total);
    let mut broker_done = None;
    let mut gateway_done = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while (broker_done.is_none() || gateway_done.is_none()) && Instant::now() < deadline {
        if broker_done.is_none() && base.0.load(Ordering::Relaxed) >= base_target {
            broker_done = Some(t0.elapsed());
        }
        if gateway_done.is_none() && processed(gw) >= target {
            gateway_done = Some(t0.elapsed());
        }
        rss_peak = rss_peak.max(proc_stats(pid).0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gw_s = gateway_done.unwrap_or(Duration::MAX).as_secs_f64();
    let (rss, hwm, cpu1) = proc_stats(pid);
    let expected = load.alarms.len();
    wait_until("alarm events", Duration::from_secs(60), || {
        alarms.1.lock().map_or(0, |a| a.len()) >= expected
    })
    .await;
    let m1 = gw.metrics();
    let commits = metric_value(&m1, "anquan_gateway_commit_seconds_count")
        - metric_value(&m0, "anquan_gateway_commit_seconds_count");
    let frames = metric_value(&m1, "anquan_gateway_commit_batch_frames_sum")
        - metric_value(&m0, "anquan_gateway_commit_batch_frames_sum");
    load.record = false;
    let base_arrivals = base.1.lock().map(|a| a.clone()).unwrap_or_default();
    let alarm_arrivals = alarms.1.lock().map(|a| a.clone()).unwrap_or_default();
    let (bl, base_n) = matched(&base_arrivals, &load.frames, |t| *t);
    let (al, alarm_n) = matched(&alarm_arrivals, &load.alarms, |(t, _)| *t);
    // The last arrival at the plain subscriber: the broker's pace.
    let broker_s = broker_done.map_or(f64::NAN, |d| d.as_secs_f64());
    Phase {
        label: label.into(),
        offered: f64::from(total) / send_s,
        base_p50: pct(&bl, 0.5),
        base_p99: pct(&bl, 0.99),
        base_n,
        alarm_p50: pct(&al, 0.5),
        alarm_p99: pct(&al, 0.99),
        alarm_max: pct(&al, 1.0),
        alarm_n,
        alarms_expected: expected,
        cpu_pct: (cpu1 - cpu0) as f64 / TICKS_PER_S / gw_s.max(send_s) * 100.0,
        rss_mib: rss as f64 / 1024.0,
        peak_mib: hwm.max(rss_peak) as f64 / 1024.0,
        lag_s: (gw_s - send_s).max(0.0),
        commits,
        per_commit: frames / commits.max(1.0),
        broker_rate: if rate == 0 {
            f64::from(total) / broker_s
        } else {
            0.0
        },
        gateway_rate: if rate == 0 {
            f64::from(total) / gw_s
        } else {
            0.0
        },
        commit_p99: histogram_delta(&m0, &m1, "anquan_gateway_commit_seconds").1,
        inside_p50: histogram_delta(&m0, &m1, r#"anquan_gateway_forward_seconds{dest="mqtt""#).0,
        inside_p99: histogram_delta(&m0, &m1, r#"anquan_gateway_forward_seconds{dest="mqtt""#).1,
    }
}

fn rules_without_offline(dir: &std::path::Path) -> String {
    // Devices pause between sections: keep the offline rule out of the
    // count of transitions (every event is the gas.lel one the load implies).
    let path = dir.join("bench-rules.toml");
    let _ = std::fs::write(&path, "[kind.gas.rules.\"gas.offline\"]\nenabled = false\n");
    format!("[rules]\nfile = \"{}\"\n", path.display())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = parse_args();
    println!("gateway-bench: {a:?}");
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let rules = rules_without_offline(scratch.path());
    let mq = Mosquitto::start_with("set_tcp_nodelay true");
    let mut vm = VictoriaMetrics::start();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        tsdb_url: Some(vm.url()),
        mqtt_alarms: true,
        sink_extra: "flush_interval_ms = 200\nbatch_size = 10000\n".into(),
        extra: format!("[validate]\nmax_devices = 300000\n\n{rules}"),
        ..Setup::default()
    });
    let pid = gw.pid().unwrap_or(0);
    println!(
        "Mosquitto (set_tcp_nodelay true, max_inflight_messages 1000), VictoriaMetrics, gateway pid {pid}; \
         {} gas devices, {} publishing connections (QoS 1), one reading in ten over the red threshold",
        a.devices, a.connections
    );

    // 1. Alarm latency and cost at fixed rates, and at max rate.
    let base = subscriber(
        mq.port(),
        "bench-plain",
        "sites/+/devices/+/telemetry",
        false,
    )
    .await;
    let alarms = subscriber(mq.port(), "bench-alarms", "alarms/#", true).await;
    let mut load = Load::connect(mq.port(), a.connections, "rate").await;
    // Warm up: every device registered, caches warm.
    for d in 0..a.devices {
        load.frame(d, false).await;
    }
    load.wait_acked().await;
    wait_until("warm-up", Duration::from_secs(60), || {
        processed(&gw) >= f64::from(a.devices)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "\n## 1. Frame → alarm, matched per frame, against the broker's own delivery of the same frames\n"
    );
    println!(
        "| load | offered frames/s | broker → plain subscriber p50 / p99 ms | frame → alarm on `alarms/#` p50 / p99 ms | alarms matched | alarm p99 − broker p99 ms | gateway CPU (one core = 100 %) | RSS MiB | commits (frames each) | throughput / lag |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut phases = Vec::new();
    for r in a.rates.clone() {
        let p = phase(
            &format!("{r} frames/s, QoS 1"),
            &gw,
            pid,
            &mut load,
            &base,
            &alarms,
            a.devices,
            r,
            a.seconds,
            0,
        )
        .await;
        p.print();
        phases.push(p);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if a.max_frames > 0 {
        let p = phase(
            &format!("max rate, QoS 1, {} frames", a.max_frames),
            &gw,
            pid,
            &mut load,
            &base,
            &alarms,
            a.devices,
            0,
            0,
            a.max_frames,
        )
        .await;
        p.print();
        println!(
            "(matched: {} frames at the plain subscriber, {} alarms)",
            p.base_n, p.alarm_n
        );
        phases.push(p);
    }
    drop(base);
    drop(alarms);
    println!(
        "\nInside the gateway (its own histograms, bucket upper bounds): judged → PUBACK of the alarm on MQTT, and the durable commit\n"
    );
    println!("| load | judged → PUBACK p50 / p99 ms | commit p99 ms |");
    println!("|---|---:|---:|");
    for p in &phases {
        p.print_inside();
    }

    let m = gw.metrics();
    println!(
        "\nfast lane: {} alarm events confirmed by the broker before their commit, of {} sent on MQTT",
        metric_value(&m, r#"anquan_gateway_forward_early_total{dest="mqtt"}"#),
        metric_value(&m, r#"anquan_gateway_forward_sent_total{dest="mqtt"}"#)
    );

    // 2. The same burst size, nine garbage messages for every valid frame.
    if a.flood > 0 {
        flood(&gw, &mut load, a.flood, a.devices).await;
    }

    // Loss so far: every valid frame processed and in the TSDB.
    let published = load.sent;
    wait_until("sink drained", Duration::from_secs(600), || {
        gw.metric(r#"anquan_gateway_queue_depth{queue="points"}"#) == 0.0
    })
    .await;
    let mut samples = 0;
    for _ in 0..30 {
        let n = vm.export(r#"{__name__="gas_seq",site="bench"}"#).len();
        if n == samples && n as u64 >= published {
            break;
        }
        samples = n;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let m = gw.metrics();
    println!(
        "\n## Loss\npublished {published} valid frames, processed {}, samples in VictoriaMetrics {samples}, \
         alarms expected {} / sent on MQTT {}",
        processed(&gw),
        load.alarms_total(),
        metric_value(&m, r#"anquan_gateway_forward_sent_total{dest="mqtt"}"#)
    );

    // 3. TSDB outage: the buffer fills, then drains.
    if a.outage_points > 0 {
        tsdb_outage(&gw, &mut vm, &mut load, a.outage_points, a.devices).await;
    }
    // 4. Registered devices.
    if a.registry > 0 {
        registry(&gw, pid, &mut load, a.registry).await;
    }
    if let Ok(path) = std::env::var("ANQUAN_BENCH_LOG") {
        let _ = std::fs::write(path, gw.log());
    }
    drop(load);
    drop(gw);

    // 5. Alarms drained after a monitor outage.
    if a.drain_alarms > 0 {
        monitor_outage(&mq, a.drain_alarms, a.devices, a.connections, &rules).await;
    }
}

/// Issue 5: 9 of every 10 messages malformed.
async fn flood(gw: &GatewayProcess, load: &mut Load, n: u32, devices: u32) {
    let garbage = [
        "not json".to_string(),
        r#"{"device":"x","kind":"gas","seq":"one","ts_ms":0,"readings":{}}"#.to_string(),
        r#"{"device":"gas-000001","kind":"gas","seq":1,"ts_ms":0,"readings":{"lel_pct":500}}"#
            .to_string(),
        format!(r#"{{"pad":"{}"}}"#, "x".repeat(1_100)),
    ];
    let rejected_now = |gw: &GatewayProcess| -> f64 {
        gw.metrics()
            .lines()
            .filter(|l| l.starts_with("anquan_gateway_rejected_total{"))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    };
    let (p0, r0) = (processed(gw), rejected_now(gw));
    let t0 = Instant::now();
    let valid = n / 10;
    for i in 0..n {
        if i % 10 == 0 {
            load.frame(i / 10 % devices, false).await;
        } else {
            let dev = format!("gas-{:06}", i % devices);
            let c = &load.clients[(i % devices) as usize % load.clients.len()];
            let _ = c
                .publish(
                    telemetry_topic("bench", &dev),
                    QoS::AtLeastOnce,
                    false,
                    garbage[i as usize % garbage.len()].clone().into_bytes(),
                )
                .await;
            load.sent += 1;
        }
    }
    load.wait_acked().await;
    // Garbage is not a valid frame: do not count it as published.
    load.sent -= u64::from(n - valid);
    load.acked
        .fetch_sub(u64::from(n - valid), Ordering::Relaxed);
    wait_until("garbage flood handled", Duration::from_secs(600), || {
        processed(gw) >= p0 + f64::from(valid) && rejected_now(gw) >= r0 + f64::from(n - valid)
    })
    .await;
    let s = t0.elapsed().as_secs_f64();
    println!("\n## 2. {n} messages, 9 of every 10 malformed");
    println!(
        "gateway handled {:.0} messages/s ({:.0} valid frames/s), every malformed one counted",
        f64::from(n) / s,
        f64::from(valid) / s
    );
}

/// Issue 5: the time-series buffer fills during a TSDB outage and drains.
async fn tsdb_outage(
    gw: &GatewayProcess,
    vm: &mut VictoriaMetrics,
    load: &mut Load,
    points: u32,
    devices: u32,
) {
    vm.stop();
    let before = processed(gw);
    let depth0 = gw.metric(r#"anquan_gateway_queue_depth{queue="points"}"#);
    let t0 = Instant::now();
    for i in 0..points {
        load.frame(i % devices, false).await;
    }
    load.wait_acked().await;
    wait_until("outage frames processed", Duration::from_secs(900), || {
        processed(gw) >= before + f64::from(points)
    })
    .await;
    wait_until("outage frames committed", Duration::from_secs(900), || {
        gw.metric(r#"anquan_gateway_queue_depth{queue="points"}"#) >= depth0 + f64::from(points)
    })
    .await;
    let fill_s = t0.elapsed().as_secs_f64();
    let depth = gw.metric(r#"anquan_gateway_queue_depth{queue="points"}"#);
    let bytes = gw.metric(r#"anquan_gateway_queue_bytes{queue="points"}"#);
    let file = std::fs::metadata(gw.dir().join("data").join("buffer.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    vm.restart();
    let drain = wait_until("buffer drained", Duration::from_secs(900), || {
        gw.metric(r#"anquan_gateway_queue_depth{queue="points"}"#) == 0.0
    })
    .await;
    println!("\n## 3. TSDB outage: {points} frames buffered, then drained");
    println!(
        "buffered in {fill_s:.1} s: depth {depth}, {:.1} MiB counted, buffer.redb {:.1} MiB; \
         drained at {:.0} points/s ({:.1} s) after VictoriaMetrics returned",
        bytes / 1048576.0,
        file as f64 / 1048576.0,
        depth / drain.as_secs_f64(),
        drain.as_secs_f64()
    );
}

/// Issue 5: many registered devices reporting every 15 s.
async fn registry(gw: &GatewayProcess, pid: u32, load: &mut Load, n: u32) {
    let (rss0, _, _) = proc_stats(pid);
    let before = processed(gw);
    for d in 0..n {
        load.frame(1_000_000 + d, false).await;
    }
    load.wait_acked().await;
    wait_until("registry frames", Duration::from_secs(900), || {
        processed(gw) >= before + f64::from(n)
    })
    .await;
    let (rss1, _, cpu0) = proc_stats(pid);
    let rate = f64::from(n) / 15.0;
    let before = processed(gw);
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut d = 0u32;
    let mut next_tick = tokio::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        let due = (t0.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            load.frame(1_000_000 + d, false).await;
            d = (d + 1) % n;
            sent += 1;
        }
        next_tick += Duration::from_millis(5);
        tokio::time::sleep_until(next_tick).await;
    }
    load.wait_acked().await;
    wait_until("steady frames", Duration::from_secs(900), || {
        processed(gw) >= before + sent as f64
    })
    .await;
    let (rss2, hwm, cpu1) = proc_stats(pid);
    println!(
        "\n## 4. {n} registered devices, then every device every 15 s ({rate:.0} frames/s) for 30 s"
    );
    println!(
        "RSS before {} MiB, after registering {} MiB (+{:.0} bytes/device), after 30 s {} MiB, peak {} MiB; \
         {:.0} % of one core while reporting",
        rss0 / 1024,
        rss1 / 1024,
        (rss1.saturating_sub(rss0) * 1024) as f64 / f64::from(n),
        rss2 / 1024,
        hwm / 1024,
        (cpu1 - cpu0) as f64 / TICKS_PER_S / t0.elapsed().as_secs_f64() * 100.0
    );
}

/// Issue 19: alarms drained after a monitor outage, on loopback and
/// through a proxy that answers 50 ms late. A gateway of its own (alarms
/// over HTTP only, file sink) behind the fault proxy; the backlog is
/// built while the proxy refuses connections.
async fn monitor_outage(
    mq: &Mosquitto,
    alarms_wanted: u32,
    devices: u32,
    connections: usize,
    rules: &str,
) {
    let rx = Receiver::start("bench");
    let proxy = Proxy::start(rx.port());
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((proxy.url(), "bench".into())),
        mqtt_alarms: false,
        extra: rules.to_string(),
        ..Setup::default()
    });
    let mut load = Load::connect(mq.port(), connections, "drain").await;
    println!(
        "\n## 5. Alarms drained after a monitor outage (HTTP, forward.http.concurrency 128, one request per alarm chain)\n"
    );
    println!(
        "| link to the monitor | alarms in the backlog | first to last delivery | alarms/s | from healing (incl. the retry backoff) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (label, delay) in [
        ("loopback", Duration::ZERO),
        (
            "50 ms round trip (proxy delays every answer)",
            Duration::from_millis(50),
        ),
    ] {
        proxy.set_mode(Mode::Refuse);
        let at_start = rx.accepted();
        let queued0 = gw.metric(r#"anquan_gateway_queue_depth{queue="alarms_http"}"#);
        let alarms0 = load.alarms_total();
        while load.alarms_total() < alarms0 + u64::from(alarms_wanted) {
            for d in 0..devices {
                load.frame(d, true).await;
            }
        }
        load.wait_acked().await;
        let made = load.alarms_total() - alarms0;
        // A few may slip through a connection the proxy had not cut yet.
        let depth = || gw.metric(r#"anquan_gateway_queue_depth{queue="alarms_http"}"#);
        wait_until("the backlog committed", Duration::from_secs(600), || {
            depth() - queued0 + (rx.accepted() - at_start) as f64 >= made as f64
        })
        .await;
        let at_start = rx.accepted();
        let backlog = (depth() - queued0).max(0.0) as u64;
        proxy.heal();
        proxy.set_delay(delay);
        let healed = Instant::now();
        wait_until("the first delivery", Duration::from_secs(60), || {
            rx.accepted() > at_start
        })
        .await;
        let first = Instant::now();
        wait_until("the backlog delivered", Duration::from_secs(900), || {
            rx.accepted() >= at_start + backlog as usize
        })
        .await;
        let took = first.elapsed().as_secs_f64();
        println!(
            "| {label} | {backlog} | {took:.2} s | {:.0} | {:.2} s |",
            backlog as f64 / took,
            healed.elapsed().as_secs_f64()
        );
        proxy.heal();
        // Delivered entries are deleted with the next commit (or alone
        // after a moment): start the next round from an empty queue.
        wait_until("the queue emptied", Duration::from_secs(60), || {
            depth() == 0.0
        })
        .await;
    }
    let (requests, duplicates, _) = rx.counts();
    println!("(receiver: {requests} requests, {duplicates} repeats absorbed)");
}
