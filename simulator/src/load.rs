//! `anquan-sim load`: many devices' telemetry through a few reused MQTT
//! connections, at the rate of `--devices N --period P` (N/P frames/s) or a
//! target `--rate R` (burst mode), for `--duration`. Reports the achieved
//! publish rate, the broker's acknowledgements (QoS 1 PUBACKs) and, with
//! the in-process gateway (the default: embedded broker + gateway on the
//! real clock), how many frames the gateway committed.
//!
//! Frames are contract telemetry (gas detectors with a slowly varying
//! reading), each device with its own `seq`; they are built directly, not
//! by stepping the firmware, so one core can drive a large site.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anquan_gateway::{Config, Gateway};
use anquan_protocol::{DeviceKind, Id, Metric, Readings, Telemetry, Topic, TopicKind};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

/// `anquan-sim load`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Devices to emulate.
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Report period of each device: `15s`, `500ms`, `1m`.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub period: Duration,
    /// Burst mode: a target of this many frames/s instead of devices/period.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to send.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// MQTT connections the devices share.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// External broker `host:port`; default: the in-process gateway with
    /// its embedded broker.
    #[arg(long)]
    pub broker: Option<String>,
    /// Site id of the emulated devices.
    #[arg(long, default_value = "load-site")]
    pub site: String,
}

/// `15s`, `500ms`, `2m`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: not a duration (15s, 500ms, 1m)"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("`{s}`: must be above 0"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// What a load run achieved.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Target, frames/s.
    pub target_rate: f64,
    /// Frames published.
    pub sent: u64,
    /// Frames the broker acknowledged.
    pub acked: u64,
    /// Frames the in-process gateway committed (None: external broker).
    pub handled: Option<u64>,
    /// Sending time, s.
    pub send_s: f64,
    /// Until every frame was acknowledged (and committed), s.
    pub total_s: f64,
}

impl LoadReport {
    /// Frames published per second while sending.
    pub fn achieved_rate(&self) -> f64 {
        self.sent as f64 / self.send_s.max(1e-9)
    }
}

fn frame(site: &Id, device: &Id, seq: u32, ts_ms: u64) -> Option<(String, Vec<u8>)> {
    let mut r = Readings::default();
    let lel = 1.0 + (seq % 20) as f32 * 0.1;
    r.set(Metric::LelPct, lel).ok()?;
    r.set(Metric::CoPpm, 2.0).ok()?;
    let t = Telemetry {
        device: device.clone(),
        kind: DeviceKind::Gas,
        seq,
        ts_ms,
        readings: r,
        faults: Default::default(),
        dropped: 0,
    };
    let payload = t.to_vec().ok()?.to_vec();
    let topic = Topic::device_topic(site, device, TopicKind::Telemetry);
    Some((topic.to_string(), payload))
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs the load.
pub async fn run(args: &LoadArgs) -> Result<LoadReport, String> {
    let site = Id::new(&args.site).map_err(|e| format!("--site: {e}"))?;
    if args.devices == 0 || args.connections == 0 {
        return Err("--devices and --connections must be at least 1".into());
    }
    let target = args
        .rate
        .unwrap_or(args.devices as f64 / args.period.as_secs_f64());
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (host, port, gw) = match &args.broker {
        Some(b) => {
            let (h, p) = crate::run::parse_broker(b)?;
            (h, p, None)
        }
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| e.to_string())?;
            let cfg = Config::parse(&format!(
                "[gateway]\nid = \"gw-load\"\ndata_dir = \"{}\"\n\n[broker]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n\n\
                 [sink]\ntype = \"file\"\nflush_interval_ms = 500\n\n[forward.mqtt]\nenabled = false\n\n[api]\nlisten = \"\"\n",
                tmp.path().display()
            ))
            .map_err(|e| e.to_string())?;
            let gw = Gateway::start(cfg).await.map_err(|e| e.to_string())?;
            if !gw.wait_subscribed(Duration::from_secs(30)).await {
                return Err("the gateway did not subscribe within 30 s".into());
            }
            ("127.0.0.1".to_string(), port, Some(gw))
        }
    };
    let devices: Arc<Vec<Id>> = Arc::new(
        (0..args.devices)
            .map(|i| Id::new(&format!("load-{i:06}")).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
    );
    let acked = Arc::new(AtomicU64::new(0));
    let sent_total = Arc::new(AtomicU64::new(0));
    let conns = args.connections.min(args.devices);
    let per_conn = target / conns as f64;
    let duration = args.duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let mut opts = MqttOptions::new(
            format!("anquan-sim-load-{}-{c}", std::process::id()),
            host.clone(),
            port,
        );
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_inflight(1000);
        let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
        let acked = acked.clone();
        let poll = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let devices = devices.clone();
        let site = site.clone();
        let sent_total = sent_total.clone();
        tasks.push(tokio::spawn(async move {
            // Connection c serves devices c, c + conns, c + 2·conns, …
            let mine: Vec<usize> = (c..devices.len()).step_by(conns).collect();
            let mut sent = 0u64;
            let begin = Instant::now();
            while begin.elapsed() < duration {
                let due = (per_conn * begin.elapsed().as_secs_f64()) as u64;
                while sent < due {
                    let k = sent as usize;
                    let d = mine[k % mine.len()];
                    let seq = (k / mine.len()) as u32;
                    if let Some((topic, payload)) = frame(&site, &devices[d], seq, wall_ms())
                        && client
                            .publish(topic, QoS::AtLeastOnce, false, payload)
                            .await
                            .is_err()
                    {
                        return (client, poll);
                    }
                    sent += 1;
                    sent_total.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (client, poll)
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.map_err(|e| e.to_string())?);
    }
    let send_s = started.elapsed().as_secs_f64();
    let sent = sent_total.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let done_acks = acked.load(Ordering::Relaxed) >= sent;
        let done_gw = gw.as_ref().is_none_or(|g| g.messages_handled() >= sent);
        if done_acks && done_gw {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total_s = started.elapsed().as_secs_f64();
    for (client, poll) in clients {
        let _ = client.disconnect().await;
        poll.abort();
    }
    let handled = gw.as_ref().map(|g| g.messages_handled());
    if let Some(g) = gw {
        g.shutdown().await;
    }
    Ok(LoadReport {
        target_rate: target,
        sent,
        acked: acked.load(Ordering::Relaxed),
        handled,
        send_s,
        total_s,
    })
}

/// The command.
pub fn main(args: &LoadArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anquan-sim load: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "anquan-sim load: {} devices, {} connection(s), target {:.0} frames/s for {:.0} s → {}",
        args.devices,
        args.connections,
        args.rate
            .unwrap_or(args.devices as f64 / args.period.as_secs_f64()),
        args.duration.as_secs_f64(),
        args.broker
            .as_deref()
            .unwrap_or("in-process gateway (embedded broker)")
    );
    match rt.block_on(run(args)) {
        Ok(r) => {
            println!(
                "anquan-sim load: sent {} frames in {:.1} s = {:.0} frames/s (target {:.0}, {:.0} %); \
                 {} acknowledged by the broker{}; all done after {:.1} s",
                r.sent,
                r.send_s,
                r.achieved_rate(),
                r.target_rate,
                100.0 * r.achieved_rate() / r.target_rate.max(1e-9),
                r.acked,
                r.handled
                    .map(|h| format!(
                        ", {h} committed by the gateway ({:.0} frames/s end to end)",
                        h as f64 / r.total_s.max(1e-9)
                    ))
                    .unwrap_or_default(),
                r.total_s
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("anquan-sim load: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
