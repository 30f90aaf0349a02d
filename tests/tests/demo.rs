//! README's first command: `cargo run -p anquan-sim -- demo` must run and
//! print the alarms of the built-in scenario.

use std::process::Command;

use anquan_protocol::{AlarmEvent, AlarmState, Level};

#[test]
fn demo_prints_the_expected_alarms() {
    let out = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "anquan-sim",
            "--",
            "demo",
            "--minutes",
            "20",
        ])
        .current_dir(anquan_e2e::workspace_root())
        .output()
        .expect("cargo run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<AlarmEvent> = stdout
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .map(|json| {
            AlarmEvent::decode(json.as_bytes()).expect("printed events follow the contract")
        })
        .collect();
    let has = |rule: &str, state: AlarmState, level: Level| {
        events
            .iter()
            .any(|e| e.rule == rule && e.state == state && e.level == level)
    };
    assert!(
        has("gas.lel", AlarmState::Escalated, Level::Red),
        "{stdout}"
    );
    assert!(
        has("gas.lel", AlarmState::Cleared, Level::Orange),
        "{stdout}"
    );
    assert!(
        has("elec.temp3", AlarmState::Escalated, Level::Orange),
        "{stdout}"
    );
    // The burst drains the network: the static floor goes red. The
    // pressure-drop rate rule ships disabled (a pump stop looks like a
    // burst to it).
    assert!(
        has("water.pressure_low", AlarmState::Raised, Level::Red)
            || has("water.pressure_low", AlarmState::Escalated, Level::Red),
        "{stdout}"
    );
    assert!(
        !events.iter().any(|e| e.rule == "water.pressure_drop"),
        "{stdout}"
    );
    // 92 % of the rated moment is the pre-warning; lifting it in a 16 m/s
    // gust (Beaufort 6 or more) is orange while the gust lasts.
    assert!(
        has("crane.moment", AlarmState::Raised, Level::Yellow),
        "{stdout}"
    );
    assert!(
        has("crane.wind_lift", AlarmState::Raised, Level::Orange),
        "{stdout}"
    );
    assert!(
        has("crane.wind_lift", AlarmState::Cleared, Level::Orange),
        "{stdout}"
    );
    // Quiet devices stay quiet: no alarm on the untouched channels.
    assert!(
        !events
            .iter()
            .any(|e| e.rule == "elec.temp1" || e.rule == "elec.residual"),
        "{stdout}"
    );
    // The monitor ("六个自动") took every transition over HTTP and called
    // the site's people at once by SMS, voice and the WeCom group (the
    // providers' stand-ins), in Chinese with the value, the unit and the
    // deadline; the county when nobody answered (叫应); the safety
    // officer's SMS reply code acknowledged the crane's wind warning and
    // everyone called heard of it (闭环).
    assert!(
        stdout.contains(&format!(
            "monitor took {} of {} alarm transitions",
            events.len(),
            events.len()
        )),
        "{stdout}"
    );
    for line in [
        "monitor -> safety1  sms    【安全监管】橙色预警:滨江工地1号塔吊大风中起吊",
        "monitor -> safety1  voice  TTS_CALL",
        "monitor -> group    wecom  @safety1 【红色预警】",
        "monitor -> county1  sms    【安全监管】抄送红色预警:滨江工地可燃气体浓度",
        "%LEL(阈值50)",
        "monitor -> county1  sms    【安全监管】红色预警:滨江工地消防水压传感器消防水压过低0.01MPa(阈值0.02)",
        "monitor -> countyld sms",
        "to the call about the crane: acknowledged",
        "monitor -> manager  sms    【安全监管】已确认:滨江工地大风中起吊预警由王安全接手处置",
        "monitor -> grid1    sms    【安全监管】已恢复:滨江工地可燃气体浓度预警现场恢复",
        "crane.wind_lift      max orange ACKED    by safety1 (sms)",
        "the real APIs are not reached",
    ] {
        assert!(stdout.contains(line), "{line:?} not in:\n{stdout}");
    }
    assert!(
        stdout.contains("monitor: warning gas-0001   gas.lel              max red"),
        "{stdout}"
    );
    // Event ids are unique.
    let mut ids: Vec<_> = events
        .iter()
        .map(|e| e.event_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len());
}

/// `anquan-sim demo --web`: after the demo the monitor's web UI stays up
/// with demo accounts; the printed sign-in works, the duty screen lists
/// the demo's warnings, a printed acknowledgement link opens; Ctrl-C
/// (SIGINT) stops it.
#[test]
fn demo_web_keeps_the_monitor_up() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    let root = anquan_e2e::workspace_root();
    let built = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "anquan-sim"])
        .current_dir(&root)
        .status()
        .expect("cargo build");
    assert!(built.success());
    let bin = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("debug/anquan-sim");
    let mut child = Command::new(&bin)
        .args([
            "demo",
            "--minutes",
            "16",
            "--web",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("anquan-sim");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ready = || -> Option<(String, String, String)> {
        while Instant::now() < deadline {
            let Ok(l) = rx.recv_timeout(Duration::from_secs(1)) else {
                continue;
            };
            lines.push(l);
            let all = lines.join("\n");
            let Some(url) = all
                .split("web UI stays up: ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
            else {
                continue;
            };
            let pw = all
                .split("sign in as county password ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next());
            let link = all
                .split("或点")
                .nth(1)
                .and_then(|r| r.split("确认").next());
            if let (Some(pw), Some(link)) = (pw, link) {
                return Some((url.to_string(), pw.to_string(), link.to_string()));
            }
        }
        None
    };
    let got = ready();
    let stop = |child: &mut std::process::Child| {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    };
    let Some((url, pw, link)) = got else {
        stop(&mut child);
        panic!("no URL and sign-in printed:\n{}", lines.join("\n"));
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let base = url.trim_end_matches("/web").to_string();
            let r = http
                .get(format!("{base}/web/sign-in"))
                .send()
                .await
                .unwrap();
            let cookie = r.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
            let token = cookie.split_once('=').unwrap().1.to_string();
            let r = http
                .post(format!("{base}/web/sign-in"))
                .header("cookie", &cookie)
                .form(&[
                    ("username", "county"),
                    ("password", pw.as_str()),
                    ("next", "/web"),
                    ("login_csrf", token.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status().as_u16(),
                303,
                "sign-in with the printed password"
            );
            let session = r.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
            let page = http
                .get(format!("{base}/web"))
                .header("cookie", &session)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(
                page.contains("lv-red") && page.contains("滨江工地"),
                "{page}"
            );
            let ack = http.get(&link).send().await.unwrap();
            assert_eq!(ack.status().as_u16(), 200, "{link}");
        })
    }));
    let st = stop(&mut child);
    checked.unwrap();
    assert!(st.is_some(), "it did not stop on SIGINT");
}
