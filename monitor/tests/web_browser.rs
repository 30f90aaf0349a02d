//! The web front in a real browser: headless Chromium (Debian's
//! `chromium` + `chromium-driver`, see scripts/install-deps) driven over
//! WebDriver by fantoccini, against the monitor in process on SQLite.
//!
//! One session walks the whole flow: sign in; a new alarm appears on the
//! dashboard without a reload (SSE) and is acknowledged in the browser; a
//! hazard goes through its lifecycle with the roles that may move it; the
//! enterprise cannot close it (the server answers 403 to the direct
//! request, not just a hidden button); every venue's public page, opened
//! from the URL decoded out of its QR code, shows the right color.
//! Screenshots of the main pages go to `target/screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::web::{WebHarness, decode_qr_png, password};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Every wait in the browser is bounded by this (a hang fails the test;
/// nothing asserts on how fast things are).
const WAIT: Duration = Duration::from_secs(30);

/// chromedriver on a free loopback port; killed on drop.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: run scripts/install-deps (chromium-driver)");
        let d = Self {
            child,
            port,
            _profile: tempfile::tempdir().unwrap(),
        };
        // Bounded wait for the port.
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return d;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not listen on {port}");
    }

    async fn client(&self) -> Client {
        let mut caps = fantoccini::wd::Capabilities::new();
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromium is not installed: run scripts/install-deps");
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", "--window-size=1280,1000", "--lang=zh-CN",
                    format!("--user-data-dir={}", self._profile.path().display()),
                ],
                "prefs": {"intl.accept_languages": "zh-CN,zh"},
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let d = target.join("screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert_eq!(&png[1..4], b"PNG");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn wait_css(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Polls a JS condition until it is true, at most [`WAIT`].
async fn wait_js(c: &Client, cond: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if c.execute(cond, vec![]).await.unwrap() == json!(true) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {cond}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(c: &Client, h: &WebHarness, user: &str) {
    c.goto(&format!("{}/web", h.base)).await.unwrap();
    let form = wait_css(c, "#sign-in-form").await;
    form.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    form.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(&password(user))
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(c, "#alarms-table").await;
    let who = c
        .find(Locator::Id("who"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(who.starts_with(user), "{who}");
}

async fn sign_out(c: &Client) {
    c.find(Locator::Id("sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(c, "#sign-in-form").await;
}

async fn hazard_state(c: &Client, want: &str) {
    wait_css(c, &format!("#hazard-state[data-state=\"{want}\"]")).await;
}

/// Fills the inputs of a transition form and submits it.
async fn act(c: &Client, to: &str, fields: &[(&str, &str)]) {
    let form = wait_css(c, &format!("#act-{to}")).await;
    for (name, value) in fields {
        // Through the DOM: date inputs take keys in the locale's order.
        c.execute(
            "arguments[0].querySelector('[name=\"' + arguments[1] + '\"]').value = arguments[2];",
            vec![
                serde_json::to_value(&form).unwrap(),
                json!(name),
                json!(value),
            ],
        )
        .await
        .unwrap();
    }
    form.find(Locator::Id(&format!("do-{to}")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_end_to_end() {
    let h = WebHarness::start().await;
    let driver = Driver::start();
    let c = driver.client().await;

    // Sign-in page (the dashboard redirects there).
    c.goto(&format!("{}/web", h.base)).await.unwrap();
    wait_css(&c, "#sign-in-form").await;
    shot(&c, "sign-in").await;
    sign_in(&c, &h, "county").await;

    // Live: wait until the SSE stream is open, then raise an alarm.
    wait_css(&c, "#live-status.on").await;
    let w = h.alarm("s1", "gas-0001", 1, "red").await;
    let row = wait_css(&c, &format!("#w-{w}")).await;
    let state = row.attr("data-state").await.unwrap().unwrap();
    assert!(state == "RAISED" || state == "NOTIFIED", "{state}");
    assert_eq!(
        c.find(Locator::Id("count-red"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "1"
    );
    // Acknowledge it in the browser.
    let html = row.html(false).await.unwrap();
    let table = c
        .find(Locator::Id("alarms-table"))
        .await
        .unwrap()
        .html(false)
        .await
        .unwrap();
    row.find(Locator::Css("button.ack"))
        .await
        .unwrap_or_else(|e| panic!("{e}: {html}\n{table}"))
        .click()
        .await
        .unwrap();
    wait_css(&c, &format!("#w-{w}[data-state=\"ACKED\"]")).await;
    // The map pin on the dashboard was green at page load and follows.
    wait_css(&c, "#pin-s1[data-color=\"red\"]").await;
    let v = h.api_get(&format!("/api/v1/warnings/{w}")).await;
    assert_eq!(v["state"], "ACKED");
    assert_eq!(v["acked_by"], "county1");
    // More venues, one per color, arrive live as well.
    let mut last = String::new();
    for (i, (site, dev, lvl)) in [
        ("s3", "gas-s3", "orange"),
        ("s4", "gas-s4", "yellow"),
        ("s5", "gas-s5", "blue"),
    ]
    .into_iter()
    .enumerate()
    {
        last = h.alarm(site, dev, 10 + i as u32, lvl).await;
    }
    wait_css(&c, &format!("#w-{last}")).await;
    shot(&c, "dashboard").await;

    // Risk map.
    c.goto(&format!("{}/web/map", h.base)).await.unwrap();
    for (v, color) in [
        ("s1", "red"),
        ("s3", "orange"),
        ("s4", "yellow"),
        ("s5", "blue"),
        ("s6", "green"),
    ] {
        let pin = wait_css(&c, &format!("#pin-{v}")).await;
        assert_eq!(
            pin.attr("data-color").await.unwrap().as_deref(),
            Some(color),
            "{v}"
        );
    }
    shot(&c, "map").await;
    // With a tile URL the map page adds Leaflet (vendored); tiles cannot
    // load here (no network), the venue markers must.
    let mut cfg = (*h.app.cfg).clone();
    cfg.web.map_tile_url = "http://127.0.0.1:9/{z}/{x}/{y}.png".into();
    let app2 = anquan_monitor::App {
        cfg: std::sync::Arc::new(cfg),
        ..h.app.clone()
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base2 = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(l, anquan_monitor::http::router(app2))
            .await
            .unwrap()
    });
    // Cookies are per host, not per port: the same session works.
    c.goto(&format!("{base2}/web/map")).await.unwrap();
    wait_css(&c, "#leaflet-map .leaflet-interactive").await;
    let markers = c
        .find_all(Locator::Css("#leaflet-map path.leaflet-interactive"))
        .await
        .unwrap();
    assert_eq!(markers.len(), 5, "one marker per venue with coordinates");
    shot(&c, "map-leaflet").await;

    // Hazard ledger → hazard page; the county judges and files it.
    let hz = h.new_hazard("s1", "fire.exit").await;
    c.goto(&format!("{}/web/hazards?state=open", h.base))
        .await
        .unwrap();
    wait_css(&c, &format!("#h-{hz}")).await;
    shot(&c, "ledger").await;
    c.find(Locator::Css(&format!("#h-{hz} a.hz-link")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    hazard_state(&c, "DETECTED").await;
    act(
        &c,
        "JUDGED",
        &[("severity", "general"), ("reason", "blocked exit")],
    )
    .await;
    hazard_state(&c, "JUDGED").await;
    act(
        &c,
        "FILED",
        &[
            ("problem", "exit 3 chained"),
            ("measures", "remove the chain, daily check"),
            ("standard", "GB 50016 exits"),
            ("responsibility", "venue safety officer"),
            ("acceptance_unit", "county emergency office"),
            ("owner_id", "safety1"),
            ("due", "2026-11-20"),
        ],
    )
    .await;
    hazard_state(&c, "FILED").await;
    sign_out(&c).await;

    // The enterprise rectifies and submits for verification …
    sign_in(&c, &h, "ent").await;
    c.goto(&format!("{}/web/hazards/{hz}", h.base))
        .await
        .unwrap();
    act(&c, "RECTIFYING", &[]).await;
    hazard_state(&c, "RECTIFYING").await;
    // A photo of the fix, uploaded through the page's file input.
    let photo_dir = tempfile::tempdir().unwrap();
    let photo = photo_dir.path().join("fixed.png");
    std::fs::write(&photo, anquan_monitor::web::qr::png("fixed", 3).unwrap()).unwrap();
    let input = wait_css(&c, "#upload-form input[type=file]").await;
    input.send_keys(&photo.display().to_string()).await.unwrap();
    c.find(Locator::Id("do-upload"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, "#photos img").await;
    // It loads (same origin, allowed by the CSP, served to this session).
    wait_js(
        &c,
        "var i = document.querySelector('#photos img'); return !!i && i.complete && i.naturalWidth > 0;",
    )
    .await;
    act(
        &c,
        "VERIFYING",
        &[("acceptance_record", "chain removed, photo #12")],
    )
    .await;
    hazard_state(&c, "VERIFYING").await;
    // … but may not close it: no button, and the server says 403.
    assert!(c.find(Locator::Id("act-CLOSED")).await.is_err());
    wait_css(&c, "#no-actions").await;
    let cookie = c.get_named_cookie("anquan_session").await.unwrap();
    let csrf = c
        .find(Locator::Css("meta[name=csrf]"))
        .await
        .unwrap()
        .attr("content")
        .await
        .unwrap()
        .unwrap();
    let r = h
        .http
        .post(format!("{}/web/hazards/{hz}/transition", h.base))
        .header("cookie", format!("anquan_session={}", cookie.value()))
        .form(&[
            ("csrf", csrf.as_str()),
            ("to", "CLOSED"),
            ("acceptance_unit", "x"),
            ("acceptance_record", "x"),
            ("signer", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        h.api_get(&format!("/api/v1/hazards/{hz}")).await["state"],
        "VERIFYING"
    );
    sign_out(&c).await;

    // The county accepts and closes (销号).
    sign_in(&c, &h, "county").await;
    c.goto(&format!("{}/web/hazards/{hz}", h.base))
        .await
        .unwrap();
    act(
        &c,
        "CLOSED",
        &[("signer", "Director Wang"), ("reason", "accepted on site")],
    )
    .await;
    hazard_state(&c, "CLOSED").await;
    let hist = c
        .find(Locator::Id("history"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for s in [
        "DETECTED",
        "JUDGED",
        "FILED",
        "RECTIFYING",
        "VERIFYING",
        "CLOSED",
    ] {
        assert!(hist.contains(s), "{s} not in history: {hist}");
    }
    shot(&c, "hazard").await;
    let hzv = h.api_get(&format!("/api/v1/hazards/{hz}")).await;
    assert_eq!(hzv["signer"], "Director Wang");

    // Public pages, opened from the URL in each venue's QR code. s5's blue
    // notice is not judged yet: it does not colour the public code.
    for (v, color) in [
        ("s1", "red"),
        ("s3", "orange"),
        ("s4", "yellow"),
        ("s5", "green"),
        ("s6", "green"),
    ] {
        let png = h
            .http
            .get(format!("{}/public/venues/{v}/qr.png", h.base))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let url = decode_qr_png(&png);
        assert_eq!(url, format!("{}/public/venues/{v}", h.base));
        c.goto(&url).await.unwrap();
        let code = wait_css(&c, "#code").await;
        assert_eq!(
            code.attr("data-color").await.unwrap().as_deref(),
            Some(color),
            "{v}"
        );
        let bg = code.css_value("background-color").await.unwrap();
        let want = match color {
            "red" => "rgba(211, 47, 47, 1)",
            "orange" => "rgba(245, 124, 0, 1)",
            "yellow" => "rgba(251, 192, 45, 1)",
            "blue" => "rgba(25, 118, 210, 1)",
            _ => "rgba(56, 142, 60, 1)",
        };
        assert_eq!(bg, want, "{v}");
        if v == "s1" {
            shot(&c, "safety-code").await;
            // On a phone screen.
            c.set_window_size(390, 844).await.unwrap();
            c.goto(&url).await.unwrap();
            wait_css(&c, "#code").await;
            shot(&c, "safety-code-phone").await;
            c.set_window_size(1280, 1000).await.unwrap();
            c.goto(&format!("{url}/poster")).await.unwrap();
            wait_css(&c, "#qr svg").await;
            shot(&c, "poster").await;
        }
    }
    // The anonymous 举报 form on the public page (s6, after its color check).
    c.goto(&format!("{}/public/venues/s6", h.base))
        .await
        .unwrap();
    let form = wait_css(&c, "#report-form").await;
    form.find(Locator::Css("textarea[name=description]"))
        .await
        .unwrap()
        .send_keys("灭火器过期 / extinguisher expired")
        .await
        .unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(
            "//p[@id='report-result' and normalize-space(text()) != '']",
        ))
        .await
        .unwrap();
    // The report waits for an officer; accepted, it is a hazard.
    let queue = h.api_get("/api/v1/public-reports?state=PENDING").await;
    let pending: Vec<_> = queue
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["venue_id"] == "s6")
        .collect();
    assert_eq!(pending.len(), 1, "{queue}");
    assert_eq!(
        pending[0]["description"],
        "灭火器过期 / extinguisher expired"
    );
    let rid = pending[0]["id"].as_str().unwrap().to_string();
    let (s, r) = h
        .api_post(
            &format!("/api/v1/public-reports/{rid}/decide"),
            serde_json::json!({"person_id": "grid", "accept": true, "reason": "checked"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let hz = h.api_get("/api/v1/hazards").await;
    let reported: Vec<_> = hz
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["venue_id"] == "s6" && x["source"] == "report")
        .collect();
    assert_eq!(reported.len(), 1, "{hz}");
    assert_eq!(reported[0]["title"], "灭火器过期 / extinguisher expired");
    // The Leaflet markers follow pushed changes too (s6 is yellow now, from
    // the accepted report; a red alarm turns it red without a reload).
    c.goto(&format!("{base2}/web/map")).await.unwrap();
    wait_css(&c, "#live-status.on").await;
    wait_css(&c, "#leaflet-map path.venue-s6[fill=\"#fbc02d\"]").await;
    h.alarm("s6", "gas-s6", 99, "red").await;
    wait_css(&c, "#leaflet-map path.venue-s6[fill=\"#d32f2f\"]").await;

    // A maintenance window set and ended from the web (the county user).
    c.goto(&format!("{}/web/maintenance", h.base))
        .await
        .unwrap();
    let form = wait_css(&c, "#maintenance-new").await;
    c.execute(
        "arguments[0].querySelector('[name=venue_id]').value = 's1';",
        vec![serde_json::to_value(&form).unwrap()],
    )
    .await
    .unwrap();
    form.find(Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("计划停电 power shutdown")
        .await
        .unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let row = wait_css(&c, "#windows tbody tr").await;
    assert!(
        row.text()
            .await
            .unwrap()
            .contains("计划停电 power shutdown")
    );
    shot(&c, "maintenance").await;
    let end = row
        .find(Locator::Css("form input[name=reason]"))
        .await
        .unwrap();
    end.send_keys("work finished").await.unwrap();
    row.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "return document.querySelectorAll('#windows tbody tr').length === 0",
    )
    .await;
    c.close().await.unwrap();
}

/// Whether the element is wholly inside the viewport.
async fn in_view(c: &Client, css: &str) -> bool {
    c.execute(
        "var e = document.querySelector(arguments[0]); if (!e) { return false; } \
         var r = e.getBoundingClientRect(); \
         return r.width > 0 && r.top >= 0 && r.left >= 0 && \
           r.bottom <= window.innerHeight && r.right <= window.innerWidth;",
        vec![json!(css)],
    )
    .await
    .unwrap()
        == json!(true)
}

/// The duty screen on a phone: red first whatever the arrival order, a new
/// red flashes and sounds (the hook), the deadline counts down, the person
/// being called is shown, the acknowledge button is on screen; then the
/// one-click link of a message acknowledges as its person, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duty_screen_on_a_phone() {
    let h = WebHarness::start().await;
    let driver = Driver::start();
    let c = driver.client().await;
    c.set_window_size(390, 844).await.unwrap();
    sign_in(&c, &h, "county").await;
    wait_css(&c, "#live-status.on").await;

    let yellow = h.alarm("s4", "gas-s4", 1, "yellow").await;
    wait_css(&c, &format!("#w-{yellow}")).await;
    assert_eq!(
        c.execute("return window.anquanAlerts.length;", vec![])
            .await
            .unwrap(),
        json!(0),
        "only a red alerts"
    );
    let red = h.alarm("s1", "gas-0001", 2, "red").await;
    let orange = h.alarm("s3", "gas-s3", 3, "orange").await;
    wait_css(&c, &format!("#w-{orange}")).await;
    wait_css(&c, &format!("#w-{red}.flash-red")).await;
    // Red first, then orange, then yellow (arrival: yellow, red, orange).
    let order = c
        .execute(
            "return Array.from(document.querySelectorAll('#alarms-table tbody tr[id]')).map(function (r) { return r.id; });",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        order,
        json!([
            format!("w-{red}"),
            format!("w-{orange}"),
            format!("w-{yellow}")
        ])
    );
    // The sound/flash hook saw exactly the red one.
    let alerts = c
        .execute("return window.anquanAlerts;", vec![])
        .await
        .unwrap();
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    assert_eq!(alerts[0]["id"], json!(red));
    assert_eq!(alerts[0]["level"], "red");
    wait_css(&c, "body[data-alerts=\"1\"]").await;
    // The row: value vs threshold with the unit, the Chinese rule name,
    // who is being called now, the countdown to the 5-minute deadline.
    let text = wait_css(&c, &format!("#w-{red}"))
        .await
        .text()
        .await
        .unwrap();
    for part in ["可燃气体浓度", "%LEL", "Safety 1"] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    let cd = format!("#w-{red} .countdown");
    let left = |v: serde_json::Value| v.as_str().and_then(|s| s.parse::<i64>().ok()).unwrap();
    let first = left(
        c.execute(
            "return document.querySelector(arguments[0]).getAttribute('data-left-s');",
            vec![json!(cd)],
        )
        .await
        .unwrap(),
    );
    assert!((1..=300).contains(&first), "{first}");
    let shown = c
        .find(Locator::Css(&cd))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.starts_with("0") && shown.contains(':'), "{shown}");
    // It ticks (the page keeps the server's clock offset).
    wait_js(
        &c,
        &format!(
            "return Number(document.querySelector('{cd}').getAttribute('data-left-s')) < {first};"
        ),
    )
    .await;
    // The 叫应 ladder of the warning is there to open.
    assert!(
        c.find(Locator::Css(&format!(
            "#w-{red} details.ladder li[data-purpose=\"call\"]"
        )))
        .await
        .is_ok()
    );
    // On a phone, the acknowledge button of the first card is on screen.
    assert!(
        in_view(&c, &format!("#w-{red} button.ack")).await,
        "ack button off screen"
    );
    shot(&c, "duty-phone").await;

    // The link the server put in safety1's message (what they would tap).
    let grants = {
        let mut db = h.app.db.acquire().await.unwrap();
        anquan_monitor::ack::of_warnings(&mut db, std::slice::from_ref(&red))
            .await
            .unwrap()
    };
    let g = grants.iter().find(|g| g.person_id == "safety1").unwrap();
    let link = anquan_monitor::ack::link(&h.app, g).unwrap();
    assert!(link.starts_with(&format!("{}/a/", h.base)), "{link}");
    c.goto(&link).await.unwrap();
    wait_css(&c, "#ack-page[data-done=\"false\"]").await;
    let page = c
        .find(Locator::Id("ack-warning"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("%LEL"), "{page}");
    assert!(in_view(&c, "#ack-button").await, "ack button off screen");
    shot(&c, "ack-link-phone").await;
    c.find(Locator::Id("ack-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&c, "#ack-page[data-done=\"true\"]").await;
    let v = h.api_get(&format!("/api/v1/warnings/{red}")).await;
    assert_eq!(v["state"], "ACKED");
    assert_eq!(
        v["acked_by"], "safety1",
        "the link's person, not the session's"
    );
    assert_eq!(v["acked_via"], "link");
    // Single use: the same link again is a clear refusal page.
    c.goto(&link).await.unwrap();
    wait_css(&c, "#error-page[data-status=\"409\"]").await;
    // A forged one too.
    let flip = if link.ends_with('A') { 'B' } else { 'A' };
    c.goto(&format!("{}{flip}", &link[..link.len() - 1]))
        .await
        .unwrap();
    wait_css(&c, "#error-page[data-status=\"403\"]").await;
    // Back on the duty screen the red row is acknowledged, still first.
    c.goto(&format!("{}/web", h.base)).await.unwrap();
    wait_css(&c, &format!("#w-{red}[data-state=\"ACKED\"]")).await;
    let first_row = c
        .execute(
            "return document.querySelector('#alarms-table tbody tr[id]').id;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(first_row, json!(format!("w-{red}")));
    c.close().await.unwrap();
}
