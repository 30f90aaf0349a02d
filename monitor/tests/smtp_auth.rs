//! SMTP AUTH (`notify.smtp.username` / `password`) against a sink that
//! requires it (AUTH PLAIN and LOGIN, RFC 4954; MAIL before AUTH → 530):
//! the right password delivers the call, a wrong one is refused (535) and
//! counted as a failed e-mail notification, retried, nothing delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anquan_monitor::secret::Secret;
use common::smtp::{Auth, Sink, b64decode, b64encode};
use common::{Harness, event, sqlite_url};

async fn harness(dir: &tempfile::TempDir, mechanisms: &str, password: &str) -> Harness {
    let sink = Sink::start_with(Some(Auth {
        user: "monitor".into(),
        password: "right-password".into(),
        mechanisms: mechanisms.into(),
    }))
    .await;
    let password = password.to_string();
    Harness::start_with_sink(&sqlite_url(dir), Some(sink), "", move |c| {
        let s = c.notify.smtp.as_mut().unwrap();
        s.username = Some("monitor".into());
        s.password = Some(Secret::from(password.as_str()));
    })
    .await
}

fn emails(h: &Harness) -> Vec<common::smtp::Mail> {
    h.smtp.as_ref().unwrap().mails.lock().unwrap().clone()
}

#[tokio::test]
async fn the_right_password_delivers_with_plain_and_login() {
    for mechanisms in ["PLAIN LOGIN", "LOGIN"] {
        let dir = tempfile::tempdir().unwrap();
        let h = harness(&dir, mechanisms, "right-password").await;
        let (s, _) = h.alarm(&event(1, "raised", "yellow")).await;
        assert_eq!(s, 200);
        let t = h.tick().await;
        // The webhook and the e-mail of the call (yellow: the safety officer).
        assert_eq!((t.sent, t.failed), (2, 0), "{mechanisms}: {t:?}");
        let got = emails(&h);
        assert_eq!(got.len(), 1, "{mechanisms}");
        assert_eq!(got[0].user.as_deref(), Some("monitor"));
        assert_eq!(got[0].to, ["<safety1@example.invalid>"]);
        let text = common::scenarios::mail_text(&got[0].data);
        assert!(text.contains("可燃气体浓度 55%LEL"), "{text}");
        assert_eq!(*h.smtp.as_ref().unwrap().auth_failures.lock().unwrap(), 0);
    }
}

#[tokio::test]
async fn a_wrong_password_fails_the_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(&dir, "PLAIN LOGIN", "wrong-password").await;
    let (s, _) = h.alarm(&event(1, "raised", "yellow")).await;
    assert_eq!(s, 200);
    let t = h.tick().await;
    assert_eq!((t.sent, t.failed), (1, 1), "{t:?}");
    assert!(emails(&h).is_empty());
    assert!(*h.smtp.as_ref().unwrap().auth_failures.lock().unwrap() >= 1);
    let page = h.app.metrics.render();
    assert!(
        page.contains(r#"anquan_monitor_notifications_failed_total{channel="email"} 1"#),
        "{page}"
    );
    let (_, d) = h.get("/api/v1/deliveries").await;
    let email = d
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "email")
        .unwrap()
        .clone();
    assert_eq!(email["state"], "QUEUED", "{email}");
    let err = email["last_error"].as_str().unwrap();
    assert!(err.contains("535"), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");
    // The retry (max_attempts = 2) fails too: FAILED, still nothing sent.
    h.clock.advance_ms(5_000);
    let t = h.tick().await;
    assert_eq!(t.failed, 1, "{t:?}");
    let (_, d) = h.get("/api/v1/deliveries").await;
    let email = d
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "email")
        .unwrap()
        .clone();
    assert_eq!(email["state"], "FAILED", "{email}");
    assert!(emails(&h).is_empty());
}

#[test]
fn base64_of_the_sink() {
    for s in [&b""[..], b"a", b"ab", b"abc", b"\0user\0pass word"] {
        assert_eq!(b64decode(&b64encode(s)).unwrap(), s);
    }
    assert_eq!(b64encode(b"Username:"), "VXNlcm5hbWU6");
}
