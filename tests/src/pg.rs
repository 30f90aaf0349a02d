//! A PostgreSQL server of its own, for the benches: `initdb` + `pg_ctl`
//! from the Debian package (`/usr/lib/postgresql/*/bin`, installed by
//! `scripts/install-deps`), in a temp dir, on a free loopback port, as
//! user `nobody` when we are root (postgres refuses root), stopped on drop.
//! As `monitor/tests/common/pg.rs` does, with errors as values.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::services::free_port;

/// A running server.
#[derive(Debug)]
pub struct Postgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The server's major version (the bin directory's name).
    pub version: String,
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_nobody: bool,
}

fn bin_dir() -> Result<PathBuf, String> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            format!("/usr/lib/postgresql: {e}: PostgreSQL is not installed (scripts/install-deps)")
        })?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/initdb (scripts/install-deps)".into())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    fn cmd(&self, prog: &str) -> Command {
        let exe = self.bin.join(prog);
        if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// Creates a cluster under `parent` (a temp dir is made inside it) and
    /// starts it with `settings` (`-c name=value` each), `fsync` as asked.
    pub fn start(parent: &Path, fsync: bool, settings: &[&str]) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("storm-pg")
            .tempdir_in(parent)
            .map_err(|e| format!("temp dir in {}: {e}", parent.display()))?;
        let as_nobody = is_root();
        if as_nobody {
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534))
                .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
        }
        let bin = bin_dir()?;
        let version = bin
            .parent()
            .and_then(|p| p.file_name())
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut pg = Self {
            port: free_port(),
            version,
            dir,
            bin,
            as_nobody,
        };
        let data = pg.dir.path().join("data");
        let out = pg
            .cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let mut opts = format!(
            "-c listen_addresses=127.0.0.1 -c fsync={} -c max_connections=200",
            if fsync { "on" } else { "off" }
        );
        for s in settings {
            opts.push_str(" -c ");
            opts.push_str(s);
        }
        for _ in 0..3 {
            let out = pg
                .cmd("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} {opts}",
                    pg.port,
                    pg.dir.path().display()
                ))
                .args(["-w", "-t", "60", "-l"])
                .arg(pg.dir.path().join("log"))
                .arg("start")
                .output()
                .map_err(|e| format!("pg_ctl: {e}"))?;
            if out.status.success() {
                return Ok(pg);
            }
            pg.port = free_port();
        }
        Err(format!(
            "pg_ctl start failed: {}",
            std::fs::read_to_string(pg.dir.path().join("log")).unwrap_or_default()
        ))
    }

    /// `postgres://postgres@127.0.0.1:port/{db}`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (`[a-z_]+`) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let out = self
            .cmd("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(name)
            .output()
            .map_err(|e| format!("createdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "createdb {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(self.url(name))
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("data").join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Its directory (data, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
