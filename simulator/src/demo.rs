//! The all-in-one demo: embedded broker + in-process gateway + the demo
//! site's four devices publishing real MQTT frames, on a simulated clock
//! that jumps one report period (15 s) at a time as soon as the gateway has
//! committed the previous period's frames. Twenty simulated minutes take
//! about a second. The gateway forwards its alarms over HTTP to the monitor
//! ("六个自动") running in-process on the same clock, which calls the people
//! on duty and, when nobody acknowledges, the next one (叫应).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anquan_gateway::{Config, Gateway, GatewayHandle, ManualClock};
use anquan_protocol::{Id, Readings, Telemetry, Topic, TopicKind};
use rumqttc::{AsyncClient, MqttOptions, QoS};

use crate::DEVICES;

const SITE: &str = "demo-site";
const START_MS: u64 = 1_732_300_000_000;
const PERIOD_S: u64 = 15;

fn config(data_dir: &std::path::Path, port: u16, monitor: &str) -> Result<Config, String> {
    Config::parse(&format!(
        r#"
[gateway]
id = "gw-demo"
data_dir = "{}"

[broker]
enabled = true
listen = "127.0.0.1:{port}"

[sink]
type = "file"
flush_interval_ms = 200

[forward.mqtt]
enabled = true

[forward.http]
url = "{monitor}"
token = "{token}"
# The demo's clocks are simulated and the heartbeat runs on real time: the
# monitor would take the gateway for silent after two simulated minutes.
heartbeat_s = 0

[api]
listen = ""
"#,
        data_dir.display(),
        token = crate::demo_monitor::TOKEN,
    ))
    .map_err(|e| e.to_string())
}

/// A free loopback port for the embedded broker.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Runs the demo; with `web` (an address), the monitor's web UI then stays
/// up there with the demo's accounts until Ctrl-C.
pub fn run(minutes: u64, data_dir: Option<PathBuf>, web: Option<String>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anquan-sim demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(demo(minutes, data_dir, web)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("anquan-sim demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(minutes: u64, data_dir: Option<PathBuf>, web: Option<String>) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = data_dir.unwrap_or_else(|| tmp.path().to_path_buf());
    let port = free_port()?;
    let clock = ManualClock::new(START_MS);
    let monitor = crate::demo_monitor::start(&dir, SITE, clock.clone(), web.as_deref()).await?;
    println!(
        "anquan-sim demo: monitor at {}; SMS, voice calls (Alibaba Cloud) and the site's WeCom group \
         go to the providers' local stand-ins at {} (the real APIs are not reached)",
        monitor.url, monitor.standin.base
    );
    let gw = Gateway::start_with_clock(config(&dir, port, &monitor.url)?, Arc::new(clock.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let mut alarms = gw.subscribe_alarms();
    if !gw.wait_subscribed(Duration::from_secs(30)).await {
        return Err("the gateway did not subscribe to the embedded broker within 30 s".into());
    }

    let mut opts = MqttOptions::new("anquan-sim-demo", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });

    let site = Id::new(SITE).map_err(|e| e.to_string())?;
    println!(
        "anquan-sim demo: site {site}, {} devices reporting every {PERIOD_S} s over MQTT to the embedded broker \
         (127.0.0.1:{port}), gateway gw-demo on a simulated clock, {minutes} simulated minutes",
        DEVICES.len()
    );
    let started = Instant::now();
    let mut sent = 0u64;
    let mut printed = 0u64;
    for step in 0..=(minutes * 60 / PERIOD_S) {
        let t_s = step * PERIOD_S;
        let now = START_MS + t_s * 1000;
        clock.set_ms(now);
        for (id, kind, model) in DEVICES {
            let device = Id::new(id).map_err(|e| e.to_string())?;
            let frame = Telemetry {
                device: device.clone(),
                kind,
                seq: step as u32,
                ts_ms: now,
                readings: model(t_s as f32).into_iter().collect::<Readings>(),
                faults: Default::default(),
                dropped: 0,
            };
            let payload = frame.to_vec().map_err(|e| e.to_string())?;
            let topic = Topic::device_topic(&site, &device, TopicKind::Telemetry);
            client
                .publish(topic.as_str(), QoS::AtLeastOnce, false, payload.to_vec())
                .await
                .map_err(|e| e.to_string())?;
            sent += 1;
        }
        wait_handled(&gw, sent).await?;
        while let Ok(e) = alarms.try_recv() {
            printed += 1;
            let json = e
                .to_vec()
                .ok()
                .and_then(|v| String::from_utf8(v.to_vec()).ok())
                .unwrap_or_default();
            println!(
                "t={:>4}s  {:<10} {:<20} {:<10} {:<6} value {:>8.2} threshold {:>7.2}  {}",
                (e.ts_ms - START_MS) / 1000,
                e.device.as_str(),
                e.rule.as_str(),
                e.state.as_str(),
                e.level.as_str(),
                e.value,
                e.threshold,
                json
            );
        }
        for call in monitor.tick().await? {
            println!("t={t_s:>4}s  {call}");
        }
    }
    // The gateway forwards over HTTP in the background: wait until the
    // monitor has taken every transition.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut taken = monitor.events().await?;
    while taken < printed as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        taken = monitor.events().await?;
    }
    for call in monitor.tick().await? {
        println!("t=end    {call}");
    }
    for line in monitor.summary().await? {
        println!("{line}");
    }
    println!(
        "anquan-sim demo: monitor took {taken} of {printed} alarm transitions (HTTP POST /api/v1/alarms at {})",
        monitor.url
    );
    let _ = client.disconnect().await;
    gw.shutdown().await;
    let points = std::fs::read_to_string(dir.join("points.lp"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    println!(
        "anquan-sim demo: {printed} alarm transitions; {sent} frames through broker and gateway; \
         {points} points in the local sink; {:.1} s of wall time",
        started.elapsed().as_secs_f32()
    );
    if let Some(pw) = &monitor.password {
        serve_web(&monitor, &clock, pw).await?;
    }
    Ok(())
}

/// After the demo: the monitor's web UI stays up, its clock running in
/// real time from where the demo ended (the 叫应 ladder goes on), until
/// Ctrl-C.
async fn serve_web(
    monitor: &crate::demo_monitor::DemoMonitor,
    clock: &ManualClock,
    pw: &str,
) -> Result<(), String> {
    println!(
        "anquan-sim demo: the monitor's web UI stays up: {}/web (Ctrl-C to stop)",
        monitor.url
    );
    for (user, _, _, who) in crate::demo_monitor::USERS {
        println!("anquan-sim demo:   sign in as {user:<6} password {pw}  ({who})");
    }
    println!(
        "anquan-sim demo:   the acknowledgement links in the messages above work once each, as the person they were sent to"
    );
    let from_clock = anquan_gateway::Clock::now_ms(clock);
    let from = Instant::now();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = every.tick() => {
                clock.set_ms(from_clock + from.elapsed().as_millis() as u64);
                for call in monitor.tick().await? {
                    println!("t=web    {call}");
                }
            }
        }
    }
    println!("anquan-sim demo: stopped");
    Ok(())
}

/// Waits until the gateway has committed every frame sent so far.
async fn wait_handled(gw: &GatewayHandle, sent: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while gw.messages_handled() < sent {
        if Instant::now() > deadline {
            return Err(format!(
                "the gateway handled {} of {sent} frames in 30 s",
                gw.messages_handled()
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
