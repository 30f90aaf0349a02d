//! A real PostgreSQL for the test: `initdb` + `pg_ctl` from the Debian
//! package, in a temp dir, on a free loopback port, as user `nobody` when
//! we are root (postgres refuses root). Stopped on drop.

use std::path::PathBuf;
use std::process::Command;

pub struct Pg {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_nobody: bool,
}

fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/install-deps (Debian package postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("no /usr/lib/postgresql/*/bin/initdb")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Pg {
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

    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("monitor-pg")
            .tempdir()
            .unwrap();
        let as_nobody = unsafe_free_is_root();
        if as_nobody {
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
        }
        let mut pg = Self {
            port: free_port(),
            dir,
            bin: bin_dir(),
            as_nobody,
        };
        let data = pg.dir.path().join("data");
        let out = pg
            .cmd("initdb")
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // One test starts many monitors on one server (each a pool of up
        // to 8): more connections than the default 100.
        for _ in 0..3 {
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400",
                pg.port,
                pg.dir.path().display()
            );
            let out = pg
                .cmd("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &opts, "-w", "-l"])
                .arg(pg.dir.path().join("log"))
                .arg("start")
                .output()
                .unwrap();
            if out.status.success() {
                return pg;
            }
            pg.port = free_port();
        }
        panic!(
            "pg_ctl start failed: {}",
            std::fs::read_to_string(pg.dir.path().join("log")).unwrap_or_default()
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A fresh database.
    pub async fn database(&self, name: &str) -> String {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        self.url(name)
    }
}

fn unsafe_free_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
