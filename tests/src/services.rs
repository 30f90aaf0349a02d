//! Real services for tests, each on a free loopback port with its own temp
//! dir, killed on drop. A missing binary fails loudly (run
//! `scripts/install-deps`); a test never skips silently.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released; a small race with
/// other processes is possible, so starters retry on a bind failure).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// The path of `bin` on PATH (or /usr/sbin, where Debian puts mosquitto);
/// panics with the fix when it is missing.
pub fn require(bin: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{bin}` is not installed: run scripts/install-deps (the end-to-end tests need the real service)")
        })
}

/// Waits until `port` accepts TCP connections.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// SIGTERM, wait up to `grace`, then SIGKILL; reaps the child.
pub fn terminate(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(child);
}

/// Kills and reaps a child.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A service child process on a fixed loopback port, with its own
/// directory, that can be stopped (SIGTERM, then SIGKILL after 10 s) and
/// started again on the same port: the outage of a fault test.
#[derive(Debug)]
struct Service {
    name: &'static str,
    /// The command line, from the directory and the port.
    command: fn(&Path, u16) -> Command,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Service {
    /// Starts it on a free port; `prepare` writes what it needs in its
    /// directory for that port first.
    fn start(
        name: &'static str,
        command: fn(&Path, u16) -> Command,
        mut prepare: impl FnMut(&Path, u16),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut s = Self {
            name,
            command,
            child: None,
            port: 0,
            dir,
        };
        for _ in 0..5 {
            s.port = free_port();
            prepare(s.dir.path(), s.port);
            if s.spawn() {
                return s;
            }
        }
        panic!("{name} did not start");
    }

    fn spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", self.name)))
            .ok();
        let mut child = (self.command)(self.dir.path(), self.port)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.map_or(Stdio::null(), Stdio::from))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.name));
        if wait_for_port(self.port, Duration::from_secs(10)) {
            self.child = Some(child);
            true
        } else {
            kill(&mut child);
            false
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(10));
        }
    }

    fn restart(&mut self) {
        self.stop();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} did not restart on port {}", self.name, self.port);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            kill(c);
        }
    }
}

/// A Mosquitto broker.
#[derive(Debug)]
pub struct Mosquitto(Service);

impl Mosquitto {
    /// Starts a broker on a free port. `extra` lines go into its config
    /// (e.g. `max_inflight_messages 1000`).
    pub fn start_with(extra: &str) -> Self {
        Self::start_conf(extra, false)
    }

    /// Starts a broker that keeps sessions and queued messages on disk
    /// across [`Mosquitto::stop`] / [`Mosquitto::restart`] (written when it
    /// stops on SIGTERM).
    pub fn start_persistent() -> Self {
        Self::start_conf("", true)
    }

    fn start_conf(extra: &str, persistent: bool) -> Self {
        let command = |dir: &Path, _| {
            let mut c = Command::new(require("mosquitto"));
            c.arg("-c").arg(dir.join("mosquitto.conf"));
            c
        };
        Self(Service::start("mosquitto", command, |dir, port| {
            let persistence = if persistent {
                format!(
                    "persistence true\npersistence_location {}/\nautosave_interval 0",
                    dir.display()
                )
            } else {
                "persistence false".into()
            };
            let text = format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\n{persistence}\nuser root\n\
                 max_queued_messages 1000000\nmax_inflight_messages 1000\n{extra}\n"
            );
            let conf = dir.join("mosquitto.conf");
            std::fs::write(&conf, text).unwrap_or_else(|e| panic!("write {conf:?}: {e}"));
        }))
    }

    /// Starts a broker with the default test settings.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Stops it with SIGTERM (a persistent broker saves its sessions).
    pub fn stop(&mut self) {
        self.0.stop();
    }

    /// Starts it again on the same port and config.
    pub fn restart(&mut self) {
        self.0.restart();
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.0.port
    }

    /// Its directory (config and log).
    pub fn dir(&self) -> &Path {
        self.0.dir.path()
    }

    /// Its process id (0 while stopped).
    pub fn pid(&self) -> u32 {
        self.0.child.as_ref().map_or(0, Child::id)
    }

    /// A `mosquitto_pub` / `mosquitto_sub` command for this broker, QoS 1
    /// (add `-t`, `-m`, TLS or credential options).
    pub fn client(&self, bin: &str) -> Command {
        let mut c = Command::new(require(bin));
        c.args(["-h", "127.0.0.1", "-p", &self.0.port.to_string(), "-q", "1"]);
        c
    }

    /// Publishes with `mosquitto_pub` (a third-party client), QoS 1.
    pub fn publish(&self, topic: &str, payload: &str) {
        let st = self
            .client("mosquitto_pub")
            .args(["-t", topic, "-m", payload])
            .status()
            .unwrap_or_else(|e| panic!("mosquitto_pub: {e}"));
        assert!(st.success(), "mosquitto_pub failed");
    }

    /// Publishes many messages in one `mosquitto_pub -l` session (one per
    /// line of `lines`, all on `topic`), QoS 1.
    pub fn publish_lines(&self, topic: &str, lines: &[String]) {
        let mut child = self
            .client("mosquitto_pub")
            .args(["-t", topic, "-l"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("mosquitto_pub: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            for l in lines {
                let _ = writeln!(stdin, "{l}");
            }
        }
        let st = child
            .wait()
            .unwrap_or_else(|e| panic!("mosquitto_pub: {e}"));
        assert!(st.success(), "mosquitto_pub -l failed");
    }

    /// Starts `mosquitto_sub` on `topic` (QoS 1), collecting up to `count`
    /// messages or until `timeout`; call [`Subscriber::lines`] to get them.
    pub fn subscribe(&self, topic: &str, count: usize, timeout: Duration) -> Subscriber {
        let child = self
            .client("mosquitto_sub")
            .args([
                "-t",
                topic,
                "-C",
                &count.to_string(),
                "-W",
                &timeout.as_secs().max(1).to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("mosquitto_sub: {e}"));
        // Give it time to subscribe before the caller publishes.
        std::thread::sleep(Duration::from_millis(300));
        Subscriber { child }
    }
}

/// A running `mosquitto_sub`.
#[derive(Debug)]
pub struct Subscriber {
    child: Child,
}

impl Subscriber {
    /// Waits for it to finish (count reached or timeout) and returns the
    /// payloads it printed.
    pub fn lines(mut self) -> Vec<String> {
        let _ = self.child.wait();
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        out.lines().map(str::to_owned).collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A VictoriaMetrics server (the test stand-in for InfluxDB 2's write API).
#[derive(Debug)]
pub struct VictoriaMetrics(Service);

impl VictoriaMetrics {
    /// Starts one on a free port with its own data dir.
    pub fn start() -> Self {
        let command = |dir: &Path, port| {
            let mut c = Command::new(require("victoria-metrics"));
            c.arg("-storageDataPath")
                .arg(dir.join("data"))
                .arg("-httpListenAddr")
                .arg(format!("127.0.0.1:{port}"))
                .args([
                    "-retentionPeriod",
                    "100y",
                    "-search.latencyOffset=0s",
                    "-loggerLevel",
                    "ERROR",
                ]);
            c
        };
        Self(Service::start("victoria-metrics", command, |_, _| {}))
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.0.port
    }

    /// Stops it (SIGTERM, so it persists what it accepted; SIGKILL after
    /// 10 s): the TSDB outage.
    pub fn stop(&mut self) {
        self.0.stop();
    }

    /// Starts it again on the same port and data dir.
    pub fn restart(&mut self) {
        self.0.restart();
    }

    /// Makes recent writes visible to queries.
    pub fn force_flush(&self) {
        let _ = http_get(self.0.port, "/internal/force_flush");
    }

    /// Raw samples of the series matching `selector`, as (timestamp ms,
    /// value) pairs, sorted by time (from `/api/v1/export`).
    pub fn export(&self, selector: &str) -> Vec<(u64, f64)> {
        self.force_flush();
        let q = format!("/api/v1/export?match[]={}", urlencode(selector));
        let body = http_get(self.0.port, &q).unwrap_or_default();
        let mut out = Vec::new();
        for line in body.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let (Some(vals), Some(ts)) = (v["values"].as_array(), v["timestamps"].as_array())
            else {
                continue;
            };
            for (val, t) in vals.iter().zip(ts) {
                if let (Some(val), Some(t)) = (val.as_f64(), t.as_u64()) {
                    out.push((t, val));
                }
            }
        }
        out.sort_by_key(|(t, _)| *t);
        out
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        self.stop();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A plain HTTP/1.0 GET on loopback; the body, or None on any error.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 2") && !head.starts_with("HTTP/1.0 2") {
        return None;
    }
    Some(body.to_string())
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after
/// `timeout` with `what` (the timeout only bounds a hang).
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
