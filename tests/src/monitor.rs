//! The monitor binary (`anquan-monitor serve`) as a child process on a free
//! loopback port, with SQLite in its own directory, one intake token for
//! the gateway and one operator token to read its API back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::services::{free_port, kill, wait_for_port};

/// The gateway's bearer token at this monitor.
pub const INTAKE_TOKEN: &str = "e2e-gateway-intake-token";
/// The operator token the tests read the API with.
pub const OPERATOR_TOKEN: &str = "e2e-operator-token";

/// `anquan-monitor`, built once per test run (`cargo build -p
/// anquan-monitor`; the binary is not a dependency a test can name).
pub fn binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| crate::cargo_build_bin("anquan-monitor", "anquan-monitor"))
        .clone()
}

/// A monitor child process; killed on drop.
#[derive(Debug)]
pub struct MonitorProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl MonitorProcess {
    /// Starts a monitor with no registry and no people: warnings are
    /// raised and kept, nobody is called.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let port = free_port();
        let config = dir.path().join("monitor.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [database]\nurl = \"sqlite://{db}?mode=rwc\"\n\n\
             [auth]\nintake_tokens = [\"{INTAKE_TOKEN}\"]\napi_tokens = [\"{OPERATOR_TOKEN}\"]\n\n\
             [notify.webhook]\nsecret = \"e2e-webhook-secret-0123456789\"\n",
            db = dir.path().join("monitor.db").display(),
        );
        std::fs::write(&config, text).unwrap_or_else(|e| panic!("write config: {e}"));
        let log = std::fs::File::create(dir.path().join("monitor.log"))
            .unwrap_or_else(|e| panic!("log: {e}"));
        let child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn anquan-monitor: {e}"));
        let m = Self {
            child: Some(child),
            dir,
            port,
        };
        assert!(
            wait_for_port(port, Duration::from_secs(60)),
            "monitor did not come up; log:\n{}",
            m.log()
        );
        m
    }

    /// `http://127.0.0.1:port`: the gateway's `forward.http.url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("monitor.log")).unwrap_or_default()
    }

    /// `GET path` with the operator token: the JSON body of a 2xx answer.
    pub fn get(&self, path: &str) -> Option<serde_json::Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\n\r\n"
        )
        .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        let (head, body) = buf.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 2") && !head.starts_with("HTTP/1.0 2") {
            return None;
        }
        serde_json::from_str(body).ok()
    }

    /// Every warning (`GET /api/v1/warnings`).
    pub fn warnings(&self) -> Vec<serde_json::Value> {
        self.get("/api/v1/warnings")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for MonitorProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&mut c);
        }
    }
}
