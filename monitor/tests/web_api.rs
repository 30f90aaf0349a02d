//! The web front without a browser: sign-in, wrong password, rate limit,
//! CSRF rejection, session expiry, role 403s, the SSE stream, every page
//! rendering in both languages, and the QR code's URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::T0;
use common::web::{WebHarness, decode_qr_png, password};

#[tokio::test]
async fn sign_in_wrong_password_and_rate_limit() {
    let h = WebHarness::start().await;
    // Pages redirect to sign-in; other requests get 401.
    let r = h
        .http
        .get(format!("{}/web/hazards", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/web/sign-in?next=/web/hazards");
    let r = h
        .http
        .post(format!("{}/web/warnings/x/ack", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let sign = |user: &'static str, pw: String| {
        let h = &h;
        async move {
            let r = h.post_sign_in(user, &pw).await;
            let s = r.status().as_u16();
            let cookie = r
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().to_string());
            (s, cookie, r.text().await.unwrap())
        }
    };
    // The sign-in form needs its pre-session token (login CSRF): none,
    // an empty one, or one that does not match the cookie get 403.
    let (lc, token) = h.login_token().await;
    assert!(lc.starts_with("anquan_login="));
    let zeros = "0".repeat(64);
    for (cookie, form_token) in [
        (None, token.as_str()),
        (Some(lc.as_str()), ""),
        (Some(lc.as_str()), zeros.as_str()),
    ] {
        let pw = password("county");
        let mut req = h.http.post(format!("{}/web/sign-in", h.base)).form(&[
            ("username", "county"),
            ("password", pw.as_str()),
            ("login_csrf", form_token),
        ]);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 403);
    }
    let (s, cookie, _) = sign("county", password("county")).await;
    assert_eq!(s, 303);
    let cookie = cookie.unwrap();
    assert!(cookie.starts_with("anquan_session="), "{cookie}");
    let raw = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(raw.len(), 64, "256-bit id, hex");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure on loopback by default"
    );
    // Only a hash of the id is stored.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions WHERE id_hash = $1")
        .bind(raw)
        .fetch_one(&h.app.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // Wrong password and unknown user: 401, the same message.
    let (s, c, body) = sign("county", "nope".into()).await;
    assert_eq!((s, c), (401, None));
    assert!(body.contains("用户名或密码错误"), "{body}");
    let (s, _, body2) = sign("nobody", "nope".into()).await;
    assert_eq!(s, 401);
    assert!(body2.contains("用户名或密码错误"));
    // Limit 3 failures per (user, address) and window: the third failure
    // of "county" …
    for pw in ["nope2", "nope3"] {
        let (s, _, _) = sign("county", pw.into()).await;
        assert_eq!(s, 401);
    }
    // … and now even the right password is refused (429) for a while, in
    // the user's language.
    let (s, c, body) = sign("county", password("county")).await;
    assert_eq!((s, c), (429, None));
    assert!(
        body.contains("登录失败次数过多") && body.contains("15 分钟"),
        "{body}"
    );
    assert!(
        h.app
            .limiter
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    // Counted on /metrics: one ok (the first), four failed, one refused.
    let m = &h.app.metrics.web_signins;
    assert_eq!(m.with_label_values(&["ok"]).get(), 1);
    assert_eq!(m.with_label_values(&["failed"]).get(), 4);
    assert_eq!(m.with_label_values(&["refused"]).get(), 1);
    h.clock.advance_ms(901_000);
    let (s, _, _) = sign("county", password("county")).await;
    assert_eq!(s, 303, "the window passed");
}

/// S3: failures lock one user at one address, never the address: behind
/// a trusted reverse proxy every client has its own key (from
/// `X-Forwarded-For`), and from any other peer the header is ignored.
#[tokio::test]
async fn a_lockout_is_per_user_and_address_behind_a_trusted_proxy() {
    let h = WebHarness::start_tuned(None, |c| {
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let status = |r: reqwest::Response| r.status().as_u16();
    let room = Some("203.0.113.10");
    for _ in 0..3 {
        let r = h.post_sign_in_from("county", "wrong", room).await;
        assert_eq!(status(r), 401);
    }
    let r = h
        .post_sign_in_from("county", &password("county"), room)
        .await;
    assert_eq!(status(r), 429, "county is locked in the duty room");
    // Another user in the same room, right password: in.
    let r = h.post_sign_in_from("city", &password("city"), room).await;
    assert_eq!(status(r), 303, "one user's failures do not lock the room");
    // The same user from another address: in.
    let r = h
        .post_sign_in_from("county", &password("county"), Some("198.51.100.20"))
        .await;
    assert_eq!(status(r), 303, "nor the user elsewhere");
    // A client cannot pick its own key by prepending addresses: the proxy
    // appended the real one last.
    let r = h
        .post_sign_in_from("county", &password("county"), Some("1.2.3.4, 203.0.113.10"))
        .await;
    assert_eq!(status(r), 429);

    // Without a trusted proxy the header is ignored: all these come from
    // 127.0.0.1, whatever they claim.
    let h = WebHarness::start().await;
    for fake in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        let r = h.post_sign_in_from("county", "wrong", Some(fake)).await;
        assert_eq!(status(r), 401);
    }
    let r = h
        .post_sign_in_from("county", &password("county"), Some("10.0.0.4"))
        .await;
    assert_eq!(
        status(r),
        429,
        "X-Forwarded-For from an untrusted peer is ignored"
    );
}

/// Resident memory of this process, bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// S2: a burst of 1 000 concurrent wrong sign-ins (no account needed, one
/// address, every name different so the per-user limit does not stop
/// them) with the real argon2id parameters (~19 MiB per check): at most
/// `web.signin_parallel` checks ever run at once, the rest wait in a
/// bounded queue or are refused at once (429, busy), none is a 5xx, and
/// memory does not grow with the burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_burst_is_bounded_in_memory() {
    // The first account by name is what unknown names are checked
    // against: give it a hash with the real, default parameters.
    let real = anquan_monitor::web::auth::hash_password("real-secret", None).unwrap();
    let h = WebHarness::start_tuned(None, |c| {
        c.users.push(anquan_monitor::web::auth::UserSeed {
            username: "0-first".into(),
            password_hash: real,
            role: "admin".into(),
            person_id: None,
        });
    })
    .await;
    let (cookie, token) = h.login_token().await;
    // 1 000 concurrent requests from `token` (a wrong one is refused with
    // 403 before any password is looked at).
    let burst = |token: String| {
        let mut tasks = Vec::new();
        for i in 0..1000 {
            let (http, base, cookie, token) = (
                h.http.clone(),
                h.base.clone(),
                cookie.clone(),
                token.clone(),
            );
            tasks.push(tokio::spawn(async move {
                http.post(format!("{base}/web/sign-in"))
                    .header("cookie", cookie)
                    .form(&[
                        ("username", format!("nobody-{i}")),
                        ("password", "wrong".to_string()),
                        ("login_csrf", token),
                    ])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }));
        }
        tasks
    };
    // Warm up, in the same process: one verification, and the same burst
    // of connections without a verification, so what the 1 000 requests
    // themselves cost (client and server here) is paid before measuring.
    let r = h.post_sign_in("0-first", "wrong").await;
    assert_eq!(r.status().as_u16(), 401);
    for t in burst("0".repeat(64)) {
        assert_eq!(t.await.unwrap().unwrap(), 403);
    }
    let before = rss_bytes();
    let tasks = burst(token.clone());
    let mut by_status = std::collections::BTreeMap::new();
    for t in tasks {
        let s = t.await.unwrap().unwrap();
        *by_status.entry(s).or_insert(0) += 1;
    }
    let after = rss_bytes();
    assert_eq!(
        by_status
            .keys()
            .copied()
            .filter(|s| *s != 401 && *s != 429)
            .count(),
        0,
        "{by_status:?}"
    );
    assert!(
        by_status.get(&429).copied().unwrap_or(0) > 0,
        "the queue overflowed: {by_status:?}"
    );
    let peak = h
        .app
        .signin_gate
        .peak
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        peak <= h.app.cfg.web.signin_parallel as usize,
        "{peak} checks ran at once"
    );
    assert_eq!(
        h.app.metrics.web_signins.with_label_values(&["busy"]).get(),
        by_status[&429] as u64
    );
    // 1 000 unbounded checks would take ~19 GiB; the gate allows two at
    // a time (~40 MiB). 100 MiB leaves room for the allocator's slack.
    let grew = after.saturating_sub(before);
    assert!(grew < 100 << 20, "RSS grew by {} MiB", grew >> 20);
}

#[tokio::test]
async fn csrf_expiry_and_sign_out() {
    let h = WebHarness::start().await;
    let w = h.alarm("s1", "gas-0001", 1, "red").await;
    let (cookie, csrf) = h.sign_in("county").await;
    let ack = format!("/web/warnings/{w}/ack");
    assert_eq!(h.form(&cookie, &ack, &[]).await, 403, "no token");
    assert_eq!(
        h.form(&cookie, &ack, &[("csrf", "0".repeat(64).as_str())])
            .await,
        403
    );
    let (_, other) = h.sign_in("city").await;
    assert_eq!(
        h.form(&cookie, &ack, &[("csrf", other.as_str())]).await,
        403,
        "another session's token"
    );
    assert_eq!(
        h.api_get(&format!("/api/v1/warnings/{w}")).await["state"],
        "RAISED"
    );
    // The header works as well as the form field.
    let r = h
        .http
        .post(format!("{}{ack}", h.base))
        .header("cookie", format!("anquan_session={cookie}"))
        .header("x-csrf-token", &csrf)
        .form(&[("note", "on my way")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v = h.api_get(&format!("/api/v1/warnings/{w}")).await;
    assert_eq!(
        (v["state"].as_str(), v["acked_by"].as_str()),
        (Some("ACKED"), Some("county1"))
    );
    // Sign-out needs the token too, and ends the session.
    assert_eq!(h.form(&cookie, "/web/sign-out", &[]).await, 403);
    assert_eq!(
        h.form(&cookie, "/web/sign-out", &[("csrf", csrf.as_str())])
            .await,
        303
    );
    let r = h
        .http
        .get(format!("{}/web", h.base))
        .header("cookie", format!("anquan_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    // Expiry: a session is good for session_ttl_min (60) minutes.
    let (cookie, csrf) = h.sign_in("county").await;
    h.clock.advance_ms(59 * 60_000);
    h.page(&cookie, "/web").await;
    h.clock.advance_ms(60_001);
    let r = h
        .http
        .get(format!("{}/web", h.base))
        .header("cookie", format!("anquan_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "expired");
    let hz = h.hazard_to_verifying("s1", "x").await;
    assert_eq!(
        h.form(
            &cookie,
            &format!("/web/hazards/{hz}/transition"),
            &[("csrf", csrf.as_str()), ("to", "RECTIFYING")]
        )
        .await,
        401,
        "an expired session cannot act"
    );
}

#[tokio::test]
async fn roles_get_403_on_what_they_may_not_do() {
    let h = WebHarness::start().await;
    let hz = h.hazard_to_verifying("s1", "fire.exit").await;
    let path = format!("/web/hazards/{hz}/transition");
    let close = |csrf: String| {
        vec![
            ("csrf".to_string(), csrf),
            ("to".to_string(), "CLOSED".to_string()),
            ("acceptance_unit".to_string(), "county office".to_string()),
            ("acceptance_record".to_string(), "checked".to_string()),
            ("signer".to_string(), "Leader".to_string()),
        ]
    };
    let post = |cookie: String, form: Vec<(String, String)>| {
        let h = &h;
        let path = path.clone();
        async move {
            h.http
                .post(format!("{}{path}", h.base))
                .header("cookie", format!("anquan_session={cookie}"))
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for user in ["ent", "grid", "admin"] {
        let (cookie, csrf) = h.sign_in(user).await;
        assert_eq!(
            post(cookie.clone(), close(csrf.clone())).await,
            403,
            "{user} may not close (销号)"
        );
        // The page does not offer it either.
        let page = h.page(&cookie, &format!("/web/hazards/{hz}")).await;
        assert!(!page.contains("id=\"act-CLOSED\""), "{user}");
        assert_eq!(
            h.form(
                &cookie,
                &format!("/web/hazards/{hz}/list"),
                &[("csrf", csrf.as_str())]
            )
            .await,
            403,
            "{user} may not list (挂牌督办)"
        );
    }
    assert_eq!(
        h.api_get(&format!("/api/v1/hazards/{hz}")).await["state"],
        "VERIFYING"
    );
    // The admin takes no part in the workflow.
    let w = h.alarm("s1", "gas-0001", 1, "red").await;
    let (cookie, csrf) = h.sign_in("admin").await;
    assert_eq!(
        h.form(
            &cookie,
            &format!("/web/warnings/{w}/ack"),
            &[("csrf", csrf.as_str())]
        )
        .await,
        403
    );
    // Listed by the city: the county may no longer close (摘牌) it.
    let (city, city_csrf) = h.sign_in("city").await;
    assert_eq!(
        h.form(
            &city,
            &format!("/web/hazards/{hz}/list"),
            &[("csrf", city_csrf.as_str())]
        )
        .await,
        303
    );
    assert_eq!(
        h.api_get(&format!("/api/v1/hazards/{hz}")).await["listed_level"],
        "city"
    );
    let (county, county_csrf) = h.sign_in("county").await;
    assert_eq!(post(county.clone(), close(county_csrf.clone())).await, 403);
    assert_eq!(post(city, close(city_csrf)).await, 303);
    assert_eq!(
        h.api_get(&format!("/api/v1/hazards/{hz}")).await["state"],
        "CLOSED"
    );
    // A gate not met goes back to the page with the reason (no change).
    let hz2 = h.new_hazard("s1", "gate").await;
    let r = h
        .http
        .post(format!("{}/web/hazards/{hz2}/transition", h.base))
        .header("cookie", format!("anquan_session={county}"))
        .form(&[("csrf", county_csrf.as_str()), ("to", "JUDGED")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains("?err="), "{loc}");
    let page = h.page(&county, &loc).await;
    assert!(page.contains("id=\"action-error\""), "{page}");
}

#[tokio::test]
async fn live_stream_pushes_a_new_alarm() {
    let h = WebHarness::start().await;
    let (cookie, _) = h.sign_in("grid").await;
    let r = h
        .http
        .get(format!("{}/web/events", h.base))
        .header("cookie", format!("anquan_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let w = h.alarm("s3", "gas-s3", 1, "orange").await;
    let mut r = r;
    let mut seen = String::new();
    // Bounded: the event is already published when the alarm was answered.
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(chunk) = r.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(&w) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "{seen}");
    assert!(seen.contains("event: warning"), "{seen}");
    assert!(seen.contains("\"level\":\"orange\""), "{seen}");
    // At shutdown the stream ends (a graceful shutdown does not wait for
    // open dashboards).
    h.app.events.close();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while r.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream did not end");
    // Without a session: 401, no stream.
    let r = h
        .http
        .get(format!("{}/web/events", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn every_page_renders_in_both_languages() {
    let h = WebHarness::start().await;
    h.alarm("s1", "gas-0001", 1, "red").await;
    let hz = h.hazard_to_verifying("s1", "fire.exit").await;
    for user in ["ent", "county", "admin"] {
        let (cookie, _) = h.sign_in(user).await;
        for lang in ["zh", "en"] {
            for path in [
                "/web".to_string(),
                "/web/map".into(),
                "/web/hazards?state=open&sort=due&dir=asc".into(),
                format!("/web/hazards/{hz}"),
                "/web/tasks".into(),
                "/web/reports".into(),
                "/web/devices/gas-0001".into(),
                "/web/reports/monthly?region=town&date=2026-11-10&format=html".into(),
            ] {
                let sep = if path.contains('?') { '&' } else { '?' };
                let page = h.page(&cookie, &format!("{path}{sep}lang={lang}")).await;
                if path == "/web" {
                    let want = if lang == "zh" {
                        "实时预警"
                    } else {
                        "Live alarms"
                    };
                    assert!(page.contains(want), "{user} {lang}");
                }
            }
        }
    }
    let (cookie, _) = h.sign_in("county").await;
    let csv = h.page(&cookie, "/web/hazards.csv?state=VERIFYING").await;
    assert!(csv.contains(&hz) && csv.lines().count() == 2, "{csv}");
    // Accept-Language picks English without a cookie or ?lang=.
    let page = h
        .http
        .get(format!("{}/public/venues/s1", h.base))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Open major hazards"), "{page}");
}

#[tokio::test]
async fn qr_code_holds_the_public_url() {
    let h = WebHarness::start().await;
    let png = h
        .http
        .get(format!("{}/public/venues/s1/qr.png", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    let url = decode_qr_png(&png.bytes().await.unwrap());
    assert_eq!(url, format!("{}/public/venues/s1", h.base));
    let svg = h
        .http
        .get(format!("{}/public/venues/s1/qr.svg", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(svg, anquan_monitor::web::qr::svg(&url).unwrap());
    let poster = h
        .http
        .get(format!("{}/public/venues/s1/poster", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(poster.status().as_u16(), 200);
    // minijinja escapes '/' in HTML text.
    assert!(
        poster
            .text()
            .await
            .unwrap()
            .contains(&url.replace('/', "&#x2f;"))
    );
    let r = h
        .http
        .get(format!("{}/public/venues/nowhere/qr.png", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn openapi_lists_the_json_and_public_web_routes() {
    let doc: serde_json::Value = serde_json::from_str(anquan_monitor::openapi::json()).unwrap();
    let src = include_str!("../src/web/mod.rs");
    let mut n = 0;
    for line in src
        .lines()
        .filter(|l| l.trim_start().starts_with(".route(\""))
    {
        let path = line.split('"').nth(1).unwrap();
        // Pages (HTML) are not API; the JSON, SSE, action and public
        // endpoints are, each with the method it is routed with
        // (api_sqlite::openapi_lists_every_route asks the running router).
        if path.starts_with("/web/api/")
            || path.starts_with("/web/warnings/")
            || path == "/web/events"
            || path.starts_with("/public/venues/{id}/qr")
        {
            n += 1;
            let method = if line.contains(" get(") {
                "get"
            } else if line.contains(" post(") {
                "post"
            } else {
                panic!("{path}: neither get( nor post( on its line: {line}")
            };
            assert!(
                doc["paths"][path].get(method).is_some(),
                "{method} {path} is not in the OpenAPI document"
            );
        }
    }
    assert_eq!(n, 6);
}

#[tokio::test]
async fn users_see_and_act_only_in_their_region() {
    let h = WebHarness::start().await;
    let far = h.new_hazard("s7", "far").await;
    let near = h.new_hazard("s1", "near").await;
    let w = h.alarm("s7", "gas-s7", 1, "red").await;
    // Town users (enterprise, grid officer) do not see the other town.
    for user in ["ent", "grid"] {
        let (cookie, csrf) = h.sign_in(user).await;
        let ledger = h.page(&cookie, "/web/hazards").await;
        assert!(ledger.contains(&near) && !ledger.contains(&far), "{user}");
        let dash = h.page(&cookie, "/web").await;
        assert!(!dash.contains(&w) && !dash.contains("Far venue"), "{user}");
        let r = h
            .http
            .get(format!("{}/web/hazards/{far}", h.base))
            .header("cookie", format!("anquan_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{user}");
        assert_eq!(
            h.form(
                &cookie,
                &format!("/web/warnings/{w}/ack"),
                &[("csrf", csrf.as_str())]
            )
            .await,
            403,
            "{user}"
        );
        assert_eq!(
            h.form(
                &cookie,
                &format!("/web/hazards/{far}/transition"),
                &[
                    ("csrf", csrf.as_str()),
                    ("to", "JUDGED"),
                    ("severity", "general")
                ]
            )
            .await,
            403,
            "{user}"
        );
        let csv = h.page(&cookie, "/web/hazards.csv").await;
        assert!(!csv.contains(&far), "{user}");
    }
    // The county sees both towns and acts there.
    let (cookie, csrf) = h.sign_in("county").await;
    let ledger = h.page(&cookie, "/web/hazards").await;
    assert!(ledger.contains(&near) && ledger.contains(&far));
    h.page(&cookie, &format!("/web/hazards/{far}")).await;
    assert_eq!(
        h.form(
            &cookie,
            &format!("/web/warnings/{w}/ack"),
            &[("csrf", csrf.as_str())]
        )
        .await,
        200
    );
}

#[tokio::test]
async fn leaflet_map_only_with_a_tile_url() {
    let h = WebHarness::start().await;
    let (cookie, _) = h.sign_in("county").await;
    let page = h.page(&cookie, "/web/map").await;
    assert!(
        page.contains("id=\"risk-map\"") && !page.contains("leaflet"),
        "SVG only by default"
    );
    let js = h
        .page(&cookie, "/web/static/vendor/leaflet/leaflet.js")
        .await;
    assert!(js.contains("Leaflet"));
    let lic = h.page(&cookie, "/web/static/vendor/leaflet/LICENSE").await;
    assert!(lic.contains("BSD 2-Clause"));
    // A config with tiles: the Leaflet container and the venues' coordinates.
    let mut cfg = (*h.app.cfg).clone();
    cfg.web.map_tile_url = "https://tiles.example.invalid/{z}/{x}/{y}.png".into();
    cfg.web.map_attribution = "© example".into();
    // AMap-style tiles: markers in GCJ-02, the stored venue in WGS-84.
    cfg.web.map_datum = anquan_monitor::geo::Datum::Gcj02;
    assert!(cfg.validate().is_ok());
    let app = anquan_monitor::App {
        cfg: std::sync::Arc::new(cfg.clone()),
        ..h.app.clone()
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(l, anquan_monitor::http::router(app))
            .await
            .unwrap()
    });
    let page = h
        .http
        .get(format!("{base}/web/map"))
        .header("cookie", format!("anquan_session={cookie}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"leaflet-map\""), "{page}");
    assert!(page.contains("/web/static/vendor/leaflet/leaflet.js"));
    assert!(page.contains("\"lat\":30.7"), "{page}");
    let (mlat, mlon) =
        anquan_monitor::geo::from_wgs84(anquan_monitor::geo::Datum::Gcj02, 30.7, 120.7);
    assert!(
        (mlat - 30.7).abs() > 1e-4 && (mlon - 120.7).abs() > 1e-4,
        "GCJ-02 is offset in China"
    );
    assert!(
        page.contains(&format!("\"map_lat\":{mlat},\"map_lon\":{mlon}")),
        "{page}"
    );
    cfg.web.map_tile_url = "https://tiles.example.invalid/tile.png".into();
    assert_eq!(cfg.validate().unwrap_err().key, "web.map_tile_url");
}

#[tokio::test]
async fn removed_accounts_and_headers_and_the_device_chart() {
    let h = WebHarness::start().await;
    let (cookie, _) = h.sign_in("grid").await;
    let r = h
        .http
        .get(format!("{}/web", h.base))
        .header("cookie", format!("anquan_session={cookie}"))
        .send()
        .await
        .unwrap();
    for (k, v) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(r.headers()[k], v);
    }
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let r = h
        .http
        .get(format!("{}/public/venues/s1", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    // The device chart counts the alarm events.
    h.alarm("s1", "gas-0001", 1, "red").await;
    let page = h.page(&cookie, "/web/devices/gas-0001").await;
    assert!(page.contains("id=\"device-chart\""));
    assert_eq!(page.matches("<rect").count(), 30, "one bar per day");
    assert!(page.contains("class=\"c-red\""), "today's bar is red");
    // Accounts no longer in [[users]] are removed with their sessions.
    let keep: Vec<_> = h
        .app
        .cfg
        .users
        .iter()
        .filter(|u| u.username != "grid")
        .cloned()
        .collect();
    let mut c = h.app.db.acquire().await.unwrap();
    anquan_monitor::web::auth::seed_users(&mut c, &keep, 0)
        .await
        .unwrap();
    drop(c);
    let r = h
        .http
        .get(format!("{}/web", h.base))
        .header("cookie", format!("anquan_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "the session is gone");
    let r = h.post_sign_in("grid", &password("grid")).await;
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn web_storage_smoke_on_sqlite() {
    let h = WebHarness::start().await;
    common::web::smoke(&h).await;
}

#[tokio::test]
async fn devices_go_offline_with_an_offline_rule_alarm() {
    let h = WebHarness::start().await;
    let (cookie, _) = h.sign_in("county").await;
    let venue = |d: &serde_json::Value, id: &str| {
        d["venues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == id)
            .cloned()
            .unwrap()
    };
    let dash = || async {
        let t = h.page(&cookie, "/web/api/dashboard").await;
        serde_json::from_str::<serde_json::Value>(&t).unwrap()
    };
    assert_eq!(venue(&dash().await, "s3")["offline"], 0);
    for (n, state) in [(1, "raised"), (2, "cleared")] {
        let r = h
            .http
            .post(format!("{}/api/v1/alarms", h.base))
            .bearer_auth(common::GW)
            .json(&serde_json::json!({
                "event_id": format!("gw-01/s3/gas-s3/link.offline/{n}"),
                "site": "s3", "device": "gas-s3", "kind": "gas", "rule": "link.offline",
                "level": "yellow", "state": state, "value": 0.0, "threshold": 0.0,
                "ts_ms": common::T0, "gateway": "gw-01"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v = venue(&dash().await, "s3");
        let offline = state == "raised";
        assert_eq!(v["offline"], u64::from(offline), "{state}: {v}");
        assert_eq!(v["devices"][0]["online"], !offline, "{state}: {v}");
    }
    assert_eq!(
        dash().await["counts"]["yellow"],
        0,
        "a yellow cleared at the source before anyone answered closes itself \
         (policy.yellow.cleared_needs_ack = false)"
    );
    // The dashboard's colors are the API's venue status, venue by venue.
    h.alarm("s1", "gas-0001", 5, "red").await;
    h.alarm("s5", "gas-s5", 6, "blue").await;
    h.hazard_to_verifying("s4", "major?").await;
    let d = dash().await;
    for v in d["venues"].as_array().unwrap() {
        let id = v["id"].as_str().unwrap();
        let st = h.api_get(&format!("/api/v1/venues/{id}/status")).await;
        assert_eq!(v["color"], st["color"], "{id}");
        assert_eq!(v["active_warnings"], st["active_warnings"], "{id}");
    }
}

#[tokio::test]
async fn photos_and_report_formats_in_the_web() {
    let h = WebHarness::start().await;
    let hz = h.new_hazard("s7", "photo").await;
    let png = anquan_monitor::web::qr::png("photo", 2).unwrap();
    let eid = common::web::upload_hazard_photo(&h, &hz, &png).await;
    let (county, _) = h.sign_in("county").await;
    let page = h.page(&county, &format!("/web/hazards/{hz}")).await;
    assert!(page.contains(&format!("/web/evidence/{eid}")), "{page}");
    let r = h
        .http
        .get(format!("{}/web/evidence/{eid}", h.base))
        .header("cookie", format!("anquan_session={county}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png.as_slice());
    // Another town's user may not fetch it; nobody without a session.
    let (ent, _) = h.sign_in("ent").await;
    let r = h
        .http
        .get(format!("{}/web/evidence/{eid}", h.base))
        .header("cookie", format!("anquan_session={ent}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = h
        .http
        .get(format!("{}/web/evidence/{eid}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    // The reports page links every format; XLSX comes through the web.
    let page = h.page(&county, "/web/reports").await;
    for f in ["html", "csv", "xlsx", "pdf", "json"] {
        assert!(page.contains(&format!("format={f}")), "{f}");
    }
    let r = h
        .http
        .get(format!(
            "{}/web/reports/monthly?region=county&date=2026-11-10&format=xlsx",
            h.base
        ))
        .header("cookie", format!("anquan_session={county}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-type"],
        anquan_monitor::export::XLSX_MIME
    );
    assert!(r.bytes().await.unwrap().starts_with(b"PK"));
}

#[tokio::test]
async fn photo_upload_from_the_web() {
    let h = WebHarness::start().await;
    let hz = h.new_hazard("s1", "upload").await;
    let png = anquan_monitor::web::qr::png("upload", 2).unwrap();
    let (ent, csrf) = h.sign_in("ent").await;
    assert_eq!(
        common::web::web_upload(&h, &ent, &hz, None, &png).await.0,
        403,
        "no CSRF token"
    );
    let (admin, admin_csrf) = h.sign_in("admin").await;
    assert_eq!(
        common::web::web_upload(&h, &admin, &hz, Some(&admin_csrf), &png)
            .await
            .0,
        403,
        "the admin does not act"
    );
    // Not an image: back to the page with the reason, nothing stored.
    let (s, loc) = common::web::web_upload(&h, &ent, &hz, Some(&csrf), b"GIF89a....").await;
    assert_eq!(s, 303);
    assert!(loc.contains("?err="), "{loc}");
    let (s, loc) = common::web::web_upload(&h, &ent, &hz, Some(&csrf), &png).await;
    assert_eq!((s, loc.contains("err")), (303, false), "{loc}");
    let photos = h.api_get(&format!("/api/v1/hazards/{hz}/evidence")).await;
    let photos = photos.as_array().unwrap();
    assert_eq!(photos.len(), 1);
    assert_eq!(photos[0]["uploaded_by"], "safety1");
    let page = h.page(&ent, &format!("/web/hazards/{hz}")).await;
    assert!(page.contains(&format!(
        "/web/evidence/{}",
        photos[0]["id"].as_str().unwrap()
    )));
}

#[tokio::test]
async fn tasks_are_worked_and_reviewed_in_the_web() {
    let h = WebHarness::start().await;
    let (s, t) = h
        .api_post(
            "/api/v1/tasks",
            serde_json::json!({"actor": "grid", "kind": "inspection", "title": "check exits",
                   "venue_id": "s1", "assignee_id": "safety1", "due_ms": common::T0 + 86_400_000}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    let path = format!("/web/tasks/{id}/transition");
    let (ent, ent_csrf) = h.sign_in("ent").await;
    let (grid, grid_csrf) = h.sign_in("grid").await;
    // The grid officer may not work someone else's task; the assignee may.
    assert_eq!(
        h.form(
            &grid,
            &path,
            &[("csrf", grid_csrf.as_str()), ("to", "IN_PROGRESS")]
        )
        .await,
        403
    );
    let page = h.page(&ent, "/web/tasks").await;
    assert!(
        page.contains(&format!("id=\"t-{id}-IN_PROGRESS\"")),
        "{page}"
    );
    assert_eq!(
        h.form(
            &ent,
            &path,
            &[("csrf", ent_csrf.as_str()), ("to", "IN_PROGRESS")]
        )
        .await,
        303
    );
    // Submitting needs evidence (the gate's reason comes back to the page).
    let r = h
        .http
        .post(format!("{}{path}", h.base))
        .header("cookie", format!("anquan_session={ent}"))
        .form(&[("csrf", ent_csrf.as_str()), ("to", "SUBMITTED")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["location"].to_str().unwrap().contains("err="));
    assert_eq!(
        h.form(
            &ent,
            &path,
            &[
                ("csrf", ent_csrf.as_str()),
                ("to", "SUBMITTED"),
                ("evidence", "all exits open")
            ]
        )
        .await,
        303
    );
    // No one reviews their own work.
    assert_eq!(
        h.form(
            &ent,
            &path,
            &[("csrf", ent_csrf.as_str()), ("to", "REVIEWED")]
        )
        .await,
        403
    );
    assert_eq!(
        h.form(
            &grid,
            &path,
            &[("csrf", grid_csrf.as_str()), ("to", "REVIEWED")]
        )
        .await,
        303
    );
    assert_eq!(
        h.form(
            &grid,
            &path,
            &[("csrf", grid_csrf.as_str()), ("to", "DONE")]
        )
        .await,
        303
    );
    let t = h.api_get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(t["state"], "DONE");
    assert!(t["evidence"].as_str().unwrap().contains("all exits open"));
    let audit = h.api_get(&format!("/api/v1/audit?entity_id={id}")).await;
    let actors: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        [
            "person:grid",
            "person:safety1",
            "person:safety1",
            "person:grid",
            "person:grid"
        ]
    );
}

#[tokio::test]
async fn browsers_get_html_errors_scripts_get_problem_json() {
    let h = WebHarness::start().await;
    let (cookie, _) = h.sign_in("county").await;
    let get = |accept: &'static str| {
        h.http
            .get(format!("{}/web/hazards/no-such-hazard", h.base))
            .header("cookie", format!("anquan_session={cookie}"))
            .header("accept", accept)
            .send()
    };
    let r = get("text/html,application/xhtml+xml,*/*;q=0.8")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let page = r.text().await.unwrap();
    assert!(ct.starts_with("text/html"), "{ct}: {page}");
    assert!(
        page.contains("id=\"error-page\"") && page.contains("no-such-hazard"),
        "{page}"
    );
    let r = get("*/*").await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // The public page too (it is not under /web but gets the same).
    let r = h
        .http
        .get(format!("{}/public/venues/nowhere/poster", h.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.text().await.unwrap().contains("id=\"error-detail\""));
    let r = h
        .http
        .get(format!("{}/public/venues/nowhere?lang=en", h.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"error-detail\"") && page.contains("lang=\"en\""),
        "{page}"
    );
}

#[tokio::test]
async fn reminders_are_scoped_too() {
    let h = WebHarness::start().await;
    let mut ids = Vec::new();
    for v in ["s1", "s7"] {
        let id = h.new_hazard(v, &format!("remind-{v}")).await;
        for (to, fields) in [
            ("JUDGED", serde_json::json!({"severity": "general"})),
            (
                "FILED",
                serde_json::json!({"problem": "p", "measures": "m", "standard": "s", "responsibility": "r",
                       "acceptance_unit": "u", "owner_id": "safety1", "due_ms": common::T0 + 86_400_000}),
            ),
        ] {
            let (s, b) = h
                .api_post(
                    &format!("/api/v1/hazards/{id}/transition"),
                    serde_json::json!({"to": to, "actor": "county1", "reason": "t", "fields": fields}),
                )
                .await;
            assert_eq!(s, 200, "{b}");
        }
        ids.push(id);
    }
    anquan_monitor::scheduler::tick(&h.app).await.unwrap();
    let (ent, _) = h.sign_in("ent").await;
    // Not overdue yet; a day and a second later it is, on the ledger and
    // on the hazard page.
    let page = h.page(&ent, &format!("/web/hazards/{}", ids[0])).await;
    assert!(!page.contains("id=\"overdue\""));
    h.clock.advance_ms(86_401_000);
    let (later, _) = h.sign_in("ent").await;
    let page = h.page(&later, &format!("/web/hazards/{}", ids[0])).await;
    assert!(page.contains("id=\"overdue\""));
    assert!(h.page(&later, "/web/hazards").await.contains("overdue"));
    h.clock.advance_ms(-86_401_000);
    // (Signing in then also removed the sessions expired by then.)
    let (ent, _) = h.sign_in("ent").await;
    let page = h.page(&ent, "/web/tasks").await;
    assert!(page.contains(&format!("/web/hazards/{}", ids[0])), "{page}");
    assert!(!page.contains(&ids[1]), "another town's reminder");
    let (county, _) = h.sign_in("county").await;
    let page = h.page(&county, "/web/tasks").await;
    assert!(page.contains(&ids[0]) && page.contains(&ids[1]));
}

#[tokio::test]
async fn scheduled_report_snapshots_in_the_web() {
    let h = WebHarness::start().await;
    let n = anquan_monitor::snapshots::tick(&h.app, h.app.now_ms())
        .await
        .unwrap();
    assert!(n > 0);
    let all = h.api_get("/api/v1/report-snapshots").await;
    let all = all.as_array().unwrap();
    let id_of = |region: &str| {
        all.iter().find(|s| s["region_id"] == region).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (city, county) = (id_of("city"), id_of("county"));
    let (c, _) = h.sign_in("county").await;
    let page = h.page(&c, "/web/reports").await;
    assert!(page.contains(&format!("snap-{county}")) && !page.contains(&format!("snap-{city}")));
    let html = h
        .page(&c, &format!("/web/report-snapshots/{county}?format=html"))
        .await;
    assert!(html.contains("<table"), "{html}");
    let r = h
        .http
        .get(format!("{}/web/report-snapshots/{city}", h.base))
        .header("cookie", format!("anquan_session={c}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        403,
        "the city's report is outside the county"
    );
    let (ci, _) = h.sign_in("city").await;
    let page = h.page(&ci, "/web/reports").await;
    assert!(page.contains(&format!("snap-{county}")) && page.contains(&format!("snap-{city}")));
}

/// The dashboard's JSON is valid under its schema in the served document,
/// with warnings of a registered and of an unregistered site (nulls) and
/// venues with and without coordinates.
#[tokio::test]
async fn dashboard_matches_its_openapi_schema() {
    let h = WebHarness::start().await;
    h.alarm("s3", "gas-s3", 1, "red").await;
    h.alarm("zz-unknown", "gas-zz", 2, "yellow").await;
    let (cookie, _) = h.sign_in("admin").await;
    let d: serde_json::Value =
        serde_json::from_str(&h.page(&cookie, "/web/api/dashboard").await).unwrap();
    let r = h
        .http
        .get(format!("{}/api/openapi.json", h.base))
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = r.json().await.unwrap();
    let warnings = d["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{d}");
    assert!(warnings.iter().any(|w| w["venue_id"].is_null()), "{d}");
    let venues = d["venues"].as_array().unwrap();
    assert!(venues.iter().any(|v| v["lat"].is_null()), "{d}");
    assert!(venues.iter().any(|v| v["lat"].is_f64()), "{d}");
    common::schema::assert_valid(
        &doc,
        common::schema::response_schema(&doc, "get", "/web/api/dashboard", "200"),
        &d,
        "/web/api/dashboard",
    );
}

/// 举报 moderation in the web: officers of the region see the queue and
/// accept or reject with a reason; the enterprise may not judge reports.
#[tokio::test]
async fn officers_judge_public_reports_in_the_web() {
    let h = WebHarness::start().await;
    let post = |desc: &str| {
        h.http
            .post(format!("{}/public/reports", h.base))
            .json(&serde_json::json!({"venue_id": "s1", "category": "gas", "description": desc}))
            .send()
    };
    assert_eq!(
        post("smell of gas by the kitchen")
            .await
            .unwrap()
            .status()
            .as_u16(),
        202
    );
    assert_eq!(
        post("wires hanging loose").await.unwrap().status().as_u16(),
        202
    );
    let (ent, _) = h.sign_in("ent").await;
    let r = h
        .http
        .get(format!("{}/web/public-reports", h.base))
        .header("cookie", format!("anquan_session={ent}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (grid, csrf) = h.sign_in("grid").await;
    let page = h.page(&grid, "/web/public-reports").await;
    assert!(
        page.contains("smell of gas by the kitchen") && page.contains("群众举报"),
        "{page}"
    );
    let list = h.api_get("/api/v1/public-reports?state=PENDING").await;
    let ids: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    let path = |id: &str| format!("/web/public-reports/{id}/decide");
    // Without the CSRF token: refused.
    assert_eq!(
        h.form(
            &grid,
            &path(&ids[0]),
            &[("accept", "true"), ("reason", "x")]
        )
        .await,
        403
    );
    let s = h
        .form(
            &grid,
            &path(&ids[0]),
            &[
                ("csrf", &csrf),
                ("accept", "true"),
                ("category", "gas"),
                ("reason", "checked on site"),
            ],
        )
        .await;
    assert_eq!(s, 303);
    let s = h
        .form(
            &grid,
            &path(&ids[1]),
            &[
                ("csrf", &csrf),
                ("accept", "false"),
                ("reason", "already fixed"),
            ],
        )
        .await;
    assert_eq!(s, 303);
    let hz = h.api_get("/api/v1/hazards").await;
    let from_reports: Vec<_> = hz
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["source"] == "report")
        .collect();
    assert_eq!(from_reports.len(), 1, "{hz}");
    assert_eq!(from_reports[0]["source_ref"], ids[0].as_str());
    let page = h.page(&grid, "/web/public-reports").await;
    assert!(
        !page.contains("smell of gas"),
        "judged reports leave the queue"
    );
    // Judging twice: back to the queue with the reason.
    let r = h
        .http
        .post(format!("{}{}", h.base, path(&ids[0])))
        .header("cookie", format!("anquan_session={grid}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("accept", "true"),
            ("reason", "again"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["location"].to_str().unwrap().contains("err="),
        "{:?}",
        r.headers()
    );
}

#[tokio::test]
async fn maintenance_windows_from_the_web() {
    let h = WebHarness::start().await;
    let (ent, csrf) = h.sign_in("ent").await;
    let page = h.page(&ent, "/web/maintenance").await;
    assert!(
        page.contains(r#"id="maintenance-new""#) && page.contains("维护"),
        "{page}"
    );
    // Without the CSRF token: refused. A bad duration: back with the reason.
    let set = |extra: &[(&'static str, &'static str)]| {
        let mut f = vec![
            ("venue_id", "s1"),
            ("device_id", "gas-0001"),
            ("reason", "标定 calibration"),
        ];
        f.extend_from_slice(extra);
        f
    };
    assert_eq!(
        h.form(&ent, "/web/maintenance", &set(&[("hours", "2")]))
            .await,
        403
    );
    let r = h
        .http
        .post(format!("{}/web/maintenance", h.base))
        .header("cookie", format!("anquan_session={ent}"))
        .form(&[set(&[("hours", "999")]), vec![("csrf", csrf.as_str())]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let back = r.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with("/web/maintenance?err=hours"), "{back}");
    let mut ok = set(&[("hours", "2")]);
    ok.push(("csrf", &csrf));
    assert_eq!(h.form(&ent, "/web/maintenance", &ok).await, 303);
    let windows = h.api_get("/api/v1/maintenance").await;
    assert_eq!(windows.as_array().map(Vec::len), Some(1), "{windows}");
    let id = windows[0]["id"].as_str().unwrap().to_string();
    assert_eq!(windows[0]["ends_ms"], T0 + 2 * 3_600_000);
    assert_eq!(windows[0]["created_by"], "person:safety1");
    // Its alarm is held, and the page says so.
    let w = h.alarm("s1", "gas-0001", 1, "red").await;
    let page = h.page(&ent, "/web/maintenance").await;
    assert!(
        page.contains(&format!(r#"id="m-{id}""#)) && page.contains("标定 calibration"),
        "{page}"
    );
    let windows = h.api_get("/api/v1/maintenance").await;
    assert_eq!(windows[0]["held"], serde_json::json!([w]), "{windows}");
    // The admin sees no form; ended from the web, the window is over.
    let (admin, _) = h.sign_in("admin").await;
    assert!(
        !h.page(&admin, "/web/maintenance")
            .await
            .contains("maintenance-new")
    );
    let end = format!("/web/maintenance/{id}/end");
    assert_eq!(
        h.form(&ent, &end, &[("csrf", &csrf), ("reason", "done")])
            .await,
        303
    );
    assert_eq!(
        h.api_get("/api/v1/maintenance").await,
        serde_json::json!([])
    );
}

/// The dashboard shows a storm as one line with its alarms behind a
/// drill-down, marks a warning whose calls a maintenance window holds, and
/// a reading that is no longer current (its device went offline); the JSON
/// stays valid under its schema.
#[tokio::test]
async fn dashboard_shows_storms_holds_and_stale_readings() {
    let h = WebHarness::start().await;
    let gas = h.alarm("s1", "gas-0001", 1, "red").await;
    let offline = |device: &'static str, n: u32| {
        h.http
            .post(format!("{}/api/v1/alarms", h.base))
            .bearer_auth(common::GW)
            .json(&serde_json::json!({
                "event_id": format!("gw-01/s1/{device}/gas.offline/{n}"),
                "site": "s1", "device": device, "kind": "gas", "rule": "gas.offline",
                "level": "yellow", "state": "raised", "value": 0.0, "threshold": 0.0,
                "ts_ms": T0, "gateway": "gw-01"
            }))
            .send()
    };
    for (n, d) in [(1, "gas-0001"), (2, "gas-x1"), (3, "gas-x2")] {
        assert_eq!(offline(d, n).await.unwrap().status().as_u16(), 200);
    }
    let (s, w) = h
        .api_post(
            "/api/v1/maintenance",
            serde_json::json!({"venue_id": "s3", "ends_ms": T0 + 3_600_000, "reason": "calibration"}),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    let held = h.alarm("s3", "gas-s3", 1, "orange").await;
    let (cookie, _) = h.sign_in("admin").await;
    let d: serde_json::Value =
        serde_json::from_str(&h.page(&cookie, "/web/api/dashboard").await).unwrap();
    let warnings = d["warnings"].as_array().unwrap();
    let groups: Vec<_> = warnings.iter().filter(|w| w["kind"] == "group").collect();
    assert_eq!(groups.len(), 1, "one line for the storm: {d}");
    assert_eq!(groups[0]["value"], 3.0);
    let mut members: Vec<&str> = groups[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["device"].as_str().unwrap())
        .collect();
    members.sort();
    assert_eq!(members, ["gas-0001", "gas-x1", "gas-x2"]);
    assert!(
        !warnings.iter().any(|w| w["rule"] == "gas.offline"),
        "the offline alarms are in the group: {d}"
    );
    let by_id = |id: &str| warnings.iter().find(|w| w["id"] == id).unwrap();
    assert_eq!(by_id(&gas)["stale"], true, "gas-0001 is offline: {d}");
    assert_eq!(by_id(&held)["held"], "maintenance");
    assert_eq!(by_id(&held)["stale"], false);
    let page = h.page(&cookie, "/web").await;
    assert!(page.contains(r#"<details class="members">"#), "{page}");
    assert!(page.contains(r#"class="tag stale""#) && page.contains(r#"data-held="maintenance""#));
    let doc: serde_json::Value = h
        .http
        .get(format!("{}/api/openapi.json", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    common::schema::assert_valid(
        &doc,
        common::schema::response_schema(&doc, "get", "/web/api/dashboard", "200"),
        &d,
        "/web/api/dashboard",
    );
}
