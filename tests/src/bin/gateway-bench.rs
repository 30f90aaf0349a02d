//! End-to-end bench of the gateway (issue 5): Mosquitto + VictoriaMetrics +
//! the gateway (a child process, the same program as `anquan-gateway`),
//! driven by simulated devices over MQTT. Prints, in one run:
//!
//! * raw broker delivery rate to one plain QoS 1 subscriber, and the
//!   gateway's fully processed rate (decoded, validated, judged, committed
//!   with fsync, acknowledged) for the same burst, and their ratio;
//! * alarm latency p50/p99 (publish → alarm event on `alarms/#` and at the
//!   HTTP receiver) at a target frame rate, gateway RSS and CPU, loss;
//! * drain rate of the disk buffer after a TSDB outage;
//! * gateway RSS with 100 000 registered devices.
//!
//! Run (release, see BENCHMARKS.md):
//! `cargo run --release -p anquan-e2e --bin gateway-bench -- --help`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anquan_e2e::gateway::{GatewayProcess, Setup, metric_value};
use anquan_e2e::mqtt::{gas_frame, now_ms, telemetry_topic};
use anquan_e2e::receiver::Receiver;
use anquan_e2e::services::{Mosquitto, VictoriaMetrics};
use anquan_protocol::AlarmEvent;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[derive(Debug, Clone)]
struct Args {
    devices: u32,
    burst: u32,
    rate: u32,
    seconds: u32,
    alarm_devices: u32,
    registry: u32,
    outage_points: u32,
    connections: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        devices: 1_000,
        burst: 100_000,
        rate: 5_000,
        seconds: 20,
        alarm_devices: 10,
        registry: 100_000,
        outage_points: 240_000,
        connections: 4,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        if k == "--help" || k == "-h" {
            println!(
                "gateway-bench [--devices N] [--burst FRAMES] [--rate FPS] [--seconds S] [--alarm-devices N] \
                 [--registry DEVICES] [--outage-points POINTS] [--connections N]\n\
                 defaults: 1000 devices, 100000-frame burst, 5000 fps for 20 s with 10 alarm devices, \
                 100000 registered devices, 240000 points (1 h of 1000 devices at 15 s) during the TSDB outage"
            );
            std::process::exit(0);
        }
        let v: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            eprintln!("{k} needs a number");
            std::process::exit(2)
        });
        match k.as_str() {
            "--devices" => a.devices = v as u32,
            "--burst" => a.burst = v as u32,
            "--rate" => a.rate = v as u32,
            "--seconds" => a.seconds = v as u32,
            "--alarm-devices" => a.alarm_devices = v as u32,
            "--registry" => a.registry = v as u32,
            "--outage-points" => a.outage_points = v as u32,
            "--connections" => a.connections = v as usize,
            _ => {
                eprintln!("unknown option {k}");
                std::process::exit(2)
            }
        }
    }
    a
}

/// Simulated devices: a few MQTT connections publishing QoS 1.
struct Load {
    clients: Vec<AsyncClient>,
    acked: Arc<AtomicU64>,
    sent: u64,
    next: usize,
}

impl Load {
    async fn connect(port: u16, n: usize, tag: &str) -> Self {
        let acked = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        for i in 0..n {
            let mut o = MqttOptions::new(format!("bench-{tag}-{i}"), "127.0.0.1", port);
            o.set_keep_alive(Duration::from_secs(60));
            o.set_inflight(500);
            o.set_max_packet_size(16 * 1024, 16 * 1024);
            let (c, mut el) = AsyncClient::new(o, 10_000);
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
            next: 0,
        }
    }

    async fn publish(&mut self, topic: String, payload: String) {
        let c = &self.clients[self.next % self.clients.len()];
        self.next += 1;
        let _ = c
            .publish(topic, QoS::AtLeastOnce, false, payload.into_bytes())
            .await;
        self.sent += 1;
    }

    async fn wait_acked(&self) {
        while self.acked.load(Ordering::Relaxed) < self.sent {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Arrival time and payload of each message.
type Arrivals = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// A plain subscriber counting messages and recording arrival times.
struct Counter {
    count: Arc<AtomicU64>,
    first_last: Arc<Mutex<(Option<Instant>, Option<Instant>)>>,
    arrivals: Arrivals,
}

async fn subscriber(port: u16, id: &str, filter: &str, keep: bool) -> Counter {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_max_packet_size(16 * 1024, 16 * 1024);
    let (c, mut el) = AsyncClient::new(o, 1_000);
    let _ = c.subscribe(filter, QoS::AtLeastOnce).await;
    let count = Arc::new(AtomicU64::new(0));
    let first_last = Arc::new(Mutex::new((None, None)));
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let (cn, fl, ar) = (count.clone(), first_last.clone(), arrivals.clone());
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
                    if let Ok(mut g) = fl.lock() {
                        g.0.get_or_insert(now);
                        g.1 = Some(now);
                    }
                    if keep && let Ok(mut a) = ar.lock() {
                        a.push((now, p.payload.to_vec()));
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
    Counter {
        count,
        first_last,
        arrivals,
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

fn ticks_per_s() -> f64 {
    100.0 // Linux USER_HZ
}

fn processed(gw: &GatewayProcess) -> f64 {
    gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#)
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    eprintln!("bench: waiting for {what}");
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() > timeout {
            eprintln!("bench: timed out waiting for {what}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

/// p50/p99 upper bounds from a Prometheus histogram (`name` may end in a
/// label set without the closing brace).
fn histogram_line(page: &str, name: &str, what: &str) -> String {
    let (base, labels) = match name.split_once('{') {
        Some((b, l)) => (b.to_string(), format!("{l},")),
        None => (name.to_string(), String::new()),
    };
    let prefix = format!("{base}_bucket{{{labels}le=\"");
    let mut buckets: Vec<(f64, f64)> = page
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, v) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map_or(0.0, |b| b.1);
    let q = |p: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= total * p)
            .map_or(f64::NAN, |(le, _)| *le * 1000.0)
    };
    format!(
        "{what}: n = {total}, p50 ≤ {} ms, p99 ≤ {} ms",
        q(0.5),
        q(0.99)
    )
}

/// The floor of any durable commit on this disk: append 200 bytes and
/// fdatasync, 200 times.
fn fsync_baseline(dir: &std::path::Path) -> (f64, f64) {
    use std::io::Write;
    let path = dir.join("fsync-baseline");
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return (f64::NAN, f64::NAN);
    };
    let mut t = Vec::new();
    for _ in 0..200 {
        let s = Instant::now();
        let _ = f.write_all(&[b'x'; 200]);
        let _ = f.sync_data();
        t.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = std::fs::remove_file(&path);
    t.sort_by(|a, b| a.total_cmp(b));
    (pct(&t, 0.5), pct(&t, 0.99))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = parse_args();
    println!("gateway-bench: {a:?}");
    let mq = Mosquitto::start();
    let mut vm = VictoriaMetrics::start();
    let rx = Receiver::start("bench");
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        tsdb_url: Some(vm.url()),
        http: Some((rx.url(), "bench".into())),
        mqtt_alarms: true,
        sink_extra: "flush_interval_ms = 200\nbatch_size = 10000\n".into(),
        extra: "[validate]\nmax_devices = 300000\n".into(),
        ..Setup::default()
    });
    let pid = gw.pid().unwrap_or(0);
    // Per device: seq and the last time stamp (device clock = now, strictly
    // increasing per device, so every point has its own time).
    let mut seq: HashMap<u32, (u32, u64)> = HashMap::new();
    let mut next_frame = |dev: u32, lel: f32| {
        let s = seq.entry(dev).or_insert((0, 0));
        s.0 += 1;
        s.1 = now_ms().max(s.1 + 1);
        let name = format!("gas-{dev:06}");
        (
            telemetry_topic("bench", &name),
            gas_frame(&name, s.0, s.1, lel),
        )
    };
    let mut published = 0u64;

    // 1. Raw broker rate: the same burst to one plain QoS 1 subscriber. The
    //    gateway is subscribed too, so it takes the burst as well; both
    //    are measured from the same publish.
    let raw = subscriber(mq.port(), "bench-raw", "sites/+/devices/+/telemetry", false).await;
    let mut load = Load::connect(mq.port(), a.connections, "burst").await;
    let before = processed(&gw);
    let (_, _, cpu0) = proc_stats(pid);
    let t0 = Instant::now();
    for i in 0..a.burst {
        let (t, p) = next_frame(i % a.devices, 1.0);
        load.publish(t, p).await;
    }
    load.wait_acked().await;
    published += u64::from(a.burst);
    let publish_s = t0.elapsed().as_secs_f64();
    let target = before + f64::from(a.burst);
    let raw_done = wait_until("raw subscriber", Duration::from_secs(600), || {
        raw.count.load(Ordering::Relaxed) >= u64::from(a.burst)
    })
    .await;
    let _ = raw_done;
    let gw_done = wait_until("gateway burst", Duration::from_secs(600), || {
        processed(&gw) >= target
    })
    .await;
    let gw_s = t0.elapsed().as_secs_f64().max(gw_done.as_secs_f64());
    let (rss_burst, _, cpu1) = proc_stats(pid);
    let (f, l) = raw.first_last.lock().map(|g| *g).unwrap_or((None, None));
    let raw_s = match (f, l) {
        (Some(f), Some(l)) => (l - t0).as_secs_f64().max((l - f).as_secs_f64()),
        _ => f64::NAN,
    };
    let raw_rate = f64::from(a.burst) / raw_s;
    let gw_rate = f64::from(a.burst) / gw_s;
    println!(
        "\n## 1. Burst of {} frames ({} devices, {} publishing connections, QoS 1)",
        a.burst, a.devices, a.connections
    );
    println!(
        "publish (broker acked)      {:>10.0} frames/s",
        f64::from(a.burst) / publish_s
    );
    println!("raw broker → subscriber     {:>10.0} frames/s", raw_rate);
    println!(
        "gateway fully processed     {:>10.0} frames/s  (decode, validate, rules, fsync commit, ack)",
        gw_rate
    );
    println!("ratio gateway / raw         {:>10.2}", gw_rate / raw_rate);
    println!(
        "gateway CPU during burst    {:>10.0} %  of one core; RSS {} MiB",
        (cpu1 - cpu0) as f64 / ticks_per_s() / gw_s * 100.0,
        rss_burst / 1024
    );
    drop(raw);

    // 1b. The same burst size, nine garbage messages for every valid frame.
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
    let mut load = Load::connect(mq.port(), a.connections, "garbage").await;
    let (p0, r0) = (processed(&gw), rejected_now(&gw));
    let t0 = Instant::now();
    let valid = a.burst / 10;
    for i in 0..a.burst {
        if i % 10 == 0 {
            let (t, p) = next_frame(i / 10 % a.devices, 1.0);
            load.publish(t, p).await;
        } else {
            let dev = format!("gas-{:06}", i % a.devices);
            load.publish(
                telemetry_topic("bench", &dev),
                garbage[i as usize % garbage.len()].clone(),
            )
            .await;
        }
    }
    load.wait_acked().await;
    published += u64::from(valid);
    wait_until("garbage flood handled", Duration::from_secs(600), || {
        processed(&gw) >= p0 + f64::from(valid)
            && rejected_now(&gw) >= r0 + f64::from(a.burst - valid)
    })
    .await;
    let flood_s = t0.elapsed().as_secs_f64();
    println!(
        "\n## 1b. Burst of {} messages, 9 of every 10 malformed",
        a.burst
    );
    println!(
        "gateway handled {:>10.0} messages/s ({:.0} valid frames/s); clean burst above {:.0} frames/s",
        f64::from(a.burst) / flood_s,
        f64::from(valid) / flood_s,
        gw_rate
    );

    // 2. Target rate with alarms: latency publish → alarm.
    let alarms = subscriber(mq.port(), "bench-alarms", "alarms/#", true).await;
    let mut load = Load::connect(mq.port(), a.connections, "rate").await;
    let mut sent_at: HashMap<(u32, u32), Instant> = HashMap::new();
    let mut alarm_n: HashMap<u32, u32> = HashMap::new();
    let before = processed(&gw);
    let (_, _, cpu0) = proc_stats(pid);
    let t0 = Instant::now();
    let total = a.rate * a.seconds;
    let mut i = 0u32;
    let mut rss_peak = 0;
    let tick = Duration::from_millis(1);
    let per_tick = f64::from(a.rate) / 1000.0;
    let mut budget = 0.0;
    let mut next_tick = tokio::time::Instant::now();
    let alarm_every = (a.devices / a.alarm_devices.max(1)).max(1);
    while i < total {
        budget += per_tick;
        while budget >= 1.0 && i < total {
            budget -= 1.0;
            let dev = i % a.devices;
            let is_alarm_dev = a.alarm_devices > 0 && dev.is_multiple_of(alarm_every);
            let (lel, n) = if is_alarm_dev {
                let n = alarm_n.entry(dev).or_insert(0);
                *n += 1;
                (if *n % 2 == 1 { 60.0 } else { 1.0 }, *n)
            } else {
                (1.0, 0)
            };
            let (t, p) = next_frame(dev, lel);
            if is_alarm_dev {
                sent_at.insert((dev, n), Instant::now());
            }
            load.publish(t, p).await;
            i += 1;
        }
        if i.is_multiple_of(5_000) {
            rss_peak = rss_peak.max(proc_stats(pid).0);
        }
        next_tick += tick;
        tokio::time::sleep_until(next_tick).await;
    }
    let send_s = t0.elapsed().as_secs_f64();
    load.wait_acked().await;
    published += u64::from(total);
    let target = before + f64::from(total);
    wait_until("gateway at rate", Duration::from_secs(600), || {
        processed(&gw) >= target
    })
    .await;
    let lag_s = t0.elapsed().as_secs_f64() - send_s;
    let (rss_rate, _, cpu1) = proc_stats(pid);
    rss_peak = rss_peak.max(rss_rate);
    let expected_alarms: u64 = alarm_n.values().map(|n| u64::from(*n)).sum();
    wait_until("alarm events", Duration::from_secs(60), || {
        alarms.count.load(Ordering::Relaxed) >= expected_alarms
    })
    .await;
    // Alarm n of device d is the transition of d's n-th alarm frame (the
    // burst above only sent 1 %LEL, which is quiet).
    let mut lat = Vec::new();
    let arrivals = alarms
        .arrivals
        .lock()
        .map(|a| a.clone())
        .unwrap_or_default();
    for (at, payload) in &arrivals {
        let Ok(e) = AlarmEvent::decode(payload) else {
            continue;
        };
        let dev: u32 = e
            .device
            .trim_start_matches("gas-")
            .parse()
            .unwrap_or(u32::MAX);
        let n: u32 = e
            .event_id
            .as_str()
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if let Some(s) = sent_at.get(&(dev, n)) {
            lat.push(at.duration_since(*s).as_secs_f64() * 1000.0);
        }
    }
    lat.sort_by(|x, y| x.total_cmp(y));
    println!(
        "\n## 2. {} frames/s for {} s ({} devices, {} of them toggling an alarm every frame)",
        a.rate, a.seconds, a.devices, a.alarm_devices
    );
    println!(
        "offered                     {:>10.0} frames/s",
        f64::from(total) / send_s
    );
    println!("gateway lag at the end      {:>10.3} s", lag_s.max(0.0));
    println!(
        "alarms expected / received  {:>10} / {} (MQTT alarms/#)",
        expected_alarms,
        alarms.count.load(Ordering::Relaxed)
    );
    println!(
        "alarm latency publish → alarms/# p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n = {})",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        lat.len()
    );
    println!(
        "gateway CPU                 {:>10.0} %  of one core; RSS {} MiB (peak {} MiB)",
        (cpu1 - cpu0) as f64 / ticks_per_s() / (send_s + lag_s.max(0.0)) * 100.0,
        rss_rate / 1024,
        rss_peak / 1024
    );
    let http_events = rx.events().len();
    println!("alarm events at the HTTP receiver {http_events}");
    drop(alarms);

    // Loss: every published frame processed and in the TSDB.
    wait_until("sink drained", Duration::from_secs(600), || {
        gw.metric(r#"anquan_gateway_queue_depth{queue="points"}"#) == 0.0
    })
    .await;
    let m = gw.metrics();
    let rejected: f64 = m
        .lines()
        .filter(|l| l.starts_with("anquan_gateway_rejected_total{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    // VictoriaMetrics makes fresh rows searchable in the background: count
    // until the number stops growing.
    let mut samples = 0;
    for _ in 0..30 {
        let n = vm.export(r#"{__name__="gas_seq",site="bench"}"#).len();
        if n == samples && n as u64 >= published {
            break;
        }
        samples = n;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("\n## Loss");
    let (f50, f99) = fsync_baseline(gw.dir());
    println!(
        "baseline: write 200 B + fdatasync on the same disk: p50 {f50:.2} ms, p99 {f99:.2} ms"
    );
    println!(
        "{}",
        histogram_line(&m, "anquan_gateway_commit_seconds", "durable commit")
    );
    println!(
        "{}",
        histogram_line(
            &m,
            r#"anquan_gateway_forward_seconds{dest="mqtt""#,
            "commit → MQTT PUBACK"
        )
    );
    println!(
        "{}",
        histogram_line(
            &m,
            r#"anquan_gateway_forward_seconds{dest="http""#,
            "commit → HTTP 200"
        )
    );
    println!(
        "clock skew flagged {}",
        metric_value(&m, "anquan_gateway_clock_skew_total")
    );
    println!(
        "published {published}, processed {}, rejected {rejected}, samples in VictoriaMetrics {samples}, sink points {}",
        processed(&gw),
        metric_value(&m, "anquan_gateway_sink_points_total")
    );

    // 3. TSDB outage: the buffer fills, then drains.
    vm.stop();
    let mut load = Load::connect(mq.port(), a.connections, "outage").await;
    let before = processed(&gw);
    let t0 = Instant::now();
    for i in 0..a.outage_points {
        let (t, p) = next_frame(i % a.devices, 1.0);
        load.publish(t, p).await;
    }
    load.wait_acked().await;
    let target = before + f64::from(a.outage_points);
    wait_until("outage frames processed", Duration::from_secs(900), || {
        processed(&gw) >= target
    })
    .await;
    // Processed counts frames as judged; wait for their commit too.
    wait_until("outage frames committed", Duration::from_secs(900), || {
        gw.metric(r#"anquan_gateway_queue_depth{queue="points"}"#) >= f64::from(a.outage_points)
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
    println!(
        "\n## 3. TSDB outage: {} frames (1 h of 1 000 devices at one frame per 15 s = 240 000) buffered, then drained",
        a.outage_points
    );
    println!(
        "buffered in {fill_s:.1} s: depth {depth}, {:.1} MiB counted, buffer.redb {:.1} MiB",
        bytes / 1048576.0,
        file as f64 / 1048576.0
    );
    println!(
        "drain rate after the TSDB returned {:>10.0} points/s ({:.1} s)",
        depth / drain.as_secs_f64(),
        drain.as_secs_f64()
    );

    // 4. 100 000 registered devices reporting every 15 s.
    let (rss0, _, _) = proc_stats(pid);
    let mut load = Load::connect(mq.port(), a.connections, "registry").await;
    let before = processed(&gw);
    for d in 0..a.registry {
        let (t, p) = next_frame(1_000_000 + d, 1.0);
        load.publish(t, p).await;
    }
    load.wait_acked().await;
    wait_until("registry frames", Duration::from_secs(900), || {
        processed(&gw) >= before + f64::from(a.registry)
    })
    .await;
    let (rss1, _, cpu0) = proc_stats(pid);
    // Then 30 s of steady reporting: registry / 15 frames per second.
    let rate = f64::from(a.registry) / 15.0;
    let before = processed(&gw);
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut d = 0u32;
    let mut next_tick = tokio::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        let due = (t0.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            let (t, p) = next_frame(1_000_000 + d, 1.0);
            d = (d + 1) % a.registry;
            load.publish(t, p).await;
            sent += 1;
        }
        next_tick += Duration::from_millis(5);
        tokio::time::sleep_until(next_tick).await;
    }
    load.wait_acked().await;
    wait_until("steady frames", Duration::from_secs(900), || {
        processed(&gw) >= before + sent as f64
    })
    .await;
    let (rss2, hwm, cpu1) = proc_stats(pid);
    let devices = gw.metric(r#"anquan_gateway_devices{state="online"}"#)
        + gw.metric(r#"anquan_gateway_devices{state="offline"}"#);
    println!(
        "\n## 4. {} registered devices ({} in the registry), then {:.0} frames/s (every device every 15 s) for 30 s",
        a.registry, devices, rate
    );
    println!(
        "RSS before {} MiB, after registering {} MiB (+{:.0} bytes/device), after 30 s of reporting {} MiB, peak {} MiB",
        rss0 / 1024,
        rss1 / 1024,
        (rss1.saturating_sub(rss0) * 1024) as f64 / f64::from(a.registry),
        rss2 / 1024,
        hwm / 1024
    );
    println!(
        "gateway CPU while reporting {:.0} % of one core",
        (cpu1 - cpu0) as f64 / ticks_per_s() / t0.elapsed().as_secs_f64() * 100.0
    );
    let m = gw.metrics();
    println!(
        "\ncommit: {} batches, {:.0} frames/batch on average",
        metric_value(&m, "anquan_gateway_commit_seconds_count"),
        metric_value(&m, "anquan_gateway_commit_batch_frames_sum")
            / metric_value(&m, "anquan_gateway_commit_batch_frames_count").max(1.0)
    );
}
