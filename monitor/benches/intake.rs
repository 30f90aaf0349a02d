//! Throughput of alarm intake over HTTP (idempotent duplicates included) and
//! the time of a monthly report over a year of data for 1 000 venues.
//!
//! `cargo bench -p anquan-monitor --bench intake` (SQLite in a temp file);
//! `MONITOR_BENCH_PG=postgres://… cargo bench -p anquan-monitor --bench intake`
//! adds PostgreSQL; `MONITOR_BENCH_ALARMS` (default 2 500) the alarms sent;
//! `MONITOR_BENCH_CLIENTS` (default 8) sets the number of
//! concurrent senders. Results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use anquan_monitor::clock::ManualClock;
use anquan_monitor::{App, Config};

const T0: i64 = 1_794_268_800_000;

/// CPU time of this process so far (user + system), seconds: on a shared
/// machine wall time swings with other load, CPU per event much less.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 here;
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time so far of this process's threads named `bench-client` (the
/// HTTP senders' runtime), seconds: subtracted from [`cpu_secs`] it leaves
/// the monitor's share.
fn client_cpu_secs() -> f64 {
    let mut total = 0.0;
    for t in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(bench-client") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        total += (ticks(11) + ticks(12)) / 100.0;
    }
    total
}

/// The runtime the HTTP senders run on (threads named `bench-client`), so
/// their CPU can be told apart from the monitor's.
fn client_runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-client")
            .enable_all()
            .build()
            .unwrap()
    })
}

fn config(url: &str) -> Config {
    Config::parse(&format!(
        r#"
[database]
url = "{url}"
max_connections = 16
[auth]
intake_tokens = ["gateway-token-1"]
api_tokens = ["operator-token-1"]
# One token sends everything here: no per-token rate limit.
intake_per_token_per_s = 0
[notify.webhook]
secret = "bench-webhook-secret-0123"
[[seed.regions]]
id = "city"
name = "City"
tier = "city"
[[seed.regions]]
id = "county"
name = "County"
tier = "county"
parent_id = "city"
[[seed.people]]
id = "duty"
name = "Duty"
role = "safety_officer"
region_id = "county"
webhook = "http://127.0.0.1:9/x"
[[seed.duty]]
person_id = "duty"
role = "safety_officer"
region_id = "county"
# The county's duty officer: informed of each red (the last-mile policy).
[[seed.duty]]
person_id = "duty"
role = "duty_officer"
region_id = "county"
"#
    ))
    .unwrap()
}

fn events(keys: usize, venues: usize, run: &str) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    for k in 0..keys {
        let v = format!("v{}", k % venues);
        for (n, (state, level)) in [
            ("raised", "yellow"),
            ("escalated", "red"),
            ("downgraded", "orange"),
            ("cleared", "orange"),
        ]
        .iter()
        .enumerate()
        {
            let e = format!(
                r#"{{"event_id":"gw/{v}/dev-{run}{k}/gas.lel/{n}","site":"{v}","device":"dev-{run}{k}","kind":"gas","rule":"gas.lel","level":"{level}","state":"{state}","value":55.0,"threshold":50.0,"ts_ms":{T0},"gateway":"gw"}}"#
            );
            out.push((k, e.into_bytes()));
        }
    }
    // 25 % duplicates (redeliveries), interleaved.
    let dups: Vec<(usize, Vec<u8>)> = out.iter().step_by(3).cloned().collect();
    let mut all = Vec::with_capacity(out.len() + dups.len());
    let mut d = dups.into_iter();
    for (i, e) in out.into_iter().enumerate() {
        all.push(e);
        if i % 3 == 2
            && let Some(x) = d.next()
        {
            all.push(x);
        }
    }
    all
}

/// Intake over HTTP into a fresh monitor on `url`; returns events/s.
/// `fast`: the batch fast path (one duplicate lookup per batch, no
/// savepoint per event) on or off. `run` keeps event ids apart when two
/// runs share a database (PostgreSQL).
async fn intake(name: &str, url: &str, full: bool, fast: bool, run: &str) -> (App, f64) {
    let venues: usize = if full { 1000 } else { 10 };
    let clock = Arc::new(ManualClock::new(T0));
    let app = App::new(config(url), clock.clone()).await.unwrap();
    app.intake.set_fast_path(fast);
    {
        let mut tx = app.db.begin().await.unwrap();
        for i in 0..venues {
            anquan_monitor::registry::put_venue(
                &mut tx,
                &anquan_monitor::registry::Venue {
                    id: format!("v{i}"),
                    name: format!("Venue {i}"),
                    sector: "hotel".into(),
                    address: "x".into(),
                    lat: None,
                    lon: None,
                    datum: Default::default(),
                    region_id: "county".into(),
                    site: None,
                    grid_id: None,
                },
            )
            .await
            .unwrap();
            // Each venue's safety officer: called at once (the policy).
            anquan_monitor::registry::put_venue_person(
                &mut tx,
                &anquan_monitor::registry::VenuePerson {
                    venue_id: format!("v{i}"),
                    person_id: "duty".into(),
                    role: "safety_officer".into(),
                    rank: 0,
                },
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1/alarms", l.local_addr().unwrap());
    let router = anquan_monitor::http::router(app.clone());
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    // MONITOR_BENCH_ALARMS (default 2 500; 4 transitions each plus 25 %
    // duplicates) makes a longer, sustained run.
    let alarms: usize = std::env::var("MONITOR_BENCH_ALARMS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2500);
    let evs = Arc::new(events(if full { alarms } else { 25 }, venues, run));
    let n = evs.len();
    let clients: usize = std::env::var("MONITOR_BENCH_CLIENTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(8);
    let started = Instant::now();
    let cpu0 = cpu_secs();
    let client0 = client_cpu_secs();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let evs = evs.clone();
        let base = base.clone();
        tasks.push(client_runtime().spawn(async move {
            let http = reqwest::Client::new();
            // Like gateways: one alarm's transitions in order, from one
            // sender.
            for (k, e) in evs.iter() {
                if k % clients != c {
                    continue;
                }
                let r = http
                    .post(&base)
                    .bearer_auth("gateway-token-1")
                    .body(e.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_us = (cpu_secs() - cpu0) * 1e6 / n as f64;
    let client_us = (client_cpu_secs() - client0) * 1e6 / n as f64;
    println!(
        "{name}: intake CPU per event: {cpu_us:.0} µs in all, {:.0} µs the monitor, {client_us:.0} µs the HTTP clients",
        cpu_us - client_us
    );
    let rate = n as f64 / secs;
    println!(
        "{name}: intake {n} events (25 % duplicates) over HTTP, {clients} clients (each alarm in order from one client), fast path {}: {secs:.2} s = {rate:.0} events/s",
        if fast { "on" } else { "off" }
    );
    (app, rate)
}

async fn run(name: &str, urls: [&str; 2], full: bool) {
    let venues: usize = if full { 1000 } else { 10 };
    let rounds: usize = std::env::var("MONITOR_BENCH_ROUNDS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let mut app = None;
    for round in 0..rounds {
        // Same machine, same minute: compare the ratio, not the figures
        // across runs.
        let (_, off) = intake(name, urls[0], full, false, &format!("r{round}off")).await;
        let (a, on) = intake(name, urls[1], full, true, &format!("r{round}on")).await;
        println!(
            "{name}: round {round}: fast path on / off = {:.2}",
            on / off
        );
        app = Some(a);
    }
    let Some(app) = app else { return };

    // A year of data for 1 000 venues: 12 warnings, 12 done inspections and
    // 2 hazards per venue.
    let started = Instant::now();
    let mut tx = app.db.begin().await.unwrap();
    for v in 0..venues {
        for m in 0..12i64 {
            let t = T0 - m * 30 * 86_400_000;
            sqlx::query("INSERT INTO warnings (id, alarm_key, venue_id, region_id, site, device, kind, rule, level, max_level, state, clearable, false_alarm, raised_ms, acked_ms, acked_by, resolved_ms, ladder_step, ack_due_ms, updated_ms) VALUES ($1, $2, $3, 'county', $3, 'd', 'gas', 'gas.lel', 'red', 'red', 'RESOLVED', 1, 0, $4, $5, 'duty', $6, 0, NULL, $4)")
                .bind(format!("y-{v}-{m}")).bind(format!("y-{v}-{m}")).bind(format!("v{v}")).bind(t).bind(t + 60_000).bind(t + 3_600_000)
                .execute(&mut *tx).await.unwrap();
            sqlx::query("INSERT INTO tasks (id, kind, title, venue_id, region_id, warning_id, level, assignee_id, state, due_ms, evidence, created_ms, done_ms, updated_ms) VALUES ($1, 'inspection', 't', $2, 'county', NULL, NULL, 'duty', 'DONE', $3, 'e', $3, $3, $3)")
                .bind(format!("t-{v}-{m}")).bind(format!("v{v}")).bind(t)
                .execute(&mut *tx).await.unwrap();
        }
        for k in 0..2i64 {
            let t = T0 - k * 90 * 86_400_000;
            sqlx::query("INSERT INTO hazards (id, venue_id, region_id, category, title, source, source_ref, severity, state, owner_id, problem, measures, standard, responsibility, funds, plan, acceptance_unit, acceptance_record, signer, interim_watcher, penalty_case, due_ms, created_ms, closed_ms, reopened, updated_ms) VALUES ($1, $2, 'county', 'c', 't', 'inspection', $3, 'general', 'CLOSED', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, $4, $4, $4, 0, $4)")
                .bind(format!("h-{v}-{k}")).bind(format!("v{v}")).bind(format!("t-{v}-{k}")).bind(t)
                .execute(&mut *tx).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    println!(
        "{name}: loaded a year of data for {venues} venues in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut c = app.db.acquire().await.unwrap();
    let started = Instant::now();
    let m = anquan_monitor::reports::monthly(&mut c, "city", "2026-11")
        .await
        .unwrap();
    let html = m.html();
    println!(
        "{name}: monthly report ({venues} venues, {} alarms in the month) in {:.0} ms ({} bytes of HTML)",
        m.alarms,
        started.elapsed().as_secs_f64() * 1000.0,
        html.len()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small
    // smoke version.
    let full = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Each intake run gets its own file, so the second does not start
    // with the first one's rows.
    let off = format!("sqlite://{}/bench-off.db?mode=rwc", dir.path().display());
    let on = format!("sqlite://{}/bench-on.db?mode=rwc", dir.path().display());
    rt.block_on(run("sqlite", [&off, &on], full));
    if let Ok(url) = std::env::var("MONITOR_BENCH_PG") {
        rt.block_on(run("postgres", [&url, &url], full));
    }
}
