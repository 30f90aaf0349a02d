//! The monitor with web accounts, five venues (one per code color) and a
//! public base URL equal to its own address, for the web tests.

use std::sync::Arc;

use anquan_monitor::clock::ManualClock;
use anquan_monitor::{App, http};
use serde_json::{Value, json};

use super::{GW, OP, T0};

/// The accounts: username = password prefix "pw-" + username.
pub const USERS: [(&str, &str, Option<&str>); 5] = [
    ("ent", "enterprise", Some("safety1")),
    ("grid", "grid", Some("grid")),
    ("county", "county", Some("county1")),
    ("city", "city", Some("city1")),
    ("admin", "admin", None),
];

pub fn password(user: &str) -> String {
    format!("pw-{user}")
}

pub struct WebHarness {
    pub base: String,
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn extra(base: &str, evidence_dir: &std::path::Path) -> String {
    let mut s = format!(
        "[web]\npublic_base_url = \"{base}\"\nsession_ttl_min = 60\nsignin_max_failures = 3\n\
         [evidence]\ndir = \"{}\"\n",
        evidence_dir.display()
    );
    for (u, role, person) in USERS {
        let hash = anquan_monitor::web::auth::hash_password(
            &password(u),
            anquan_monitor::web::auth::test_params(),
        )
        .unwrap();
        s.push_str(&format!(
            "[[users]]\nusername = \"{u}\"\npassword_hash = \"{hash}\"\nrole = \"{role}\"\n"
        ));
        if let Some(p) = person {
            s.push_str(&format!("person_id = \"{p}\"\n"));
        }
    }
    // Another town of the county, with a venue: outside the town's users'
    // scope.
    s.push_str(
        "[[seed.regions]]\nid = \"town2\"\nname = \"Town 2\"\ntier = \"town\"\nparent_id = \"county\"\n\
         [[seed.venues]]\nid = \"s7\"\nname = \"Far venue\"\nsector = \"hotel\"\naddress = \"7 River Road\"\nregion_id = \"town2\"\n\
         [[seed.devices]]\nid = \"gas-s7\"\nvenue_id = \"s7\"\nkind = \"gas\"\n",
    );
    // One venue per color (s1 exists: red; s6 stays green).
    for (i, (id, lat, lon)) in [
        ("s3", 30.75, 120.80),
        ("s4", 30.65, 120.60),
        ("s5", 30.80, 120.65),
        ("s6", 30.60, 120.85),
    ]
    .iter()
    .enumerate()
    {
        s.push_str(&format!(
            "[[seed.venues]]\nid = \"{id}\"\nname = \"Venue {n}\"\nsector = \"hotel\"\naddress = \"{n} Hill Road\"\nlat = {lat}\nlon = {lon}\nregion_id = \"town\"\n\
             [[seed.devices]]\nid = \"gas-{id}\"\nvenue_id = \"{id}\"\nkind = \"gas\"\n",
            n = i + 3
        ));
    }
    s
}

impl WebHarness {
    /// On SQLite in a temp dir.
    pub async fn start() -> Self {
        Self::start_on(None).await
    }

    /// On `db_url` (PostgreSQL), or SQLite in a temp dir.
    pub async fn start_on(db_url: Option<String>) -> Self {
        Self::start_tuned(db_url, |_| {}).await
    }

    /// As [`WebHarness::start_on`], with `tune` applied to the configuration.
    pub async fn start_tuned(
        db_url: Option<String>,
        tune: impl FnOnce(&mut anquan_monitor::Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let mut cfg = super::config(
            &db_url.unwrap_or_else(|| super::sqlite_url(&dir)),
            "http://127.0.0.1:9",
            None,
            &extra(&base, &dir.path().join("evidence")),
        );
        tune(&mut cfg);
        let clock = Arc::new(ManualClock::new(T0));
        let app = App::new(cfg, clock.clone()).await.unwrap();
        let router =
            http::router(app.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
        Self {
            base,
            app,
            clock,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            _dir: dir,
        }
    }

    /// An alarm from the gateway.
    pub async fn alarm(&self, site: &str, device: &str, n: u32, level: &str) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/alarms", self.base))
            .bearer_auth(GW)
            .json(&json!({
                "event_id": format!("gw-01/{site}/{device}/gas.lel/{n}"),
                "site": site, "device": device, "kind": "gas", "rule": "gas.lel",
                "level": level, "state": "raised", "value": 55.0, "threshold": 50.0,
                "ts_ms": T0, "gateway": "gw-01"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().await.unwrap();
        v["warning_id"].as_str().unwrap().to_string()
    }

    /// Operator-token API calls.
    pub async fn api_post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(OP)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn api_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(OP)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A hazard on `venue` moved by the API to `VERIFYING` (filed with its
    /// 四项清单, rectified); returns its id.
    pub async fn hazard_to_verifying(&self, venue: &str, category: &str) -> String {
        let id = self.new_hazard(venue, category).await;
        for (to, fields) in [
            ("JUDGED", json!({"severity": "general"})),
            (
                "FILED",
                json!({"problem": "p", "measures": "m", "standard": "s", "responsibility": "r",
                       "acceptance_unit": "county office", "owner_id": "safety1", "due_ms": T0 + 86_400_000}),
            ),
            ("RECTIFYING", json!({})),
            ("VERIFYING", json!({"acceptance_record": "photo 1"})),
        ] {
            let (s, b) = self
                .api_post(
                    &format!("/api/v1/hazards/{id}/transition"),
                    json!({"to": to, "actor": "county1", "reason": "test", "fields": fields}),
                )
                .await;
            assert_eq!(s, 200, "{to}: {b}");
        }
        id
    }

    pub async fn new_hazard(&self, venue: &str, category: &str) -> String {
        let (s, b) = self
            .api_post(
                "/api/v1/hazards",
                json!({"actor": "grid", "venue_id": venue, "category": category,
                       "title": format!("hazard {category}"), "source": "inspection"}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    /// The sign-in form's pre-session token: (cookie header, form value).
    pub async fn login_token(&self) -> (String, String) {
        let r = self
            .http
            .get(format!("{}/web/sign-in", self.base))
            .send()
            .await
            .unwrap();
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        let cookie = set.split(';').next().unwrap().to_string();
        let token = cookie.split_once('=').unwrap().1.to_string();
        let page = r.text().await.unwrap();
        assert!(page.contains(&token));
        (cookie, token)
    }

    /// POSTs the sign-in form (with a fresh form token).
    pub async fn post_sign_in(&self, user: &str, pw: &str) -> reqwest::Response {
        self.post_sign_in_from(user, pw, None).await
    }

    /// POSTs the sign-in form with `X-Forwarded-For: from` when given.
    pub async fn post_sign_in_from(
        &self,
        user: &str,
        pw: &str,
        from: Option<&str>,
    ) -> reqwest::Response {
        let (cookie, token) = self.login_token().await;
        let mut req = self.http.post(format!("{}/web/sign-in", self.base));
        if let Some(ip) = from {
            req = req.header("x-forwarded-for", ip);
        }
        req.header("cookie", cookie)
            .form(&[
                ("username", user),
                ("password", pw),
                ("next", "/web"),
                ("login_csrf", token.as_str()),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Signs in through the form; returns (cookie value, csrf token).
    pub async fn sign_in(&self, user: &str) -> (String, String) {
        let r = self.post_sign_in(user, &password(user)).await;
        assert_eq!(r.status().as_u16(), 303, "sign-in of {user}");
        let set = r
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let cookie = set
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_string();
        let page = self.page(&cookie, "/web").await;
        let csrf = page
            .split("<meta name=\"csrf\" content=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        (cookie, csrf)
    }

    pub async fn page(&self, cookie: &str, path: &str) -> String {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("anquan_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.text().await.unwrap()
    }

    /// A form POST with the session; returns the status.
    pub async fn form(&self, cookie: &str, path: &str, form: &[(&str, &str)]) -> u16 {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("anquan_session={cookie}"))
            .form(form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// Decodes the QR code in a PNG (greyscale) to its text.
pub fn decode_qr_png(png_bytes: &[u8]) -> String {
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

/// The web's storage paths in one pass (run on SQLite and PostgreSQL):
/// accounts seeded, sign-in, session lookup with the person's region, the
/// ledger, a hazard closed through the web by the county with a 403 for the
/// enterprise, the public page, account removal.
pub async fn smoke(h: &WebHarness) {
    let hz = h.hazard_to_verifying("s1", "smoke").await;
    let (ent, ent_csrf) = h.sign_in("ent").await;
    assert!(h.page(&ent, "/web/hazards").await.contains(&hz));
    let close = |csrf: String| {
        vec![
            ("csrf", csrf),
            ("to", "CLOSED".to_string()),
            ("acceptance_record", "ok".to_string()),
            ("signer", "Leader".to_string()),
        ]
    };
    let post = |cookie: &str, form: Vec<(&'static str, String)>| {
        h.http
            .post(format!("{}/web/hazards/{hz}/transition", h.base))
            .header("cookie", format!("anquan_session={cookie}"))
            .form(&form)
            .send()
    };
    assert_eq!(
        post(&ent, close(ent_csrf)).await.unwrap().status().as_u16(),
        403
    );
    let (county, county_csrf) = h.sign_in("county").await;
    assert_eq!(
        post(&county, close(county_csrf))
            .await
            .unwrap()
            .status()
            .as_u16(),
        303
    );
    assert_eq!(
        h.api_get(&format!("/api/v1/hazards/{hz}")).await["state"],
        "CLOSED"
    );
    let page = h.page(&county, &format!("/web/hazards/{hz}")).await;
    assert!(page.contains("data-state=\"CLOSED\""));
    h.page(&county, "/web").await;
    h.page(&county, "/web/tasks").await;
    let r = h
        .http
        .get(format!("{}/public/venues/s1", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let keep: Vec<_> = h
        .app
        .cfg
        .users
        .iter()
        .filter(|u| u.username != "ent")
        .cloned()
        .collect();
    let mut c = h.app.db.acquire().await.unwrap();
    anquan_monitor::web::auth::seed_users(&mut c, &keep, T0)
        .await
        .unwrap();
    anquan_monitor::web::auth::seed_users(&mut c, &keep, T0)
        .await
        .unwrap();
    drop(c);
    let r = h
        .http
        .get(format!("{}/web", h.base))
        .header("cookie", format!("anquan_session={ent}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        h.post_sign_in("ent", &password("ent"))
            .await
            .status()
            .as_u16(),
        401
    );
}

/// Uploads a photo (PNG bytes) to hazard `id` through the API; returns the
/// evidence id.
pub async fn upload_hazard_photo(h: &WebHarness, id: &str, png: &[u8]) -> String {
    let b = "----anquan-web-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"actor\"\r\n\r\ncounty1\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"exit.png\"\r\nContent-Type: image/png\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(png);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    let r = h
        .http
        .post(format!("{}/api/v1/hazards/{id}/evidence", h.base))
        .bearer_auth(OP)
        .header("content-type", format!("multipart/form-data; boundary={b}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// `POST /web/hazards/{id}/evidence` as a browser sends it (multipart with
/// `csrf` and `file`); returns the status and the `Location`.
pub async fn web_upload(
    h: &WebHarness,
    cookie: &str,
    id: &str,
    csrf: Option<&str>,
    data: &[u8],
) -> (u16, String) {
    let b = "----anquan-web-form-boundary";
    let mut body = Vec::new();
    if let Some(t) = csrf {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{t}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\nContent-Type: image/png\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    let r = h
        .http
        .post(format!("{}/web/hazards/{id}/evidence", h.base))
        .header("cookie", format!("anquan_session={cookie}"))
        .header("content-type", format!("multipart/form-data; boundary={b}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), loc)
}
