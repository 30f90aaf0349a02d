//! The city-scale alarm storm, measured (issue 22 item 4). A benchmark,
//! not a test: it prints figures and asserts nothing.
//!
//! One run starts its own PostgreSQL, two replicas of the real
//! `anquan-monitor` binary (`serve`, child processes) on that database,
//! the providers' stand-ins (`anquan_monitor::notify::standin`: Alibaba
//! Cloud SMS and voice) and a webhook receiver in this process, and
//! simulates the gateways of a city (default: 200 gateways, one site each,
//! 1 000 000 devices). Each simulated gateway posts what a real one posts
//! (`anquan_gateway::forward::http`): a heartbeat every `heartbeat_s`, and
//! alarm events of the wire contract one per request, up to `concurrency`
//! requests in flight (the gateway's default 128), red first, retried after
//! a doubling backoff (100 ms to 30 s) on 429, 5xx, timeouts (5 s) and
//! refused connections, dead-lettered on 400/409/413/422. Gateway `i`
//! talks to replica `i mod 2` (a load balancer's share).
//!
//! 1. Baseline: red gas alarms (`gas.lel`) at sites of their own, one
//!    every half second, nothing else happening: alarm → first call at a
//!    channel server, per alarm. Each is acknowledged a few seconds after
//!    its first call (by its venue's safety officer, operator token).
//! 2. Storm: at `t = 0` the power fails at `cut_sites` sites: every device
//!    there goes offline at once (each raises its kind's default offline
//!    rule, `gas.offline` … `crane.offline`, event id
//!    `{gateway}/{site}/{device}/{rule}/1`); the gateway stays on its UPS
//!    and keeps beating (`--gateway-on-mains`: it dies with them, no more
//!    heartbeats and no events). Within the first `window_s` seconds,
//!    `reds` independent red alarms at other sites. Measured the same way.
//!
//! Then it reports: red alarm → first call (min, median, p90, max; both
//! phases; the ratio), the intake (offline events taken per second, the
//! answers), warnings opened (total, per cut site, and those that called
//! or told anyone), messages per person at the channel servers and queued
//! in the database, each replica's CPU and RSS (and PostgreSQL's), and the
//! verdict against the issue's targets. The monitor runs on the real clock
//! (the binary has no other), so the storm runs in real time; a monitor that
//! cannot take the storm within `max_storm_s` is cut off there and the
//! report says how far it got.
//!
//! ```sh
//! cargo build --release -p anquan-monitor --bin anquan-monitor -p anquan-e2e --bin storm-bench
//! ./target/release/storm-bench            # the issue's sizes; --small for a quick run; --help
//! ```

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anquan_e2e::pg::Postgres;
use anquan_e2e::services::{free_port, terminate};
use anquan_e2e::storm::{
    MonitorConfig, OfflineRule, Person, Plan, RedRule, Rng, Role, Site, Sizes, Summary,
    offline_event, offline_rules, red_event, red_offsets, red_rule,
};
use anquan_monitor::notify::standin::{Credentials, Standin};
use bytes::Bytes;
use clap::Parser;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "storm-bench",
    about = "A city-scale alarm storm against two anquan-monitor replicas on PostgreSQL (issue 22 item 4)"
)]
struct Args {
    /// A quick run: 20 gateways, 20 000 devices, 5 cut sites, 5 + 5 red
    /// alarms, a 20 s window, at most 120 s of storm, 30 s tail (explicit
    /// flags still override).
    #[arg(long)]
    small: bool,
    /// Simulated gateways, one site each [200].
    #[arg(long)]
    gateways: Option<u32>,
    /// Devices in total, spread evenly [1000000].
    #[arg(long)]
    devices: Option<u64>,
    /// Sites whose power is cut [50].
    #[arg(long)]
    cut_sites: Option<u32>,
    /// Independent red alarms during the storm [20].
    #[arg(long)]
    reds: Option<u32>,
    /// Red alarms of the baseline, with no storm [20]; 0 skips it.
    #[arg(long)]
    baseline_reds: Option<u32>,
    /// The storm's red alarms fall within this many seconds of the cut [60].
    #[arg(long)]
    window_s: Option<u64>,
    /// Give up posting the cut's events this many seconds after the cut
    /// (the report says how many the monitor took) [420].
    #[arg(long)]
    max_storm_s: Option<u64>,
    /// Keep measuring this long after the storm's events are in (or given
    /// up) [60].
    #[arg(long)]
    tail_s: Option<u64>,
    /// Requests in flight per gateway (the gateway's
    /// forward.http.concurrency).
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Seconds between a gateway's heartbeats (forward.http.heartbeat_s).
    #[arg(long, default_value_t = 30)]
    heartbeat_s: u32,
    /// The cut sites' gateways are on the same power as their devices:
    /// they die (no heartbeat, no events) instead of staying on their UPS.
    #[arg(long)]
    gateway_on_mains: bool,
    /// Seed of the plan (which sites are cut, when the reds come).
    #[arg(long, default_value_t = 22)]
    seed: u64,
    /// The monitor program (default: `anquan-monitor` next to this
    /// program, or $ANQUAN_MONITOR_BIN).
    #[arg(long)]
    monitor_bin: Option<PathBuf>,
    /// TOML appended to both replicas' configuration (whole sections), e.g.
    /// a newer monitor's `[correlation]`.
    #[arg(long)]
    monitor_extra: Option<PathBuf>,
    /// Database connections per replica (database.max_connections).
    #[arg(long, default_value_t = 8)]
    pool: u32,
    /// PostgreSQL with fsync=off (default: on, as in production).
    #[arg(long)]
    pg_no_fsync: bool,
    /// Seconds after a red alarm's first call until its venue's safety
    /// officer acknowledges it.
    #[arg(long, default_value_t = 5)]
    ack_after_s: u64,
    /// "A handful" of messages per person, for the verdict.
    #[arg(long, default_value_t = 5)]
    handful: u64,
    /// Keep the run's directory (configurations, logs, the database).
    #[arg(long)]
    keep: bool,
}

/// The run's settings, flags and `--small` resolved.
#[derive(Debug, Clone)]
struct Settings {
    sizes: Sizes,
    window_s: u64,
    max_storm_s: u64,
    tail_s: u64,
}

impl Args {
    fn settings(&self) -> Settings {
        let base = if self.small {
            Sizes::SMALL
        } else {
            Sizes::ISSUE
        };
        let (w, m, t) = if self.small {
            (20, 120, 30)
        } else {
            (60, 420, 60)
        };
        Settings {
            sizes: Sizes {
                gateways: self.gateways.unwrap_or(base.gateways),
                devices: self.devices.unwrap_or(base.devices),
                cut_sites: self.cut_sites.unwrap_or(base.cut_sites),
                reds: self.reds.unwrap_or(base.reds),
                baseline_reds: self.baseline_reds.unwrap_or(base.baseline_reds),
            },
            window_s: self.window_s.unwrap_or(w),
            max_storm_s: self.max_storm_s.unwrap_or(m),
            tail_s: self.tail_s.unwrap_or(t),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("storm-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storm-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

// ---------------------------------------------------------------------
// What arrives at the channel servers.

/// Which phase a message arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Baseline = 0,
    Storm = 1,
}

/// Every message the channel servers received, counted.
#[derive(Debug, Default)]
struct Arrivals {
    /// Set at the cut: later arrivals count for the storm.
    storm_from: Option<Instant>,
    /// Per person: messages in the baseline, in the storm.
    per_person: HashMap<String, [u64; 2]>,
    /// Per channel: the same.
    per_channel: BTreeMap<&'static str, [u64; 2]>,
    /// The first webhook message per warning (its `subject_id`).
    first_by_subject: HashMap<String, (Instant, &'static str)>,
    /// Calls (purpose `call`) to the people of the red alarms' venues.
    watched_calls: Vec<(Instant, String, &'static str)>,
    /// Those people.
    watched: HashSet<String>,
    /// Arrivals for nobody we know (should stay 0).
    unknown: u64,
}

impl Arrivals {
    fn record(
        &mut self,
        at: Instant,
        person: Option<&str>,
        subject: Option<&str>,
        purpose: &str,
        channel: &'static str,
    ) {
        let phase = match self.storm_from {
            Some(t) if at >= t => Phase::Storm,
            _ => Phase::Baseline,
        } as usize;
        self.per_channel.entry(channel).or_default()[phase] += 1;
        let Some(person) = person else {
            self.unknown += 1;
            return;
        };
        self.per_person.entry(person.to_string()).or_default()[phase] += 1;
        if let Some(s) = subject {
            self.first_by_subject
                .entry(s.to_string())
                .or_insert((at, channel));
        }
        if purpose == "call" && self.watched.contains(person) {
            self.watched_calls.push((at, person.to_string(), channel));
        }
    }
}

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The webhook receiver: `POST /hook/{person}` with the monitor's webhook
/// body; answers 200 and time-stamps it on arrival.
async fn start_webhook(arrivals: Shared<Arrivals>) -> Result<String, String> {
    use axum::extract::{Path as AxPath, State};
    use axum::routing::post;
    async fn hook(
        State(a): State<Shared<Arrivals>>,
        AxPath(person): AxPath<String>,
        body: Bytes,
    ) -> &'static str {
        let at = Instant::now();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let subject = v["subject_id"].as_str();
        let purpose = v["purpose"].as_str().unwrap_or_default();
        lock(&a).record(at, Some(&person), subject, purpose, "webhook");
        "ok"
    }
    let app = axum::Router::new()
        .route("/hook/{person}", post(hook))
        .with_state(arrivals);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("webhook receiver: {e}"))?;
    let addr = l
        .local_addr()
        .map_err(|e| format!("webhook receiver: {e}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    Ok(format!("http://{addr}/hook"))
}

/// Takes what the providers' stand-ins accepted every 10 ms and records it
/// (so an SMS or a voice call is time-stamped to within 10 ms).
fn poll_standin(
    standin: Standin,
    arrivals: Shared<Arrivals>,
    phones: HashMap<String, String>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let got = standin.take();
            if got.is_empty() {
                continue;
            }
            let at = Instant::now();
            let mut a = lock(&arrivals);
            for r in got {
                let channel = match r.provider {
                    "aliyun-sms" | "tencent-sms" => "sms",
                    "aliyun-voice" => "voice",
                    _ => "robot",
                };
                let purpose = r
                    .template
                    .trim_start_matches("SMS_")
                    .trim_start_matches("TTS_")
                    .to_lowercase();
                let phone = r.to.trim_start_matches("+86");
                let person = phones.get(phone).map(String::as_str);
                a.record(at, person, None, &purpose, channel);
            }
        }
    })
}

// ---------------------------------------------------------------------
// The simulated gateways.

/// The red alarms, as they go.
#[derive(Debug, Clone)]
struct Red {
    site: u32,
    phase: Phase,
    /// When the gateway judged it.
    alarm_at: Option<Instant>,
    /// Its first POST.
    posted_at: Option<Instant>,
    /// Its 2xx.
    answered_at: Option<Instant>,
    attempts: u32,
    warning_id: Option<String>,
    /// The first call at a channel server, and which.
    first_call: Option<(Instant, &'static str)>,
    acked: Option<u16>,
}

/// Answers and outcomes of every gateway's requests.
#[derive(Debug, Default)]
struct Counters {
    posts: AtomicU64,
    offline_accepted: AtomicU64,
    offline_duplicates: AtomicU64,
    offline_dead: AtomicU64,
    red_accepted: AtomicU64,
    status_429: AtomicU64,
    status_503: AtomicU64,
    status_5xx: AtomicU64,
    timeouts: AtomicU64,
    connect_errors: AtomicU64,
    rejected: AtomicU64,
    /// ms after the cut of the last offline event taken.
    last_offline_ms: AtomicU64,
    cut_queued: AtomicU64,
    heartbeats_ok: AtomicU64,
    heartbeats_failed: AtomicU64,
}

/// An alarm event waiting at a gateway.
#[derive(Debug)]
struct Pending {
    level: u8,
    seq: u64,
    body: Bytes,
    /// Index into the red alarms.
    red: Option<usize>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.level, self.seq) == (o.level, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    /// Higher level first, then older first (a max-heap).
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.level.cmp(&o.level).then_with(|| o.seq.cmp(&self.seq))
    }
}

/// Orders to a gateway.
#[derive(Debug)]
enum Cmd {
    /// A red alarm judged now.
    Red(usize, Bytes),
    /// The power fails: every device offline (on UPS) or the gateway dead.
    Cut { on_mains: bool },
    /// Give up what is still queued (the storm's time is up).
    Abandon,
}

#[derive(Debug)]
enum Outcome {
    Accepted {
        warning: Option<String>,
        duplicate: bool,
    },
    Retry,
    Dead,
}

/// What every gateway shares.
#[derive(Debug, Clone)]
struct GwCtx {
    counters: Arc<Counters>,
    reds: Shared<Vec<Red>>,
    rules: Arc<Vec<OfflineRule>>,
    concurrency: usize,
    heartbeat_s: u32,
    cut_at: Shared<Option<Instant>>,
    stop: CancellationToken,
}

struct Gateway {
    site: Site,
    url: String,
    client: reqwest::Client,
    powered: Arc<AtomicBool>,
    queued: Arc<AtomicU64>,
}

async fn post_alarm(
    client: reqwest::Client,
    endpoint: String,
    auth: String,
    body: Bytes,
    counters: Arc<Counters>,
) -> Outcome {
    counters.posts.fetch_add(1, Ordering::Relaxed);
    let resp = client
        .post(&endpoint)
        .header(reqwest::header::AUTHORIZATION, &auth)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            if e.is_timeout() {
                counters.timeouts.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.connect_errors.fetch_add(1, Ordering::Relaxed);
            }
            return Outcome::Retry;
        }
    };
    let status = resp.status().as_u16();
    match status {
        200..=204 => {
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            Outcome::Accepted {
                warning: v["warning_id"].as_str().map(str::to_string),
                duplicate: v["duplicate"].as_bool().unwrap_or(false),
            }
        }
        400 | 409 | 413 | 422 => {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            Outcome::Dead
        }
        429 => {
            counters.status_429.fetch_add(1, Ordering::Relaxed);
            Outcome::Retry
        }
        503 => {
            counters.status_503.fetch_add(1, Ordering::Relaxed);
            Outcome::Retry
        }
        _ => {
            counters.status_5xx.fetch_add(1, Ordering::Relaxed);
            Outcome::Retry
        }
    }
}

impl Gateway {
    /// The gateway's alarm drain: a window of `concurrency` requests, red
    /// first, a doubling backoff for the whole drain after a failure (as
    /// `anquan_gateway::drain`).
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Cmd>, ctx: GwCtx, seed: u64) {
        let endpoint = format!("{}/api/v1/alarms", self.url);
        let auth = format!("Bearer {}", self.site.token);
        let mut rng = Rng::new(seed);
        let mut queue: BinaryHeap<Pending> = BinaryHeap::new();
        let mut inflight: JoinSet<(Pending, Outcome)> = JoinSet::new();
        let mut seq = 0u64;
        let mut backoff_ms = 0u64;
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut dead = false;
        loop {
            if retry_at.is_some_and(|t| t <= tokio::time::Instant::now()) {
                retry_at = None;
            }
            while !dead && retry_at.is_none() && inflight.len() < ctx.concurrency {
                let Some(p) = queue.pop() else { break };
                if let Some(i) = p.red {
                    let mut reds = lock(&ctx.reds);
                    if let Some(r) = reds.get_mut(i) {
                        r.posted_at.get_or_insert_with(Instant::now);
                        r.attempts += 1;
                    }
                }
                let (c, e, a, b, k) = (
                    self.client.clone(),
                    endpoint.clone(),
                    auth.clone(),
                    p.body.clone(),
                    ctx.counters.clone(),
                );
                inflight.spawn(async move {
                    let o = post_alarm(c, e, a, b, k).await;
                    (p, o)
                });
            }
            self.queued
                .store((queue.len() + inflight.len()) as u64, Ordering::Relaxed);
            let wait =
                retry_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = ctx.stop.cancelled() => break,
                Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                    let Ok((p, outcome)) = done else { continue };
                    match outcome {
                        Outcome::Accepted { warning, duplicate } => {
                            backoff_ms = 0;
                            if let Some(i) = p.red {
                                ctx.counters.red_accepted.fetch_add(1, Ordering::Relaxed);
                                let mut reds = lock(&ctx.reds);
                                if let Some(r) = reds.get_mut(i) {
                                    r.answered_at.get_or_insert_with(Instant::now);
                                    if r.warning_id.is_none() {
                                        r.warning_id = warning;
                                    }
                                }
                            } else {
                                if duplicate {
                                    ctx.counters.offline_duplicates.fetch_add(1, Ordering::Relaxed);
                                }
                                ctx.counters.offline_accepted.fetch_add(1, Ordering::Relaxed);
                                if let Some(cut) = *lock(&ctx.cut_at) {
                                    ctx.counters.last_offline_ms.fetch_max(
                                        cut.elapsed().as_millis() as u64,
                                        Ordering::Relaxed,
                                    );
                                }
                            }
                        }
                        Outcome::Dead => {
                            if p.red.is_none() {
                                ctx.counters.offline_dead.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Outcome::Retry => {
                            if !dead {
                                queue.push(p);
                            }
                            if retry_at.is_none() {
                                backoff_ms = (backoff_ms * 2).clamp(100, 30_000);
                                let jitter = rng.below(backoff_ms / 2 + 1);
                                retry_at = Some(
                                    tokio::time::Instant::now()
                                        + Duration::from_millis(backoff_ms / 2 + jitter),
                                );
                            }
                        }
                    }
                }
                cmd = rx.recv() => match cmd {
                    None => break,
                    Some(Cmd::Red(i, body)) => {
                        seq += 1;
                        queue.push(Pending { level: 3, seq, body, red: Some(i) });
                    }
                    Some(Cmd::Cut { on_mains: true }) => {
                        // The gateway goes down with its devices: nothing
                        // more leaves it.
                        self.powered.store(false, Ordering::Relaxed);
                        dead = true;
                        queue.clear();
                        inflight.abort_all();
                    }
                    Some(Cmd::Cut { on_mains: false }) => {
                        let ts = wall_ms();
                        for j in 0..self.site.devices {
                            let Ok(ev) = offline_event(&self.site, j, &ctx.rules, ts) else {
                                continue;
                            };
                            let Ok(body) = serde_json::to_vec(&ev) else { continue };
                            seq += 1;
                            queue.push(Pending {
                                level: ev.level as u8,
                                seq,
                                body: Bytes::from(body),
                                red: None,
                            });
                            ctx.counters.cut_queued.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Cmd::Abandon) => {
                        queue.retain(|p| p.red.is_some());
                    }
                },
                _ = tokio::time::sleep_until(wait), if retry_at.is_some() => {}
            }
        }
    }

    /// Heartbeats while powered: the first within 2 s, then every
    /// `heartbeat_s`.
    async fn beat(
        client: reqwest::Client,
        url: String,
        site: Site,
        powered: Arc<AtomicBool>,
        queued: Arc<AtomicU64>,
        ctx: GwCtx,
        first_ms: u64,
    ) {
        let endpoint = format!("{url}/api/v1/gateways/{}/heartbeat", site.gateway);
        let mut next = tokio::time::Instant::now() + Duration::from_millis(first_ms);
        loop {
            tokio::select! {
                _ = ctx.stop.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            if !powered.load(Ordering::Relaxed) {
                return;
            }
            next += Duration::from_secs(u64::from(ctx.heartbeat_s));
            let body = serde_json::json!({
                "sites": [site.id],
                "interval_s": ctx.heartbeat_s,
                "broker_connected": true,
                "buffered": 0,
                "alarms_queued": queued.load(Ordering::Relaxed),
            });
            let ok = client
                .post(&endpoint)
                .bearer_auth(&site.token)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            let c = if ok {
                &ctx.counters.heartbeats_ok
            } else {
                &ctx.counters.heartbeats_failed
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------
// Processes: the replicas, PostgreSQL, their CPU and memory.

/// A monitor replica (child process), stopped on drop.
struct Replica {
    name: &'static str,
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

fn tail_of(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

async fn start_replica(
    name: &'static str,
    bin: &Path,
    dir: &Path,
    config: &str,
    port: u16,
) -> Result<Replica, String> {
    let cfg = dir.join(format!("monitor-{name}.toml"));
    std::fs::write(&cfg, config).map_err(|e| format!("{}: {e}", cfg.display()))?;
    let log = dir.join(format!("monitor-{name}.log"));
    let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut r = Replica {
        name,
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = r.child.try_wait() {
            return Err(format!(
                "replica {name} exited ({st}) while starting; its log:\n{}",
                tail_of(&r.log, 20)
            ));
        }
        if client
            .get(format!("{}/health", r.url))
            .send()
            .await
            .is_ok_and(|x| x.status().is_success())
        {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    terminate(&mut r.child, Duration::from_secs(5));
    Err(format!(
        "replica {name} did not answer /health within 120 s; its log:\n{}",
        tail_of(&r.log, 20)
    ))
}

/// CPU time (user + system) of a process, seconds.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    ticks as f64 / TICKS_PER_S
}

/// Linux USER_HZ.
const TICKS_PER_S: f64 = 100.0;

/// The parent process id.
fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds of a process and its children (PostgreSQL's backends).
fn tree_cpu_s(root: u32) -> f64 {
    let mut total = cpu_s(root);
    if let Ok(d) = std::fs::read_dir("/proc") {
        for e in d.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                && ppid(pid) == Some(root)
            {
                total += cpu_s(pid);
            }
        }
    }
    total
}

/// VmRSS and VmHWM (peak), MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

/// CPU seconds of everything measured, at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    at: Option<Instant>,
    replicas: [f64; 2],
    postgres: f64,
    bench: f64,
}

fn cpu_now(replicas: &[Replica], pg: Option<u32>) -> Cpu {
    let mut c = Cpu {
        at: Some(Instant::now()),
        postgres: pg.map_or(0.0, tree_cpu_s),
        bench: cpu_s(std::process::id()),
        ..Cpu::default()
    };
    for (i, r) in replicas.iter().take(2).enumerate() {
        c.replicas[i] = cpu_s(r.child.id());
    }
    c
}

/// `metric{labels} value` lines of a Prometheus page, summed into `into`.
fn add_metrics(page: &str, into: &mut BTreeMap<String, f64>, max_of: &mut BTreeMap<String, f64>) {
    for l in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, v)) = l.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = v.parse::<f64>() else { continue };
        if !name.starts_with("anquan_monitor_") || name.contains("_bucket{") {
            continue;
        }
        *into.entry(name.to_string()).or_default() += v;
        let m = max_of.entry(name.to_string()).or_default();
        *m = m.max(v);
    }
}

// ---------------------------------------------------------------------
// The run.

struct Bench {
    plan: Plan,
    settings: Settings,
    args: Args,
    gateways: Vec<mpsc::UnboundedSender<Cmd>>,
    queued: Vec<Arc<AtomicU64>>,
    counters: Arc<Counters>,
    reds: Shared<Vec<Red>>,
    arrivals: Shared<Arrivals>,
    cut_at: Shared<Option<Instant>>,
    red_rule: RedRule,
    people: Vec<Person>,
    replicas: Vec<Replica>,
    pg_pid: Option<u32>,
    operator_token: String,
}

fn fmt_s(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |x| format!("{x:.2} s"))
}

impl Bench {
    /// Sends red alarm `i` (of `self.reds`) through its site's gateway now.
    fn raise_red(&self, i: usize, n: u64) -> Result<(), String> {
        let site_ix = lock(&self.reds)
            .get(i)
            .map(|r| r.site)
            .ok_or("no such red")?;
        let site = self
            .plan
            .sites
            .get(site_ix as usize)
            .ok_or("no such site")?;
        let ev = red_event(site, &self.red_rule, n, wall_ms())?;
        let body = serde_json::to_vec(&ev).map_err(|e| e.to_string())?;
        if let Some(r) = lock(&self.reds).get_mut(i) {
            r.alarm_at = Some(Instant::now());
        }
        self.gateways
            .get(site_ix as usize)
            .ok_or("no such gateway")?
            .send(Cmd::Red(i, Bytes::from(body)))
            .map_err(|_| "the gateway stopped".to_string())
    }

    /// Fills in each red alarm's first call from what arrived.
    fn match_calls(&self) {
        let a = lock(&self.arrivals);
        let mut reds = lock(&self.reds);
        for r in reds.iter_mut() {
            let Some(alarm_at) = r.alarm_at else { continue };
            let mut best: Option<(Instant, &'static str)> = None;
            if let Some(w) = &r.warning_id
                && let Some(&(t, ch)) = a.first_by_subject.get(w)
                && t >= alarm_at
            {
                best = Some((t, ch));
            }
            let mine = [
                format!("p-s{:04}-safety", r.site + 1),
                format!("p-s{:04}-principal", r.site + 1),
            ];
            for (t, p, ch) in &a.watched_calls {
                if *t >= alarm_at && mine.contains(p) && best.is_none_or(|(b, _)| *t < b) {
                    best = Some((*t, *ch));
                }
            }
            r.first_call = best;
        }
    }

    /// Acknowledges, as its venue's safety officer, every red alarm whose
    /// first call is `ack_after` old.
    async fn ack_due(&self, client: &reqwest::Client) {
        self.match_calls();
        let due: Vec<(usize, String, u32)> = lock(&self.reds)
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.acked.is_none()
                    && r.first_call.is_some_and(|(t, _)| {
                        t.elapsed() >= Duration::from_secs(self.args.ack_after_s)
                    })
            })
            .filter_map(|(i, r)| r.warning_id.clone().map(|w| (i, w, r.site)))
            .collect();
        let Some(replica) = self.replicas.first() else {
            return;
        };
        for (i, w, site) in due {
            let status = client
                .post(format!("{}/api/v1/warnings/{w}/ack", replica.url))
                .bearer_auth(&self.operator_token)
                .json(&serde_json::json!({
                    "person_id": format!("p-s{:04}-safety", site + 1),
                    "note": "storm-bench: answered the call"
                }))
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            if let Some(r) = lock(&self.reds).get_mut(i) {
                r.acked = Some(status);
            }
        }
    }

    fn reds_of(&self, phase: Phase) -> Vec<Red> {
        lock(&self.reds)
            .iter()
            .filter(|r| r.phase == phase)
            .cloned()
            .collect()
    }
}

async fn run(args: Args) -> Result<(), String> {
    let settings = args.settings();
    let keep = args.keep;
    let plan = Plan::new(settings.sizes, args.seed)?;
    let bin = monitor_binary(&args)?;
    let extra = match &args.monitor_extra {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => String::new(),
    };
    let rules = Arc::new(offline_rules()?);
    let red_rule = red_rule()?;
    let dir = tempfile::Builder::new()
        .prefix("storm-bench")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        // PostgreSQL runs as `nobody` under root: it must get through.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.path().display()))?;
    }
    let s = &settings.sizes;
    eprintln!(
        "storm-bench: {} gateways, {} devices ({} per gateway), power cut at {} sites ({} devices; gateways {}), {} red alarms within {} s, baseline {} red alarms alone; run dir {}",
        s.gateways,
        s.devices,
        s.devices / u64::from(s.gateways.max(1)),
        s.cut_sites,
        plan.cut_devices(),
        if args.gateway_on_mains {
            "on the same mains"
        } else {
            "on UPS"
        },
        s.reds,
        settings.window_s,
        s.baseline_reds,
        dir.path().display()
    );

    // PostgreSQL, the channel servers, the replicas.
    let t_setup = Instant::now();
    let pg = Postgres::start(dir.path(), !args.pg_no_fsync, &[])?;
    let db_url = pg.create_database("anquan")?;
    let standin = Standin::start(Credentials::default())
        .await
        .map_err(|e| format!("the providers' stand-ins: {e}"))?;
    let people = plan.people();
    let arrivals: Shared<Arrivals> = Arc::default();
    {
        let mut a = lock(&arrivals);
        for &i in plan.storm_reds.iter().chain(plan.baseline_reds.iter()) {
            a.watched.insert(format!("p-s{:04}-safety", i + 1));
            a.watched.insert(format!("p-s{:04}-principal", i + 1));
        }
    }
    let hook_base = start_webhook(arrivals.clone()).await?;
    let stop = CancellationToken::new();
    let phones: HashMap<String, String> = people
        .iter()
        .map(|p| (p.phone.clone(), p.id.clone()))
        .collect();
    let poller = poll_standin(standin.clone(), arrivals.clone(), phones, stop.clone());
    let sms = standin.aliyun_sms();
    let voice = standin.aliyun_voice();
    let mut replicas = Vec::new();
    for name in ["A", "B"] {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let text = plan.monitor_config(&MonitorConfig {
            name,
            listen: &listen,
            database_url: &db_url,
            pool: args.pool,
            sms_endpoint: &sms,
            voice_endpoint: &voice,
            aliyun_id: &standin.creds.aliyun_id,
            aliyun_secret: &standin.creds.aliyun_secret,
            hook_base: &hook_base,
            extra: &extra,
        });
        replicas.push(start_replica(name, &bin, dir.path(), &text, port).await?);
    }
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&db_url)
        .await
        .map_err(|e| format!("{db_url}: {e}"))?;
    eprintln!(
        "storm-bench: PostgreSQL {} (fsync {}), replicas A {} and B {} of {} up in {:.1} s",
        pg.version,
        if args.pg_no_fsync { "off" } else { "on" },
        replicas[0].url,
        replicas[1].url,
        bin.display(),
        secs(t_setup.elapsed())
    );

    // The gateways.
    let counters = Arc::new(Counters::default());
    let reds: Shared<Vec<Red>> = Arc::new(Mutex::new(
        plan.baseline_reds
            .iter()
            .map(|&site| (site, Phase::Baseline))
            .chain(plan.storm_reds.iter().map(|&site| (site, Phase::Storm)))
            .map(|(site, phase)| Red {
                site,
                phase,
                alarm_at: None,
                posted_at: None,
                answered_at: None,
                attempts: 0,
                warning_id: None,
                first_call: None,
                acked: None,
            })
            .collect(),
    ));
    let cut_at: Shared<Option<Instant>> = Arc::default();
    let ctx = GwCtx {
        counters: counters.clone(),
        reds: reds.clone(),
        rules,
        concurrency: args.concurrency.max(1),
        heartbeat_s: args.heartbeat_s.clamp(5, 3600),
        cut_at: cut_at.clone(),
        stop: stop.clone(),
    };
    let mut senders = Vec::new();
    let mut queued_all = Vec::new();
    let mut rng = Rng::new(args.seed ^ 0x0005_7073);
    let mut tasks = JoinSet::new();
    for site in &plan.sites {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(5_000))
            .pool_max_idle_per_host(ctx.concurrency)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let url = replicas[site.index as usize % 2].url.clone();
        let powered = Arc::new(AtomicBool::new(true));
        let queued = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let gw = Gateway {
            site: site.clone(),
            url: url.clone(),
            client: client.clone(),
            powered: powered.clone(),
            queued: queued.clone(),
        };
        tasks.spawn(gw.run(rx, ctx.clone(), rng.next_u64()));
        tasks.spawn(Gateway::beat(
            client,
            url,
            site.clone(),
            powered,
            queued.clone(),
            ctx.clone(),
            rng.below(2_000),
        ));
        senders.push(tx);
        queued_all.push(queued);
    }
    let bench = Bench {
        operator_token: plan.operator_token.clone(),
        plan,
        settings: settings.clone(),
        args,
        gateways: senders,
        queued: queued_all,
        counters: counters.clone(),
        reds,
        arrivals: arrivals.clone(),
        cut_at,
        red_rule,
        people,
        pg_pid: pg.pid(),
        replicas,
    };
    let client = reqwest::Client::new();
    // Let the first heartbeats land.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 1. Baseline.
    let cpu_base0 = cpu_now(&bench.replicas, bench.pg_pid);
    let base_ix: Vec<usize> = lock(&bench.reds)
        .iter()
        .enumerate()
        .filter(|(_, r)| r.phase == Phase::Baseline)
        .map(|(i, _)| i)
        .collect();
    if !base_ix.is_empty() {
        eprintln!(
            "storm-bench: baseline: {} red alarms, one every 0.5 s, nothing else",
            base_ix.len()
        );
        for &i in &base_ix {
            bench.raise_red(i, 1)?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            bench.ack_due(&client).await;
            let done = base_ix
                .iter()
                .all(|&i| lock(&bench.reds).get(i).is_some_and(|r| r.acked.is_some()));
            if done || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // The acknowledgements' closure messages go out before the storm.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let cpu_base1 = cpu_now(&bench.replicas, bench.pg_pid);

    // 2. The storm.
    let cut_wall = wall_ms();
    let cut = Instant::now();
    *lock(&bench.cut_at) = Some(cut);
    lock(&bench.arrivals).storm_from = Some(cut);
    let on_mains = bench.args.gateway_on_mains;
    for &i in &bench.plan.cut {
        if let Some(g) = bench.gateways.get(i as usize) {
            let _ = g.send(Cmd::Cut { on_mains });
        }
    }
    let storm_ix: Vec<usize> = lock(&bench.reds)
        .iter()
        .enumerate()
        .filter(|(_, r)| r.phase == Phase::Storm)
        .map(|(i, _)| i)
        .collect();
    let mut rng = Rng::new(bench.args.seed ^ 0x00ed);
    let offsets = red_offsets(
        u32::try_from(storm_ix.len()).unwrap_or(u32::MAX),
        settings.window_s * 1000,
        &mut rng,
    );
    let mut schedule: Vec<(Duration, usize)> = offsets
        .iter()
        .zip(&storm_ix)
        .map(|(&ms, &i)| (Duration::from_millis(ms), i))
        .collect();
    schedule.reverse();
    eprintln!(
        "storm-bench: storm: power cut at {} sites ({}), {} red alarms within {} s",
        bench.plan.cut.len(),
        if on_mains {
            "gateways down with them"
        } else {
            "every device offline, gateways on UPS"
        },
        storm_ix.len(),
        settings.window_s
    );
    let expected = if on_mains {
        0
    } else {
        bench.plan.cut_devices()
    };
    let mut capped: Option<(f64, u64)> = None;
    let mut posting_done_at: Option<Instant> = None;
    // With the gateways down, the monitor needs two missed heartbeats.
    let min_end = if on_mains {
        Duration::from_secs(2 * u64::from(bench.args.heartbeat_s) + 20)
    } else {
        Duration::ZERO
    };
    let mut last_progress = Instant::now();
    let mut cpu_prev = cpu_now(&bench.replicas, bench.pg_pid);
    let mut cpu_storm_end = cpu_prev;
    let end_at = loop {
        let t = cut.elapsed();
        while schedule.last().is_some_and(|(d, _)| *d <= t) {
            if let Some((_, i)) = schedule.pop() {
                bench.raise_red(i, 1)?;
            }
        }
        bench.ack_due(&client).await;
        let taken = counters.offline_accepted.load(Ordering::Relaxed)
            + counters.offline_dead.load(Ordering::Relaxed);
        let reds_in = schedule.is_empty();
        if posting_done_at.is_none() && reds_in && taken >= expected {
            posting_done_at = Some(Instant::now());
            cpu_storm_end = cpu_now(&bench.replicas, bench.pg_pid);
            eprintln!(
                "storm-bench: {:>6.1} s: every offline event taken ({taken})",
                secs(t)
            );
        }
        if posting_done_at.is_none() && capped.is_none() && t.as_secs() >= settings.max_storm_s {
            capped = Some((secs(t), taken));
            for &i in &bench.plan.cut {
                if let Some(g) = bench.gateways.get(i as usize) {
                    let _ = g.send(Cmd::Abandon);
                }
            }
            if reds_in {
                posting_done_at = Some(Instant::now());
                cpu_storm_end = cpu_now(&bench.replicas, bench.pg_pid);
            }
            eprintln!(
                "storm-bench: {:>6.1} s: cut off after --max-storm-s {}: the monitor took {taken} of {expected} offline events",
                secs(t),
                settings.max_storm_s
            );
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            let now = cpu_now(&bench.replicas, bench.pg_pid);
            let dt = now
                .at
                .zip(cpu_prev.at)
                .map_or(1.0, |(a, b)| secs(a - b).max(0.001));
            let pct = |a: f64, b: f64| 100.0 * (a - b) / dt;
            bench.match_calls();
            let called = bench
                .reds_of(Phase::Storm)
                .iter()
                .filter(|r| r.first_call.is_some())
                .count();
            let raised = bench
                .reds_of(Phase::Storm)
                .iter()
                .filter(|r| r.alarm_at.is_some())
                .count();
            let msgs: u64 = lock(&bench.arrivals)
                .per_channel
                .values()
                .map(|v| v[1])
                .sum();
            let waiting: u64 = bench.queued.iter().map(|q| q.load(Ordering::Relaxed)).sum();
            eprintln!(
                "storm-bench: {:>6.1} s: offline taken {taken}/{expected}, waiting at gateways {waiting}, reds called {called}/{raised}, messages {msgs}; CPU A {:.0} % B {:.0} % PostgreSQL {:.0} % bench {:.0} %",
                secs(t),
                pct(now.replicas[0], cpu_prev.replicas[0]),
                pct(now.replicas[1], cpu_prev.replicas[1]),
                pct(now.postgres, cpu_prev.postgres),
                pct(now.bench, cpu_prev.bench),
            );
            cpu_prev = now;
        }
        if let Some(done) = posting_done_at
            && done.elapsed() >= Duration::from_secs(settings.tail_s)
            && t >= min_end
        {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let cpu_end = cpu_now(&bench.replicas, bench.pg_pid);
    bench.match_calls();
    stop.cancel();
    let _ = poller.await;
    tasks.abort_all();

    // Read back.
    let mut metrics = BTreeMap::new();
    let mut metrics_max = BTreeMap::new();
    for r in &bench.replicas {
        if let Ok(resp) = client.get(format!("{}/metrics", r.url)).send().await
            && let Ok(page) = resp.text().await
        {
            add_metrics(&page, &mut metrics, &mut metrics_max);
        }
    }
    let rss: Vec<(f64, f64)> = bench
        .replicas
        .iter()
        .map(|r| rss_mib(r.child.id()))
        .collect();
    let pg_rss = bench.pg_pid.map(rss_mib);
    let cut_sites: Vec<String> = bench
        .plan
        .cut
        .iter()
        .map(|&i| format!("s{:04}", i + 1))
        .collect();
    let db_figures = read_db(&db, cut_wall, &cut_sites).await;
    let alive: Vec<bool> = bench
        .replicas
        .iter()
        .map(|r| std::fs::metadata(format!("/proc/{}", r.child.id())).is_ok())
        .collect();

    report(
        &bench,
        &Phases {
            cut,
            posting_done_at,
            end_at,
            capped,
            expected,
            cpu: [cpu_base0, cpu_base1, cpu_storm_end, cpu_end],
        },
        &metrics,
        &metrics_max,
        &rss,
        pg_rss,
        &db_figures,
        &alive,
    );
    drop(db);
    let logs: Vec<String> = bench
        .replicas
        .iter()
        .map(|r| format!("{} {}", r.name, r.log.display()))
        .collect();
    drop(bench);
    drop(pg);
    if keep {
        let kept = dir.keep();
        eprintln!(
            "storm-bench: kept {} (replica logs: {})",
            kept.display(),
            logs.join(", ")
        );
    }
    Ok(())
}

fn monitor_binary(args: &Args) -> Result<PathBuf, String> {
    if let Some(p) = &args.monitor_bin {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os("ANQUAN_MONITOR_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    exe.parent()
        .map(|d| d.join("anquan-monitor"))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no anquan-monitor next to {}: cargo build --release -p anquan-monitor --bin anquan-monitor (or --monitor-bin)",
                exe.display()
            )
        })
}

// ---------------------------------------------------------------------
// The database, read back after the run.

#[derive(Debug, Default)]
struct DbFigures {
    error: Option<String>,
    /// Warnings raised since the cut, per site.
    warnings_by_site: HashMap<String, i64>,
    /// … of which called or told anyone (have a delivery), per site.
    reaching_by_site: HashMap<String, i64>,
    /// … still open at the end, per site.
    open_by_site: HashMap<String, i64>,
    /// Warnings since the cut by kind and rule.
    by_rule: Vec<(String, String, i64)>,
    /// Deliveries queued since the cut, per person: all, still waiting.
    deliveries_by_person: HashMap<String, (i64, i64)>,
    /// Deliveries since the cut by state.
    deliveries_by_state: Vec<(String, i64)>,
    /// Messages about the cut sites' warnings, per person: all (sent, and
    /// to come: the notices waiting for one digest count once), sent (a
    /// digest is one message: the notices merged into it are not counted).
    cut_by_person: HashMap<String, (i64, i64)>,
    /// The same per person, by channel and purpose.
    cut_breakdown: HashMap<String, Vec<(String, String, i64)>>,
}

async fn read_db(db: &sqlx::PgPool, since_ms: u64, cut_sites: &[String]) -> DbFigures {
    match read_db_inner(db, since_ms as i64, cut_sites).await {
        Ok(f) => f,
        Err(e) => DbFigures {
            error: Some(e.to_string()),
            ..DbFigures::default()
        },
    }
}

async fn read_db_inner(
    db: &sqlx::PgPool,
    since: i64,
    cut_sites: &[String],
) -> Result<DbFigures, sqlx::Error> {
    use sqlx::Row;
    let mut f = DbFigures::default();
    let pairs = |rows: Vec<sqlx::postgres::PgRow>| -> Result<HashMap<String, i64>, sqlx::Error> {
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    };
    f.warnings_by_site = pairs(
        sqlx::query("SELECT site, COUNT(*) FROM warnings WHERE raised_ms >= $1 GROUP BY site")
            .bind(since)
            .fetch_all(db)
            .await?,
    )?;
    f.reaching_by_site = pairs(
        sqlx::query(
            "SELECT w.site, COUNT(*) FROM warnings w WHERE w.raised_ms >= $1 \
             AND EXISTS (SELECT 1 FROM deliveries d WHERE d.subject_id = w.id) GROUP BY w.site",
        )
        .bind(since)
        .fetch_all(db)
        .await?,
    )?;
    f.open_by_site = pairs(
        sqlx::query(
            "SELECT site, COUNT(*) FROM warnings WHERE raised_ms >= $1 AND state <> 'RESOLVED' GROUP BY site",
        )
        .bind(since)
        .fetch_all(db)
        .await?,
    )?;
    for r in sqlx::query(
        "SELECT kind, rule, COUNT(*) FROM warnings WHERE raised_ms >= $1 GROUP BY kind, rule ORDER BY 3 DESC",
    )
    .bind(since)
    .fetch_all(db)
    .await?
    {
        f.by_rule
            .push((r.try_get(0)?, r.try_get(1)?, r.try_get::<i64, _>(2)?));
    }
    for r in sqlx::query(
        "SELECT person_id, COUNT(*), SUM(CASE WHEN state = 'QUEUED' THEN 1 ELSE 0 END) \
         FROM deliveries WHERE created_ms >= $1 GROUP BY person_id",
    )
    .bind(since)
    .fetch_all(db)
    .await?
    {
        f.deliveries_by_person.insert(
            r.try_get(0)?,
            (r.try_get::<i64, _>(1)?, r.try_get::<i64, _>(2)?),
        );
    }
    for r in sqlx::query(
        "SELECT state, COUNT(*) FROM deliveries WHERE created_ms >= $1 GROUP BY state ORDER BY 2 DESC",
    )
    .bind(since)
    .fetch_all(db)
    .await?
    {
        f.deliveries_by_state
            .push((r.try_get(0)?, r.try_get::<i64, _>(1)?));
    }
    // A monitor with digests (migration 13) has `digest_id`: the notices
    // merged into a digest went inside another message. An older one has
    // not: every row is a message.
    let has_digests = sqlx::query(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'deliveries' AND column_name = 'digest_id'",
    )
    .fetch_optional(db)
    .await?
    .is_some();
    let messages_only = if has_digests {
        "AND d.digest_id IS NULL"
    } else {
        ""
    };
    // Messages per person: those sent, and those still waiting, where the
    // waiting notices of one channel that a digest will carry count once.
    let digestible = if has_digests {
        "d.priority < 40 AND d.priority % 10 <> 5"
    } else {
        "FALSE"
    };
    let cut = format!(
        "FROM deliveries d JOIN warnings w ON w.id = d.subject_id \
         WHERE w.raised_ms >= $1 AND w.site = ANY($2) {messages_only}"
    );
    for r in sqlx::query(&format!(
        "SELECT d.person_id, \
         SUM(CASE WHEN d.state = 'QUEUED' THEN 0 ELSE 1 END), \
         SUM(CASE WHEN d.state = 'QUEUED' AND NOT ({digestible}) THEN 1 ELSE 0 END), \
         COUNT(DISTINCT CASE WHEN d.state = 'QUEUED' AND {digestible} THEN d.channel END) \
         {cut} GROUP BY d.person_id"
    ))
    .bind(since)
    .bind(cut_sites)
    .fetch_all(db)
    .await?
    {
        let sent = r.try_get::<i64, _>(1)?;
        let waiting = r.try_get::<i64, _>(2)? + r.try_get::<i64, _>(3)?;
        f.cut_by_person
            .insert(r.try_get(0)?, (sent + waiting, sent));
    }
    for r in sqlx::query(&format!(
        "SELECT d.person_id, d.channel, d.purpose, COUNT(*) {cut} \
         GROUP BY d.person_id, d.channel, d.purpose"
    ))
    .bind(since)
    .bind(cut_sites)
    .fetch_all(db)
    .await?
    {
        f.cut_breakdown.entry(r.try_get(0)?).or_default().push((
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get::<i64, _>(3)?,
        ));
    }
    Ok(f)
}

// ---------------------------------------------------------------------
// The report.

struct Phases {
    cut: Instant,
    posting_done_at: Option<Instant>,
    end_at: Instant,
    capped: Option<(f64, u64)>,
    expected: u64,
    /// Baseline start, baseline end (= the cut), storm posting end, end.
    cpu: [Cpu; 4],
}

fn describe(p: &Person, plan: &Plan) -> String {
    let cut = |i: u32| {
        if plan.cut.contains(&i) {
            ", a cut site"
        } else if plan.storm_reds.contains(&i) {
            ", a red site"
        } else {
            ""
        }
    };
    match p.what {
        Role::SafetyOfficer(i) => format!("safety officer of s{:04}{}", i + 1, cut(i)),
        Role::Principal(i) => format!("principal of s{:04}{}", i + 1, cut(i)),
        Role::GridOfficer(t) => format!("grid officer of town {:03}", t + 1),
        Role::CountyDuty(c) => format!("duty officer of county {:02}", c + 1),
        Role::CountyLeader(c) => format!("shift leader of county {:02}", c + 1),
        Role::CityDuty => "the city's duty officer".into(),
        Role::CityTaskForce => "the city's 专班 leader".into(),
        Role::CityLeader => "the city's shift leader".into(),
    }
}

fn latency_row(name: &str, reds: &[Red], limit_s: f64) -> (String, Option<Summary>) {
    let lat: Vec<f64> = reds
        .iter()
        .filter_map(|r| Some(secs(r.first_call?.0 - r.alarm_at?)))
        .collect();
    let raised = reds.iter().filter(|r| r.alarm_at.is_some()).count();
    let missing = raised - lat.len();
    let within = lat.iter().filter(|&&x| x <= limit_s).count();
    let s = Summary::of(&lat);
    let row = match s {
        Some(s) => format!(
            "| {name} | {raised} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {within} of {raised}{} |",
            s.min,
            s.median,
            s.p90,
            s.max,
            if missing > 0 {
                format!(" ({missing} never called)")
            } else {
                String::new()
            }
        ),
        None => format!("| {name} | {raised} | – | – | – | – | 0 of {raised} (none called) |"),
    };
    (row, s)
}

#[allow(clippy::too_many_arguments)]
fn report(
    b: &Bench,
    ph: &Phases,
    metrics: &BTreeMap<String, f64>,
    metrics_max: &BTreeMap<String, f64>,
    rss: &[(f64, f64)],
    pg_rss: Option<(f64, f64)>,
    db: &DbFigures,
    alive: &[bool],
) {
    let s = &b.settings.sizes;
    let c = &b.counters;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!("## Alarm storm (storm-bench), {}", chrono_like_now());
    println!();
    println!(
        "{} gateways, {} devices ({} per gateway); power cut at {} sites: {} devices offline, gateways {}; {} red alarms at other sites within {} s of the cut; baseline: {} red alarms alone. Two replicas ({}), PostgreSQL, seed {}.",
        s.gateways,
        s.devices,
        s.devices / u64::from(s.gateways.max(1)),
        s.cut_sites,
        b.plan.cut_devices(),
        if b.args.gateway_on_mains {
            "on the same mains (down)"
        } else {
            "on UPS (beating)"
        },
        s.reds,
        b.settings.window_s,
        s.baseline_reds,
        b.args.monitor_bin.as_ref().map_or_else(
            || "anquan-monitor next to storm-bench".into(),
            |p| p.display().to_string()
        ),
        b.args.seed,
    );
    println!();

    // Red alarm → first call.
    println!("### Red alarm → its first call at a channel server (SMS, voice or webhook)");
    println!();
    println!("| phase | red alarms | min | median | p90 | max | called within 10 s |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    let base = b.reds_of(Phase::Baseline);
    let storm = b.reds_of(Phase::Storm);
    let (row_b, sum_b) = latency_row("baseline: red alarms alone", &base, 10.0);
    let (row_s, sum_s) = latency_row("storm", &storm, 10.0);
    if !base.is_empty() {
        println!("{row_b}");
    }
    println!("{row_s}");
    if let (Some(x), Some(y)) = (sum_b, sum_s) {
        println!();
        println!(
            "Ratio storm / baseline: median {:.1}×, max {:.1}×.",
            y.median / x.median.max(0.001),
            y.max / x.max.max(0.001)
        );
    }
    let answer: Vec<f64> = storm
        .iter()
        .filter_map(|r| Some(secs(r.answered_at? - r.alarm_at?)))
        .collect();
    let answer_b: Vec<f64> = base
        .iter()
        .filter_map(|r| Some(secs(r.answered_at? - r.alarm_at?)))
        .collect();
    let by_channel: BTreeMap<&str, usize> = storm
        .iter()
        .filter_map(|r| r.first_call.map(|(_, ch)| ch))
        .fold(BTreeMap::new(), |mut m, ch| {
            *m.entry(ch).or_default() += 1;
            m
        });
    println!();
    println!(
        "Red alarm → intake answered (2xx): storm median {}, max {}; baseline median {}, max {}. First calls by channel (storm): {:?}. Attempts per red POST (storm): max {}. Acknowledgements: {:?}.",
        fmt_s(Summary::of(&answer).map(|s| s.median)),
        fmt_s(Summary::of(&answer).map(|s| s.max)),
        fmt_s(Summary::of(&answer_b).map(|s| s.median)),
        fmt_s(Summary::of(&answer_b).map(|s| s.max)),
        by_channel,
        storm.iter().map(|r| r.attempts).max().unwrap_or(0),
        storm
            .iter()
            .filter_map(|r| r.acked)
            .fold(BTreeMap::<u16, usize>::new(), |mut m, s| {
                *m.entry(s).or_default() += 1;
                m
            }),
    );
    println!();

    // Intake.
    println!("### Intake during the storm");
    println!();
    let taken = ld(&c.offline_accepted);
    let last = ld(&c.last_offline_ms) as f64 / 1000.0;
    println!(
        "- offline events: {} expected, {} queued at the gateways at the cut, {} taken (2xx) in {:.1} s = {:.0} events/s; {} answered as duplicates (redelivered after a timeout), {} dead-lettered",
        ph.expected,
        ld(&c.cut_queued),
        taken,
        last,
        if last > 0.0 { taken as f64 / last } else { 0.0 },
        ld(&c.offline_duplicates),
        ld(&c.offline_dead),
    );
    if let Some((t, n)) = ph.capped {
        println!(
            "- **cut off** at {t:.0} s (--max-storm-s): the monitor had taken {n} of {} offline events ({:.0} %); the rest were dropped at the gateways",
            ph.expected,
            100.0 * n as f64 / ph.expected.max(1) as f64
        );
    }
    println!(
        "- requests: {} POSTs; answers 429 ×{}, 503 ×{}, other 5xx ×{}, timeouts (5 s) ×{}, connection errors ×{}, 4xx refused ×{}; heartbeats {} accepted, {} failed",
        ld(&c.posts),
        ld(&c.status_429),
        ld(&c.status_503),
        ld(&c.status_5xx),
        ld(&c.timeouts),
        ld(&c.connect_errors),
        ld(&c.rejected),
        ld(&c.heartbeats_ok),
        ld(&c.heartbeats_failed),
    );
    let (sum, count) = (
        metrics
            .get("anquan_monitor_intake_seconds_sum")
            .copied()
            .unwrap_or(0.0),
        metrics
            .get("anquan_monitor_intake_seconds_count")
            .copied()
            .unwrap_or(0.0),
    );
    if count > 0.0 {
        println!(
            "- the monitor's own time to answer an alarm (anquan_monitor_intake_seconds, the whole run): mean {:.2} s over {count:.0} answers; events stored as new (alarms_received_total) {:.0}, as redeliveries {:.0}",
            sum / count,
            metrics
                .get("anquan_monitor_alarms_received_total")
                .copied()
                .unwrap_or(0.0),
            metrics
                .get("anquan_monitor_alarms_duplicate_total")
                .copied()
                .unwrap_or(0.0),
        );
    }
    println!();

    // Warnings.
    println!("### Warnings opened since the cut");
    println!();
    if let Some(e) = &db.error {
        println!("(database read failed: {e})");
    }
    let total: i64 = db.warnings_by_site.values().sum();
    let per_cut = |m: &HashMap<String, i64>| -> Vec<f64> {
        b.plan
            .cut
            .iter()
            .map(|&i| *m.get(&format!("s{:04}", i + 1)).unwrap_or(&0) as f64)
            .collect()
    };
    let show = |v: &[f64]| {
        Summary::of(v).map_or_else(
            || "–".into(),
            |s| format!("min {:.0}, median {:.0}, max {:.0}", s.min, s.median, s.max),
        )
    };
    let cut_w = per_cut(&db.warnings_by_site);
    let cut_r = per_cut(&db.reaching_by_site);
    let cut_o = per_cut(&db.open_by_site);
    println!("- total: {total}");
    println!("- per cut site: {}", show(&cut_w));
    println!(
        "- per cut site, warnings that called or told anyone (have a message queued or sent): {}",
        show(&cut_r)
    );
    println!("- per cut site, still open at the end: {}", show(&cut_o));
    let rules: Vec<String> = db
        .by_rule
        .iter()
        .take(8)
        .map(|(k, r, n)| format!("{r} ({k}) {n}"))
        .collect();
    println!("- by rule: {}", rules.join(", "));
    println!();

    // Messages per person.
    println!("### Messages per person, from the cut to the end");
    println!();
    let a = lock(&b.arrivals);
    let received: Vec<(String, u64)> = b
        .people
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                a.per_person
                    .get(&p.id)
                    .map_or(0, |v| v[Phase::Storm as usize]),
            )
        })
        .collect();
    let reached: Vec<f64> = received
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(_, n)| *n as f64)
        .collect();
    let mut top = received.clone();
    top.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    let name = |id: &str| {
        b.people
            .iter()
            .find(|p| p.id == id)
            .map_or_else(|| id.to_string(), |p| describe(p, &b.plan))
    };
    let storm_msgs: u64 = a.per_channel.values().map(|v| v[1]).sum();
    println!(
        "- at the channel servers: {storm_msgs} messages ({}) to {} of {} people; per person reached: {}",
        a.per_channel
            .iter()
            .map(|(k, v)| format!("{k} {}", v[1]))
            .collect::<Vec<_>>()
            .join(", "),
        reached.len(),
        b.people.len(),
        Summary::of(&reached).map_or_else(
            || "–".into(),
            |s| format!("median {:.0}, p90 {:.0}, max {:.0}", s.median, s.p90, s.max)
        ),
    );
    println!(
        "- most: {}",
        top.iter()
            .take(5)
            .map(|(id, n)| format!("{n} to {} ({id})", name(id)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let over = received.iter().filter(|(_, n)| *n > b.args.handful).count();
    println!("- people over {} messages: {over}", b.args.handful);
    let queued_pp: Vec<f64> = db
        .deliveries_by_person
        .values()
        .map(|(n, _)| *n as f64)
        .collect();
    let waiting: i64 = db.deliveries_by_person.values().map(|(_, q)| q).sum();
    let mut topq: Vec<(&String, &(i64, i64))> = db.deliveries_by_person.iter().collect();
    topq.sort_by(|x, y| y.1.0.cmp(&x.1.0).then_with(|| x.0.cmp(y.0)));
    println!(
        "- in the database (messages queued for each person since the cut, sent or still waiting): {} people, {}; still waiting at the end: {waiting}; by state: {}",
        queued_pp.len(),
        Summary::of(&queued_pp).map_or_else(
            || "–".into(),
            |s| format!(
                "median {:.0}, max {:.0}, total {:.0}",
                s.median,
                s.max,
                s.mean * s.n as f64
            )
        ),
        db.deliveries_by_state
            .iter()
            .map(|(st, n)| format!("{st} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "- most queued: {}",
        topq.iter()
            .take(3)
            .map(|(id, (n, q))| format!("{n} for {} ({q} waiting)", name(id)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if a.unknown > 0 {
        println!("- {} messages to numbers nobody has", a.unknown);
    }
    drop(a);
    println!();

    // Processes.
    println!("### Processes (one core = 100 %)");
    println!();
    let [c0, c1, c2, c3] = ph.cpu;
    let dur = |x: &Cpu, y: &Cpu| x.at.zip(y.at).map_or(0.0, |(a, b)| secs(b - a)).max(0.001);
    let d_base = dur(&c0, &c1);
    let storm_end = if c2.at.is_some() { c2 } else { c3 };
    let d_storm = dur(&c1, &storm_end);
    let d_tail = dur(&storm_end, &c3);
    println!(
        "| process | baseline ({d_base:.0} s) | storm: cut → events in ({d_storm:.0} s) | tail ({d_tail:.0} s) | RSS at the end | peak RSS |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, r) in b.replicas.iter().enumerate() {
        let (now, peak) = rss.get(i).copied().unwrap_or_default();
        println!(
            "| replica {}{} | {:.1} s ({:.0} %) | {:.1} s ({:.0} %) | {:.1} s ({:.0} %) | {now:.0} MiB | {peak:.0} MiB |",
            r.name,
            if alive.get(i).copied().unwrap_or(true) {
                ""
            } else {
                " (**died**)"
            },
            c1.replicas[i] - c0.replicas[i],
            100.0 * (c1.replicas[i] - c0.replicas[i]) / d_base,
            storm_end.replicas[i] - c1.replicas[i],
            100.0 * (storm_end.replicas[i] - c1.replicas[i]) / d_storm,
            c3.replicas[i] - storm_end.replicas[i],
            100.0 * (c3.replicas[i] - storm_end.replicas[i]) / d_tail,
        );
    }
    let (pg_now, pg_peak) = pg_rss.unwrap_or_default();
    println!(
        "| PostgreSQL (postmaster + backends) | {:.1} s ({:.0} %) | {:.1} s ({:.0} %) | {:.1} s ({:.0} %) | {pg_now:.0} MiB (postmaster) | {pg_peak:.0} MiB |",
        c1.postgres - c0.postgres,
        100.0 * (c1.postgres - c0.postgres) / d_base,
        storm_end.postgres - c1.postgres,
        100.0 * (storm_end.postgres - c1.postgres) / d_storm,
        c3.postgres - storm_end.postgres,
        100.0 * (c3.postgres - storm_end.postgres) / d_tail,
    );
    println!(
        "| storm-bench (gateways, stand-ins, receiver) | {:.1} s ({:.0} %) | {:.1} s ({:.0} %) | {:.1} s ({:.0} %) | | |",
        c1.bench - c0.bench,
        100.0 * (c1.bench - c0.bench) / d_base,
        storm_end.bench - c1.bench,
        100.0 * (storm_end.bench - c1.bench) / d_storm,
        c3.bench - storm_end.bench,
        100.0 * (c3.bench - storm_end.bench) / d_tail,
    );
    println!();
    println!(
        "Storm from the cut to the end: {:.0} s ({}).",
        secs(ph.end_at - ph.cut),
        ph.posting_done_at.map_or_else(
            || "the events never all went in".into(),
            |t| format!("events in after {:.0} s, then the tail", secs(t - ph.cut))
        )
    );
    println!();

    // Monitor metrics.
    println!("### The replicas' metrics (summed; gauges read from the database: one replica's)");
    println!();
    let mut lines = Vec::new();
    for (k, v) in metrics {
        let gauge_db = k.starts_with("anquan_monitor_warnings{")
            || k.starts_with("anquan_monitor_notifications_queued{");
        let v = if gauge_db {
            metrics_max.get(k).copied().unwrap_or(*v)
        } else {
            *v
        };
        let wanted = [
            "anquan_monitor_alarms_",
            "anquan_monitor_intake_batches_total",
            "anquan_monitor_notifications_",
            "anquan_monitor_warnings{",
            "anquan_monitor_heartbeats_total",
            "anquan_monitor_gateways_silent_total",
            "anquan_monitor_sla_breaches_total",
            "anquan_monitor_db_errors_total",
            "anquan_monitor_scheduler_ticks_total",
            "anquan_monitor_warnings_held_total",
            "anquan_monitor_intake_seconds_sum",
            "anquan_monitor_intake_seconds_count",
        ];
        if v != 0.0 && wanted.iter().any(|w| k.starts_with(w)) {
            lines.push(format!("{k} {v}"));
        }
    }
    println!("```");
    for l in lines {
        println!("{l}");
    }
    println!("```");
    println!();

    // Verdict.
    println!("### Against the issue's targets");
    println!();
    let storm_called = storm.iter().filter(|r| r.first_call.is_some()).count();
    match sum_s {
        Some(x) => println!(
            "- every red call out within 10 s of its alarm: **{}** (max {:.2} s{}; {} of {} called)",
            if x.max <= 10.0 && storm_called == storm.len() {
                "met"
            } else {
                "missed"
            },
            x.max,
            if x.max > 10.0 {
                format!(", {:.1}× the target", x.max / 10.0)
            } else {
                String::new()
            },
            storm_called,
            storm.len()
        ),
        None => println!("- every red call out within 10 s of its alarm: **missed** (none called)"),
    }
    let rs = Summary::of(&cut_r);
    match rs {
        Some(x) => println!(
            "- one warning per cut site: **{}** (warnings that reached people per cut site: median {:.0}, max {:.0}; rows per cut site median {:.0})",
            if x.max <= 1.0 && x.min >= 1.0 {
                "met"
            } else {
                "missed"
            },
            x.median,
            x.max,
            Summary::of(&cut_w).map_or(0.0, |s| s.median)
        ),
        None => println!("- one warning per cut site: –"),
    }
    // Only what the cut caused: messages about the cut sites' warnings.
    let top_cut = |pick: fn(&(i64, i64)) -> i64| {
        db.cut_by_person
            .iter()
            .max_by(|x, y| pick(x.1).cmp(&pick(y.1)).then_with(|| y.0.cmp(x.0)))
            .map(|(id, v)| (pick(v), name(id)))
            .unwrap_or((0, "nobody".into()))
    };
    let (max_pp, who_pp) = top_cut(|v| v.1);
    let (max_q, who_q) = top_cut(|v| v.0);
    let top_id = db
        .cut_by_person
        .iter()
        .max_by(|x, y| x.1.1.cmp(&y.1.1).then_with(|| y.0.cmp(x.0)))
        .map(|(id, _)| id.clone());
    let breakdown = top_id
        .and_then(|id| db.cut_breakdown.get(&id))
        .map(|v| {
            let mut v = v.clone();
            v.sort();
            v.iter()
                .map(|(ch, purpose, n)| format!("{purpose} by {ch} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    println!(
        "- no person more than a handful (≤ {}) of messages about the cut: **{}** (messages about the cut sites' warnings, from the database: most sent to one person {max_pp}, to the {who_pp}; most sent and to come for one person {max_q}, for the {who_q}; the first: {breakdown})",
        b.args.handful,
        if max_pp <= b.args.handful as i64 && max_q <= b.args.handful as i64 {
            "met"
        } else {
            "missed"
        }
    );
}

/// The date and time of the run (UTC).
fn chrono_like_now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string()
}
