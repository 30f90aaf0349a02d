//! Two `anquan-monitor` replicas on one PostgreSQL behind a gateway: the
//! gateway's alarm reaches replica A, replica B sees the same single
//! warning (shared database), and the same event redelivered to replica B
//! (as after a load-balancer failover) is accepted and changes nothing.
//! Exactly-once reminders and calls across replicas are tested by the
//! monitor itself (`monitor/tests/api_postgres.rs`).

// Test helpers outside #[test] fns: a failed setup step is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::mqtt::{Publisher, gas_frame, now_ms, telemetry_topic};
use anquan_e2e::services::{Mosquitto, eventually, free_port, wait_for_port};

const INTAKE: &str = "change-me-gateway-token";
const OPERATOR: &str = "change-me-operator-token";

/// PostgreSQL from the Debian package in a temp dir (as `nobody` when
/// root: postgres refuses root), stopped on drop.
struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_nobody: bool,
}

impl Pg {
    fn cmd(&self, prog: &str) -> Command {
        if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(self.bin.join(prog));
            c
        } else {
            Command::new(self.bin.join(prog))
        }
    }

    fn start() -> Self {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL: run scripts/install-deps")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .collect();
        dirs.sort();
        let dir = tempfile::tempdir().unwrap();
        let as_nobody = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if as_nobody {
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
        }
        let pg = Self {
            dir,
            bin: dirs.pop().expect("no initdb"),
            port: free_port(),
            as_nobody,
        };
        let data = pg.dir.path().join("data");
        let out = pg
            .cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        let out = pg
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                pg.port,
                pg.dir.path().display()
            ))
            .arg("-l")
            .arg(pg.dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {out:?}");
        let out = pg
            .cmd("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg("anquan")
            .output()
            .unwrap();
        assert!(out.status.success(), "createdb: {out:?}");
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/anquan", self.port)
    }
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

/// One replica in this process, as `anquan-monitor serve` runs it.
fn start_replica(rt: &tokio::runtime::Runtime, db_url: &str) -> u16 {
    let port = free_port();
    let example = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../monitor/monitor.example.toml"),
    )
    .unwrap();
    let text = example
        .replace(
            "listen = \"127.0.0.1:8088\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace("sqlite://monitor.db?mode=rwc", db_url);
    assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains(db_url));
    let cfg = anquan_monitor::Config::parse(&text).unwrap();
    rt.spawn(async move {
        let app = anquan_monitor::App::new(cfg, Arc::new(anquan_monitor::clock::SystemClock))
            .await
            .unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(anquan_monitor::scheduler::run(app.clone(), stop));
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let _ = axum::serve(l, anquan_monitor::http::router(app)).await;
    });
    assert!(
        wait_for_port(port, Duration::from_secs(60)),
        "replica on {port} did not come up"
    );
    port
}

fn warnings(rt: &tokio::runtime::Runtime, port: u16) -> Vec<serde_json::Value> {
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/v1/warnings"))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.json().await.unwrap()
    })
}

#[test]
fn two_monitor_replicas_share_one_postgres_and_take_an_event_once() {
    let pg = Pg::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // One after the other: both migrate and seed the same database.
    let a = start_replica(&rt, &pg.url());
    let b = start_replica(&rt, &pg.url());

    let mq = Mosquitto::start();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((format!("http://127.0.0.1:{a}"), INTAKE.into())),
        ..Setup::default()
    });
    let mut p = Publisher::connect(mq.port(), "devs");
    p.publish(
        &telemetry_topic("s1", "gas-0001"),
        &gas_frame("gas-0001", 1, now_ms(), 60.0),
    );
    let on_b = eventually(Duration::from_secs(60), "the warning on replica B", || {
        let w = warnings(&rt, b);
        (!w.is_empty()).then_some(w)
    });
    assert_eq!(on_b.len(), 1, "{on_b:?}\ngateway log:\n{}", gw.log());
    assert_eq!(warnings(&rt, a).len(), 1);

    // The same event redelivered to the other replica.
    let event = serde_json::json!({
        "event_id": "gw-test/s1/gas-0001/gas.lel/1",
        "site": "s1", "device": "gas-0001", "kind": "gas", "rule": "gas.lel",
        "level": "red", "state": "raised", "value": 60.0, "threshold": 50.0,
        "ts_ms": now_ms(), "gateway": "gw-test"
    });
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{b}/api/v1/alarms"))
            .bearer_auth(INTAKE)
            .json(&event)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(status.is_success(), "redelivery answered {status}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        warnings(&rt, a).len(),
        1,
        "a duplicate made a second warning"
    );
    assert_eq!(warnings(&rt, b).len(), 1);
}
