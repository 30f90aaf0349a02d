//! Modbus servers for the end-to-end tests: the simulator's (in process,
//! its own runtime) and a third-party one, pymodbus (a Python child
//! process driven over stdin).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anquan_protocol::DeviceKind;
use anquan_sim::modbus::{Site, serve_tcp};

use crate::services::{free_port, kill, require, wait_for_port};

/// The simulator's Modbus TCP server on a free port.
#[derive(Debug)]
pub struct SimServer {
    /// The virtual devices.
    pub site: Arc<Site>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _rt: tokio::runtime::Runtime,
}

impl SimServer {
    /// Serves `units` (unit id, kind).
    pub fn start(units: &[(u8, DeviceKind)]) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
        let site = Site::new(units);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"))
            .port();
        rt.spawn(serve_tcp(listener, site.clone()));
        Self {
            site,
            port,
            _rt: rt,
        }
    }
}

/// The Python of the virtualenv with pymodbus (`scripts/install-deps`
/// makes it): `$ANQUAN_PY_VENV/bin/python`, by default
/// `~/.cache/anquan-iot/pymodbus-venv`.
pub fn pymodbus_python() -> PathBuf {
    let venv = std::env::var_os("ANQUAN_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
            home.join(".cache/anquan-iot/pymodbus-venv")
        });
    let py = venv.join("bin/python");
    assert!(
        py.is_file(),
        "pymodbus is not installed at {}: run scripts/install-deps",
        venv.display()
    );
    py
}

/// A pymodbus server (`tests/py/modbus_server.py`), killed on drop.
#[derive(Debug)]
pub struct PyModbus {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The TCP port (TCP mode).
    pub port: Option<u16>,
}

impl PyModbus {
    fn spawn(args: &[String]) -> (Child, ChildStdin, BufReader<ChildStdout>) {
        let script = crate::workspace_root().join("tests/py/modbus_server.py");
        let mut child = Command::new(pymodbus_python())
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn pymodbus: {e}"));
        let stdin = child
            .stdin
            .take()
            .unwrap_or_else(|| panic!("pymodbus stdin"));
        let mut stdout = BufReader::new(
            child
                .stdout
                .take()
                .unwrap_or_else(|| panic!("pymodbus stdout")),
        );
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        assert_eq!(line.trim(), "ready", "pymodbus did not start");
        (child, stdin, stdout)
    }

    /// Modbus TCP on a free port with `units`.
    pub fn tcp(units: &[u8]) -> Self {
        Self::on_tcp(units, false)
    }

    /// Modbus RTU framing over TCP on a free port with `units`.
    pub fn rtu_over_tcp(units: &[u8]) -> Self {
        Self::on_tcp(units, true)
    }

    fn on_tcp(units: &[u8], rtu: bool) -> Self {
        let port = free_port();
        let mut args = vec![
            "--tcp".into(),
            port.to_string(),
            "--units".into(),
            units_arg(units),
        ];
        if rtu {
            args.push("--rtu-over-tcp".into());
        }
        let (child, stdin, stdout) = Self::spawn(&args);
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "pymodbus did not listen"
        );
        Self {
            child,
            stdin,
            stdout,
            port: Some(port),
        }
    }

    /// Modbus RTU on the serial device `path`.
    pub fn serial(path: &Path, units: &[u8]) -> Self {
        let (child, stdin, stdout) = Self::spawn(&[
            "--serial".into(),
            path.display().to_string(),
            "--units".into(),
            units_arg(units),
        ]);
        Self {
            child,
            stdin,
            stdout,
            port: None,
        }
    }

    /// Sets registers (`ir`, `hr`) or bits (`co`, `di`) of `unit` from
    /// wire address `address`.
    pub fn set(&mut self, unit: u8, table: &str, address: u16, values: &[u16]) {
        let vals: Vec<String> = values.iter().map(u16::to_string).collect();
        writeln!(
            self.stdin,
            "set {unit} {table} {address} {}",
            vals.join(" ")
        )
        .unwrap_or_else(|e| panic!("pymodbus stdin: {e}"));
        let mut line = String::new();
        let _ = self.stdout.read_line(&mut line);
        assert_eq!(line.trim(), "ok", "pymodbus set");
    }

    /// Freezes the process (SIGSTOP): connections stay open, nothing
    /// answers — a hung device.
    pub fn pause(&self) {
        signal(self.child.id(), "-STOP");
    }

    /// Lets it run again (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), "-CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

fn units_arg(units: &[u8]) -> String {
    units
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Drop for PyModbus {
    fn drop(&mut self) {
        signal(self.child.id(), "-CONT");
        kill(&mut self.child);
    }
}

/// A linked pseudo-terminal pair made by `socat` (a null-modem cable):
/// what is written to one end is read from the other.
#[derive(Debug)]
pub struct PtyPair {
    child: Child,
    dir: tempfile::TempDir,
}

impl PtyPair {
    /// Starts socat and waits for both ends.
    pub fn start() -> Self {
        let socat = require("socat");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let end = |n: &str| format!("pty,raw,echo=0,link={}", dir.path().join(n).display());
        let child = Command::new(socat)
            .args([end("a"), end("b")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn socat: {e}"));
        let p = Self { child, dir };
        crate::services::eventually(Duration::from_secs(30), "socat's ptys", || {
            (p.a().exists() && p.b().exists()).then_some(())
        });
        p
    }

    /// One end.
    pub fn a(&self) -> PathBuf {
        self.dir.path().join("a")
    }

    /// The other end.
    pub fn b(&self) -> PathBuf {
        self.dir.path().join("b")
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The `anquan-sim` binary, built once per test process (`cargo build -p
/// anquan-sim`, the profile the tests run in: debug), in the workspace's
/// target directory (`CARGO_TARGET_DIR` if set).
pub fn sim_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| crate::cargo_build_bin("anquan-sim", "anquan-sim"))
        .clone()
}

/// `anquan-sim modbus --dtu ...` as a child process: a simulated site
/// behind a 4G DTU that dials the gateway. Killed on drop; its output goes
/// to a log file for failure messages.
#[derive(Debug)]
pub struct SimDtu {
    child: Option<Child>,
    log: tempfile::NamedTempFile,
}

impl SimDtu {
    /// Starts `anquan-sim modbus --dtu 127.0.0.1:{port} --dtu-id {id}`
    /// with `args` after (`--devices`, `--dtu-hex`, `--heartbeat-s`, ...).
    pub fn start(port: u16, id: &str, args: &[&str]) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("log file: {e}"));
        let append = || {
            std::fs::OpenOptions::new()
                .append(true)
                .open(log.path())
                .unwrap_or_else(|e| panic!("log file: {e}"))
        };
        let (out, err) = (append(), append());
        let child = Command::new(sim_binary())
            .args([
                "modbus",
                "--dtu",
                &format!("127.0.0.1:{port}"),
                "--dtu-id",
                id,
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn anquan-sim: {e}"));
        Self {
            child: Some(child),
            log,
        }
    }

    /// What it printed so far (the gateway config, connection errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// `kill -9`: the DTU loses power; its TCP connection is closed by
    /// the kernel.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&mut c);
        }
    }
}

impl Drop for SimDtu {
    fn drop(&mut self) {
        self.kill();
    }
}
