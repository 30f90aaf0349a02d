//! Running a scenario against a gateway.
//!
//! * **In process** (default): the gateway's embedded broker and the
//!   gateway itself, on a simulated clock that this loop moves one step
//!   (1 s) at a time. Before moving on it waits until the gateway has
//!   handled every message of the step, and when a device is due for an
//!   offline alarm (a shadow of the rule engine, [`crate::judge`], says
//!   when, working hours and planned power-offs included) it also waits
//!   for the gateway's offline check to have run at the new time; so a run
//!   is deterministic at any speed, and as fast as the gateway commits
//!   (`--as-fast-as-possible`, the default) or paced to `--speed N` times
//!   real time.
//! * **Engine only** ([`run_engine`]): the same messages judged by the
//!   rule engine alone ([`crate::judge`]), no gateway: for long runs.
//! * **External broker** (`--broker host:port`): the frames go to that
//!   broker in real time or `--speed N` times faster, for a gateway running
//!   separately (on its own, real clock); the alarms it publishes on
//!   `alarms/#` are collected. Device time stamps are moved to the real
//!   clock so the gateway does not flag them as skewed.
//! * **External broker, driven clock** (`--broker host:port
//!   --drive-clock`, for a gateway started with `[lab] clock = "driven"`,
//!   see `anquan_gateway::lab`): the gateway's clock follows the
//!   scenario's. Before each simulated second that has frames, or at which
//!   the shadow engine expects an offline alarm, a tick moves the
//!   gateway's clock to it, naming how many device messages went before;
//!   the frames of that second go out only once the gateway has
//!   acknowledged the tick. So every frame is judged at its own simulated
//!   second and the offline checks run at the same seconds as in process,
//!   whatever the broker's ordering across topics: the alarms are the same
//!   as in process, at any speed (as fast as possible by default). Device
//!   time stamps stay the scenario's. One run per gateway start (its
//!   driven clock never goes back).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anquan_gateway::lab::{self, Tick, TickAck};
use anquan_gateway::{Clock, Config, Gateway, GatewayHandle};
use anquan_protocol::{AlarmEvent, GATEWAY_SUBSCRIPTIONS, Telemetry, Topic, TopicKind};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};

use crate::device::{Fleet, Outgoing};
use crate::judge::Judge;
use crate::scenario::Scenario;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Simulated seconds per real second; `None`: as fast as possible (in
    /// process) or real time (external broker).
    pub speed: Option<f64>,
    /// External broker `host:port`; `None`: in process.
    pub broker: Option<String>,
    /// Print alarms as they arrive.
    pub print: bool,
    /// After the last step, how long to wait for late alarms from an
    /// external gateway, s of real time.
    pub linger_s: f64,
    /// External broker: drive the gateway's clock along the scenario's
    /// (`[lab] clock = "driven"` on the gateway).
    pub drive_clock: bool,
}

/// An alarm that arrived, with its scenario time.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Seconds since the scenario's start.
    pub t_s: f64,
    /// The event.
    pub event: AlarmEvent,
}

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Alarms, in arrival order.
    pub alarms: Vec<Observed>,
    /// Messages published to the broker.
    pub messages: u64,
    /// Simulated seconds.
    pub simulated_s: u64,
    /// Wall time, s.
    pub wall_s: f64,
}

/// A manual clock that counts how often it is read: after the gateway has
/// handled every message, the only reader left is its offline check, so
/// two reads after a change mean one whole check ran at the new time.
#[derive(Debug, Default)]
struct CountingClock {
    ms: AtomicU64,
    reads: AtomicU64,
}

impl Clock for CountingClock {
    fn now_ms(&self) -> u64 {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.ms.load(Ordering::SeqCst)
    }
}

/// One line for an alarm.
pub fn format_alarm(o: &Observed) -> String {
    let e = &o.event;
    format!(
        "t={:>6.0}s  {:<12} {:<22} {:<10} {:<6} value {:>9.3} threshold {:>8.3}",
        o.t_s,
        e.device.as_str(),
        e.rule.as_str(),
        e.state.as_str(),
        e.level.as_str(),
        e.value,
        e.threshold
    )
}

/// Runs `scenario` on a runtime of its own.
pub fn run_blocking(scenario: &Scenario, opts: &RunOptions) -> Result<RunReport, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run(scenario, opts))
}

/// Runs `scenario` as `opts` say.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunReport, String> {
    match &opts.broker {
        None => run_in_process(scenario, opts).await,
        Some(b) if opts.drive_clock => run_driven(scenario, b, opts).await,
        Some(b) => run_external(scenario, b, opts).await,
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn gateway_config(
    dir: &std::path::Path,
    port: u16,
    rules: &std::path::Path,
) -> Result<Config, String> {
    Config::parse(&format!(
        r#"
[gateway]
id = "gw-sim"
data_dir = "{}"

[broker]
enabled = true
listen = "127.0.0.1:{port}"

[sink]
type = "file"
flush_interval_ms = 200

[forward.mqtt]
enabled = false

[rules]
file = "{}"
watch_interval_ms = 0
offline_tick_ms = 10

[api]
listen = ""
"#,
        dir.display(),
        rules.display()
    ))
    .map_err(|e| e.to_string())
}

async fn wait_handled(gw: &GatewayHandle, sent: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while gw.messages_handled() < sent {
        if Instant::now() > deadline {
            return Err(format!(
                "the gateway handled {} of {sent} messages in 60 s",
                gw.messages_handled()
            ));
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    Ok(())
}

async fn wait_reads(clock: &CountingClock, from: u64, n: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while clock.reads.load(Ordering::SeqCst) < from + n {
        if Instant::now() > deadline {
            return Err("the gateway's offline check did not run within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn pace(started: Instant, t_ms: u64, speed: Option<f64>) {
    if let Some(s) = speed.filter(|s| *s > 0.0) {
        let due = started + Duration::from_secs_f64(t_ms as f64 / 1000.0 / s);
        let now = Instant::now();
        if due > now {
            tokio::time::sleep(due - now).await;
        }
    }
}

async fn run_in_process(scenario: &Scenario, opts: &RunOptions) -> Result<RunReport, String> {
    let mut fleet = Fleet::new(scenario)?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rules = tmp.path().join("rules.toml");
    std::fs::write(&rules, &scenario.rules_toml).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let start_ms = fleet.start_ms;
    let clock = Arc::new(CountingClock::default());
    clock.ms.store(start_ms, Ordering::SeqCst);
    let gw = Gateway::start_with_clock(gateway_config(tmp.path(), port, &rules)?, clock.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut alarms = gw.subscribe_alarms();
    if !gw.wait_subscribed(Duration::from_secs(30)).await {
        return Err("the gateway did not subscribe to the embedded broker within 30 s".into());
    }
    let mut mqtt = MqttOptions::new("anquan-sim-run", "127.0.0.1", port);
    mqtt.set_keep_alive(Duration::from_secs(60));
    mqtt.set_max_packet_size(64 * 1024, 64 * 1024);
    let (client, mut eventloop) = AsyncClient::new(mqtt, 1024);
    let poller = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });

    let mut shadow = Judge::new(scenario)?;
    let started = Instant::now();
    let mut report = RunReport::default();
    let mut sent = 0u64;
    while !fleet.done() {
        let t = fleet.t_ms;
        let now = start_ms + t;
        clock.ms.store(now, Ordering::SeqCst);
        // The offline check at `t` runs before the frames of `t` are
        // handled: a device silent for exactly the offline delay is
        // offline, whatever the race between the gateway's timer and
        // these frames would otherwise say. The shadow engine says when.
        if !shadow.tick(now).is_empty() {
            let reads = clock.reads.load(Ordering::SeqCst);
            wait_reads(&clock, reads, 2).await?;
        }
        let out = fleet.step();
        let n = out.len();
        for o in out {
            shadow.feed(&o, now);
            publish(&client, &o, o.payload.clone()).await?;
            sent += 1;
        }
        if n > 0 {
            wait_handled(&gw, sent).await?;
        }
        while let Ok(e) = alarms.try_recv() {
            let o = Observed {
                t_s: e.ts_ms.saturating_sub(start_ms) as f64 / 1000.0,
                event: e,
            };
            if opts.print {
                println!("{}", format_alarm(&o));
            }
            report.alarms.push(o);
        }
        pace(started, t, opts.speed).await;
    }
    report.messages = sent;
    report.simulated_s = fleet.end_ms / 1000;
    let _ = client.disconnect().await;
    poller.abort();
    gw.shutdown().await;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn publish(client: &AsyncClient, o: &Outgoing, payload: Vec<u8>) -> Result<(), String> {
    client
        .publish(o.topic.as_str(), QoS::AtLeastOnce, o.retain, payload)
        .await
        .map_err(|e| e.to_string())
}

/// `host:port` → parts.
pub fn parse_broker(b: &str) -> Result<(String, u16), String> {
    let (h, p) = b
        .rsplit_once(':')
        .ok_or_else(|| format!("--broker {b}: expected host:port"))?;
    let p = p.parse().map_err(|_| format!("--broker {b}: bad port"))?;
    Ok((h.to_string(), p))
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A connection to an external broker: the alarms a gateway publishes on
/// `alarms/#` and, when driving its clock, its answers to the ticks.
struct External {
    client: AsyncClient,
    poller: tokio::task::JoinHandle<()>,
    alarms: tokio::sync::mpsc::UnboundedReceiver<AlarmEvent>,
    acks: tokio::sync::mpsc::UnboundedReceiver<TickAck>,
    /// Alarm events received, for any site.
    seen: u64,
}

impl External {
    async fn connect(broker: &str, drive_clock: bool) -> Result<Self, String> {
        let (host, port) = parse_broker(broker)?;
        let mut mqtt = MqttOptions::new(format!("anquan-sim-{}", std::process::id()), host, port);
        mqtt.set_keep_alive(Duration::from_secs(30));
        mqtt.set_max_packet_size(64 * 1024, 64 * 1024);
        let (client, eventloop) = AsyncClient::new(mqtt, 1024);
        // No Nagle: a tick written after the frames must not wait for their
        // TCP acknowledgement (up to 40 ms per simulated second).
        let mut eventloop = anquan_gateway::ingest::no_delay(eventloop);
        let (tx, alarms) = tokio::sync::mpsc::unbounded_channel();
        let (ack_tx, acks) = tokio::sync::mpsc::unbounded_channel();
        let (conn_tx, mut conn_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
        let poller = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = conn_tx.send(Ok(()));
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if p.topic == lab::ACK_TOPIC {
                            if let Some(a) = TickAck::decode(&p.payload) {
                                let _ = ack_tx.send(a);
                            }
                        } else if let Ok(e) = AlarmEvent::decode(&p.payload) {
                            let _ = tx.send(e);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = conn_tx.send(Err(e.to_string()));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        let mut subs = vec![SubscribeFilter::new("alarms/#".into(), QoS::AtLeastOnce)];
        if drive_clock {
            subs.push(SubscribeFilter::new(
                lab::ACK_TOPIC.into(),
                QoS::AtLeastOnce,
            ));
        }
        client
            .subscribe_many(subs)
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(10), conn_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(format!("broker {broker}: {e}")),
            _ => return Err(format!("broker {broker}: no SUBACK within 10 s")),
        }
        Ok(Self {
            client,
            poller,
            alarms,
            acks,
            seen: 0,
        })
    }

    /// Takes the alarms that arrived for `scenario`'s site and devices (the
    /// broker may carry others); `t_s` gives an alarm's scenario time.
    fn collect(
        &mut self,
        scenario: &Scenario,
        t_s: impl Fn(&AlarmEvent) -> f64,
        print: bool,
        report: &mut RunReport,
    ) {
        while let Ok(e) = self.alarms.try_recv() {
            self.keep(scenario, e, &t_s, print, report);
        }
    }

    /// Counts an alarm event and keeps it if it is `scenario`'s.
    fn keep(
        &mut self,
        scenario: &Scenario,
        e: AlarmEvent,
        t_s: &impl Fn(&AlarmEvent) -> f64,
        print: bool,
        report: &mut RunReport,
    ) {
        self.seen += 1;
        if e.site.as_str() != scenario.spec.site
            || !scenario
                .spec
                .devices
                .iter()
                .any(|d| d.id == e.device.as_str())
        {
            return;
        }
        let o = Observed {
            t_s: t_s(&e),
            event: e,
        };
        if print {
            println!("{}", format_alarm(&o));
        }
        report.alarms.push(o);
    }

    async fn close(self) {
        let _ = self.client.disconnect().await;
        self.poller.abort();
    }
}

async fn run_external(
    scenario: &Scenario,
    broker: &str,
    opts: &RunOptions,
) -> Result<RunReport, String> {
    let speed = opts.speed.filter(|s| *s > 0.0).unwrap_or(1.0);
    let mut fleet = Fleet::new(scenario)?;
    let mut ext = External::connect(broker, false).await?;
    let started = Instant::now();
    let wall_start = wall_ms();
    // Scenario ms → the wall-clock ms at which it is sent.
    let to_wall = move |t_ms: u64| wall_start + (t_ms as f64 / speed) as u64;
    let t_s = |e: &AlarmEvent| e.ts_ms.saturating_sub(wall_start) as f64 * speed / 1000.0;
    let mut report = RunReport::default();
    while !fleet.done() {
        let t = fleet.t_ms;
        pace(started, t, Some(speed)).await;
        for o in fleet.step() {
            let mut payload = o.payload.clone();
            if let Ok(Topic::Device {
                kind: TopicKind::Telemetry | TopicKind::Event,
                ..
            }) = Topic::parse(&o.topic)
                && let Ok(mut f) = Telemetry::decode(&payload)
            {
                // Device time on the real clock, skew kept.
                let skew = f.ts_ms as i64 - (fleet.start_ms + t) as i64;
                f.ts_ms = to_wall(t).saturating_add_signed(skew);
                if let Ok(v) = f.to_vec() {
                    payload = v.to_vec();
                }
            }
            publish(&ext.client, &o, payload).await?;
            report.messages += 1;
        }
        ext.collect(scenario, t_s, opts.print, &mut report);
    }
    let linger = Duration::from_secs_f64(opts.linger_s.max(0.0));
    tokio::time::sleep(linger).await;
    ext.collect(scenario, t_s, opts.print, &mut report);
    ext.close().await;
    report.simulated_s = fleet.end_ms / 1000;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Whether the gateway subscribes to `topic` (its device topics): what it
/// counts for the ticks' frame counts.
fn gateway_hears(topic: &str) -> bool {
    GATEWAY_SUBSCRIPTIONS.iter().any(|filter| {
        let (mut f, mut t) = (filter.split('/'), topic.split('/'));
        loop {
            match (f.next(), t.next()) {
                (None, None) => return true,
                (Some("+"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                _ => return false,
            }
        }
    })
}

/// How long the driver waits for the gateway to acknowledge a tick.
const TICK_TIMEOUT: Duration = Duration::from_secs(30);

/// Moves the gateway's clock to `now_ms` after the `frames` device
/// messages published so far, and waits for its acknowledgement.
async fn drive_to(ext: &mut External, now_ms: u64, frames: u64) -> Result<TickAck, String> {
    let tick = Tick { now_ms, frames };
    ext.client
        .publish(lab::TICK_TOPIC, QoS::AtLeastOnce, false, tick.encode())
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + TICK_TIMEOUT;
    loop {
        let ack = match tokio::time::timeout_at(deadline, ext.acks.recv()).await {
            Ok(Some(a)) => a,
            Ok(None) => return Err("the broker connection ended".into()),
            Err(_) => {
                return Err(format!(
                    "the gateway did not acknowledge the clock tick to {now_ms} (after {frames} device messages) within {} s: \
                     is it running with [lab] clock = \"driven\" on this broker, and did every message reach it?",
                    TICK_TIMEOUT.as_secs()
                ));
            }
        };
        if let Some(why) = ack.rejected {
            return Err(format!(
                "the gateway refused the clock tick to {now_ms}: {why} (its clock is at {}; a driven gateway serves one run per start)",
                ack.now_ms
            ));
        }
        // The answer to a tick comes once the gateway has received at
        // least its frames: anything less answers an earlier tick.
        if ack.now_ms < now_ms || ack.frames < frames {
            continue;
        }
        if ack.frames != frames {
            return Err(format!(
                "the gateway received {} device messages before the tick to {now_ms}, this run published {frames}: \
                 another publisher on the broker? The result would depend on timing",
                ack.frames
            ));
        }
        return Ok(ack);
    }
}

/// The first tick, repeated until the gateway answers: it may not have
/// subscribed yet (a tick nobody subscribes to is lost).
async fn drive_first(ext: &mut External, now_ms: u64) -> Result<(), String> {
    let give_up = tokio::time::Instant::now() + TICK_TIMEOUT;
    let tick = Tick { now_ms, frames: 0 };
    loop {
        ext.client
            .publish(lab::TICK_TOPIC, QoS::AtLeastOnce, false, tick.encode())
            .await
            .map_err(|e| e.to_string())?;
        let retry = (tokio::time::Instant::now() + Duration::from_millis(250)).min(give_up);
        while let Ok(Some(ack)) = tokio::time::timeout_at(retry, ext.acks.recv()).await {
            if let Some(why) = ack.rejected {
                return Err(format!(
                    "the gateway refused the first clock tick ({now_ms}): {why} (its clock is at {}; restart it for a new driven run)",
                    ack.now_ms
                ));
            }
            if ack.now_ms == now_ms {
                if ack.frames != 0 {
                    return Err(format!(
                        "the gateway had received {} device messages before this run: restart it (and use a broker of its own) for a driven run",
                        ack.frames
                    ));
                }
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(format!(
                "no answer to the clock tick on {} within {} s: is a gateway with [lab] clock = \"driven\" connected to this broker?",
                lab::TICK_TOPIC,
                TICK_TIMEOUT.as_secs()
            ));
        }
    }
}

async fn run_driven(
    scenario: &Scenario,
    broker: &str,
    opts: &RunOptions,
) -> Result<RunReport, String> {
    let mut fleet = Fleet::new(scenario)?;
    let mut shadow = Judge::new(scenario)?;
    let start_ms = fleet.start_ms;
    let mut ext = External::connect(broker, true).await?;
    drive_first(&mut ext, start_ms).await?;
    let started = Instant::now();
    let t_s = |e: &AlarmEvent| e.ts_ms.saturating_sub(start_ms) as f64 / 1000.0;
    let mut report = RunReport::default();
    // Device messages published, as the gateway counts them.
    let mut heard = 0u64;
    let mut driven_to = start_ms;
    while !fleet.done() {
        let t = fleet.t_ms;
        let now = start_ms + t;
        // As in process: the offline checks at `t` run before the frames of
        // `t` are judged; the shadow engine says when one is due.
        let due = !shadow.tick(now).is_empty();
        let out = fleet.step();
        if due || !out.is_empty() {
            drive_to(&mut ext, now, heard).await?;
            driven_to = now;
        }
        for o in out {
            shadow.feed(&o, now);
            publish(&ext.client, &o, o.payload.clone()).await?;
            report.messages += 1;
            heard += u64::from(gateway_hears(&o.topic));
        }
        ext.collect(scenario, t_s, opts.print, &mut report);
        pace(started, t, opts.speed).await;
    }
    // A last tick, at the same time, after every message: once it is
    // acknowledged the gateway has judged them all and says how many alarm
    // events it raised; wait for those (at most `linger_s`).
    let last = drive_to(&mut ext, driven_to, heard).await?;
    let linger = Duration::from_secs_f64(opts.linger_s.max(0.0));
    let deadline = tokio::time::Instant::now() + linger;
    ext.collect(scenario, t_s, opts.print, &mut report);
    while ext.seen < last.alarms {
        match tokio::time::timeout_at(deadline, ext.alarms.recv()).await {
            Ok(Some(e)) => ext.keep(scenario, e, &t_s, opts.print, &mut report),
            _ => {
                let seen = ext.seen;
                ext.close().await;
                return Err(format!(
                    "the gateway raised {} alarm events, {seen} arrived on alarms/# within {} s \
                     (is [forward.mqtt] enabled on the gateway?)",
                    last.alarms, opts.linger_s
                ));
            }
        }
    }
    ext.close().await;
    report.simulated_s = fleet.end_ms / 1000;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Runs `scenario` with the rule engine alone ([`crate::judge`]): each
/// simulated second the offline checks, then that second's messages. No
/// broker, no gateway, no disk: a simulated day of a small site takes a
/// second or two.
pub fn run_engine(scenario: &Scenario, print: bool) -> Result<RunReport, String> {
    let started = Instant::now();
    let mut fleet = Fleet::new(scenario)?;
    let mut judge = Judge::new(scenario)?;
    let start_ms = fleet.start_ms;
    let mut report = RunReport::default();
    let keep = |events: Vec<AlarmEvent>, report: &mut RunReport| {
        for e in events {
            let o = Observed {
                t_s: e.ts_ms.saturating_sub(start_ms) as f64 / 1000.0,
                event: e,
            };
            if print {
                println!("{}", format_alarm(&o));
            }
            report.alarms.push(o);
        }
    };
    while !fleet.done() {
        let now = start_ms + fleet.t_ms;
        keep(judge.tick(now), &mut report);
        for o in fleet.step() {
            report.messages += 1;
            keep(judge.feed(&o, now), &mut report);
        }
    }
    report.simulated_s = fleet.end_ms / 1000;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A scenario's whole message stream, without a broker.
pub fn stream(scenario: &Scenario) -> Result<Vec<Outgoing>, String> {
    let mut fleet = Fleet::new(scenario)?;
    let mut out = Vec::new();
    while !fleet.done() {
        out.extend(fleet.step());
    }
    Ok(out)
}

/// A hash of a scenario's whole message stream (topics, payloads, times),
/// for determinism checks, and the number of messages.
pub fn stream_digest(scenario: &Scenario) -> Result<(u64, u64), String> {
    let mut fleet = Fleet::new(scenario)?;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut n = 0;
    let mut eat = |b: &[u8]| {
        for x in b {
            h = (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    while !fleet.done() {
        for o in fleet.step() {
            eat(&o.t_ms.to_le_bytes());
            eat(o.topic.as_bytes());
            eat(&o.payload);
            eat(&[u8::from(o.retain)]);
            n += 1;
        }
    }
    Ok((h, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_hears_its_device_topics_only() {
        assert!(gateway_hears("sites/s1/devices/gas-1/telemetry"));
        assert!(gateway_hears("sites/s1/devices/gas-1/event"));
        assert!(gateway_hears("sites/s1/devices/gas-1/status"));
        assert!(!gateway_hears("sites/s1/devices/gas-1/command"));
        assert!(!gateway_hears("sites/s1/devices/gas-1/telemetry/x"));
        assert!(!gateway_hears("alarms/s1/gas-1"));
        assert!(!gateway_hears(lab::TICK_TOPIC));
    }
}
