//! The gateway binary as a child process (built once per test run), with a
//! config written from a few parameters, its metrics read over HTTP, and
//! the two ways to stop it: SIGTERM (graceful) and SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::services::{free_port, http_get, kill, wait_for_port};

/// The gateway program under test: `anquan-gateway-under-test`, a binary
/// of this crate whose `main` is `anquan_gateway::cli::main` (the same as
/// `anquan-gateway`'s), so Cargo builds it with the tests, with the same
/// features, and no test has to run `cargo build`. Found next to the
/// running executable (tests run from `target/<profile>/deps/`).
/// `ANQUAN_GATEWAY_BIN` names another build instead (the bench compares
/// an older gateway with it).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ANQUAN_GATEWAY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let name = "anquan-gateway-under-test";
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found near {}: build with `cargo test -p anquan-e2e` or `cargo build -p anquan-e2e --bins`", exe.display()))
}

/// What the test gateway connects to.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Mosquitto port.
    pub mqtt_port: u16,
    /// VictoriaMetrics base URL; the file sink without it.
    pub tsdb_url: Option<String>,
    /// HTTP alarm receiver base URL and token.
    pub http: Option<(String, String)>,
    /// Publish alarms on `alarms/...`.
    pub mqtt_alarms: bool,
    /// More TOML appended at the end (whole sections).
    pub extra: String,
    /// JSON logs instead of text.
    pub log_json: bool,
    /// Lines for the `[mqtt.tls]` section (TLS when set).
    pub mqtt_tls: Option<String>,
    /// More lines for the `[mqtt]` section (credentials, ...).
    pub mqtt_extra: String,
    /// Lines for the `[sink]` section (default `flush_interval_ms = 100`).
    pub sink_extra: String,
    /// Put the data dir on a tmpfs of this many bytes (needs root), so a
    /// test can fill the gateway's disk: [`GatewayProcess::fill_data_dir`].
    pub data_tmpfs_bytes: Option<u64>,
}

/// A gateway child process with its data dir.
#[derive(Debug)]
pub struct GatewayProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    api_port: u16,
    config: PathBuf,
    /// The tmpfs mounted on the data dir, unmounted on drop.
    tmpfs: Option<PathBuf>,
}

impl GatewayProcess {
    /// Writes the config for `setup` and starts the gateway.
    pub fn start(setup: &Setup) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let api_port = free_port();
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, config_text(setup, dir.path(), api_port))
            .unwrap_or_else(|e| panic!("write config: {e}"));
        let tmpfs = setup
            .data_tmpfs_bytes
            .map(|bytes| mount_tmpfs(&dir.path().join("data"), bytes));
        let mut g = Self {
            child: None,
            dir,
            api_port,
            config,
            tmpfs,
        };
        g.spawn();
        g
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("gateway.log"))
            .ok();
        let child = Command::new(binary())
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info,rumqttc=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.map_or(Stdio::null(), Stdio::from))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn gateway: {e}"));
        self.child = Some(child);
        assert!(
            wait_for_port(self.api_port, Duration::from_secs(30)),
            "gateway api did not come up; log:\n{}",
            self.log()
        );
        // Connected to the broker and subscribed.
        crate::services::eventually(Duration::from_secs(30), "gateway subscribed", || {
            (self.metric("anquan_gateway_mqtt_subscribed") == 1.0).then_some(())
        });
    }

    /// Its data dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&mut c);
        }
    }

    /// SIGTERM and wait (graceful shutdown); returns the exit success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Starts it again with the same config and data dir (after
    /// [`Self::kill9`] or [`Self::terminate`]).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Sends SIGHUP (rules reload).
    pub fn hangup(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status();
        }
    }

    /// `GET /metrics`.
    pub fn metrics(&self) -> String {
        http_get(self.api_port, "/metrics").unwrap_or_default()
    }

    /// The value of one sample line of `/metrics` (`name{labels}` exactly
    /// as rendered), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }

    /// `GET /healthz` body (None unless 2xx).
    pub fn healthz(&self) -> Option<String> {
        http_get(self.api_port, "/healthz")
    }

    /// The api port.
    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    /// Fills the data dir's file system with a ballast file until the
    /// kernel answers "no space left" (see [`Setup::data_tmpfs_bytes`]);
    /// returns the bytes written.
    pub fn fill_data_dir(&self) -> u64 {
        use std::io::Write as _;
        let path = self.dir.path().join("data").join("ballast");
        let mut f = std::fs::File::create(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        let chunk = vec![0xA5u8; 4096];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("fill {path:?}: {e}"),
            }
        }
        written
    }

    /// Deletes the ballast of [`Self::fill_data_dir`].
    pub fn free_data_dir(&self) {
        let path = self.dir.path().join("data").join("ballast");
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {path:?}: {e}"));
    }
}

/// Mounts a tmpfs of `bytes` on `dir` (created), or fails the test with
/// the reason: a test that needs a full disk must not pass without one.
fn mount_tmpfs(dir: &Path, bytes: u64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {dir:?}: {e}"));
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "anquan-test"])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("run mount: {e}"));
    assert!(
        out.status.success(),
        "cannot mount a tmpfs on {dir:?} (the disk-full test needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_path_buf()
}

/// Reads `series` from a Prometheus text page (0 when absent).
pub fn metric_value(page: &str, series: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, v) = l.rsplit_once(' ')?;
            (name == series).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill9();
        if let Some(dir) = self.tmpfs.take() {
            let _ = Command::new("umount").arg("-l").arg(&dir).status();
        }
    }
}

fn config_text(s: &Setup, dir: &Path, api_port: u16) -> String {
    let mut t = format!(
        "[gateway]\nid = \"gw-test\"\ndata_dir = \"{}\"\n\n[log]\nreject_log_interval_s = 1\nformat = \"{}\"\n\n\
         [mqtt]\nport = {}\nbackoff = {{ initial_ms = 50, max_ms = 1000 }}\n{}\n\
         [api]\nlisten = \"127.0.0.1:{api_port}\"\n\n[forward]\nbackoff = {{ initial_ms = 50, max_ms = 500 }}\n\n",
        dir.join("data").display(),
        if s.log_json { "json" } else { "text" },
        s.mqtt_port,
        s.mqtt_extra
    );
    if let Some(tls) = &s.mqtt_tls {
        t.push_str(&format!("[mqtt.tls]\n{tls}\n"));
    }
    let sink_lines = if s.sink_extra.is_empty() {
        "flush_interval_ms = 100"
    } else {
        s.sink_extra.as_str()
    };
    match &s.tsdb_url {
        Some(url) => t.push_str(&format!(
            "[sink]\ntype = \"influx\"\nbackoff = {{ initial_ms = 50, max_ms = 500 }}\n{}\n\
             [sink.influx]\nurl = \"{url}\"\norg = \"anquan\"\nbucket = \"test\"\ntoken = \"t\"\ntimeout_ms = 2000\n\n",
            sink_lines
        )),
        None => t.push_str(&format!("[sink]\ntype = \"file\"\n{sink_lines}\n\n")),
    }
    if let Some((url, token)) = &s.http {
        t.push_str(&format!(
            "[forward.http]\nurl = \"{url}\"\ntoken = \"{token}\"\ntimeout_ms = 2000\n\n"
        ));
    }
    t.push_str(&format!("[forward.mqtt]\nenabled = {}\n\n", s.mqtt_alarms));
    t.push_str(&s.extra);
    t
}
