//! E-mail over TLS (`notify.smtp.tls = "starttls" | "tls"`) against a real
//! TLS-capable SMTP sink (tokio-rustls) whose certificate comes from a
//! private CA made by `openssl` for the test: the message arrives over the
//! encrypted session, and without `ca_file` the certificate is refused (so
//! the client really verifies).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use anquan_monitor::clock::ManualClock;
use anquan_monitor::{App, Config, scheduler};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

const T0: i64 = 1_794_268_800_000;

#[derive(Debug, Clone)]
struct Mail {
    to: Vec<String>,
    data: String,
    /// Whether the DATA came over TLS.
    tls: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// STARTTLS offered and required before MAIL.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

type Mails = Arc<Mutex<Vec<Mail>>>;

/// A private CA and a server certificate for `localhost` signed by it.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/install-deps installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=anquan test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

fn acceptor(dir: &Path) -> TlsAcceptor {
    let certs: Vec<_> =
        rustls_pemfile::certs(&mut &*std::fs::read(dir.join("server.pem")).unwrap())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = rustls_pemfile::private_key(&mut &*std::fs::read(dir.join("server.key")).unwrap())
        .unwrap()
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    TlsAcceptor::from(Arc::new(cfg))
}

enum End<S> {
    Closed,
    StartTls(S),
}

/// One SMTP session on `s`; returns the raw stream when the client asked
/// for STARTTLS.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    tls: bool,
    offer_starttls: bool,
    mails: &Mails,
) -> End<S> {
    let mut s = BufReader::new(s);
    if !(offer_starttls && tls) {
        // A greeting starts a session, but not the one after STARTTLS.
        s.write_all(b"220 sink ESMTP\r\n").await.ok();
    }
    let (mut to, mut line) = (Vec::new(), String::new());
    loop {
        line.clear();
        if s.read_line(&mut line).await.unwrap_or(0) == 0 {
            return End::Closed;
        }
        let up = line.to_ascii_uppercase();
        if up.starts_with("EHLO") || up.starts_with("HELO") {
            let ext: &[u8] = if offer_starttls && !tls {
                b"250-sink\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
            } else {
                b"250-sink\r\n250 8BITMIME\r\n"
            };
            s.write_all(ext).await.ok();
        } else if up.starts_with("STARTTLS") && offer_starttls && !tls {
            s.write_all(b"220 go ahead\r\n").await.ok();
            s.flush().await.ok();
            return End::StartTls(s.into_inner());
        } else if up.starts_with("MAIL FROM:") {
            if offer_starttls && !tls {
                s.write_all(b"530 must issue STARTTLS first\r\n").await.ok();
                continue;
            }
            to.clear();
            s.write_all(b"250 OK\r\n").await.ok();
        } else if up.starts_with("RCPT TO:") {
            to.push(line[8..].trim().to_string());
            s.write_all(b"250 OK\r\n").await.ok();
        } else if up.starts_with("DATA") {
            s.write_all(b"354 go ahead\r\n").await.ok();
            let mut data = String::new();
            loop {
                line.clear();
                if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return End::Closed;
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(&line);
            }
            mails.lock().unwrap().push(Mail {
                to: to.clone(),
                data,
                tls,
            });
            s.write_all(b"250 OK queued\r\n").await.ok();
        } else if up.starts_with("QUIT") {
            s.write_all(b"221 bye\r\n").await.ok();
            return End::Closed;
        } else if up.starts_with("RSET") || up.starts_with("NOOP") {
            s.write_all(b"250 OK\r\n").await.ok();
        } else {
            s.write_all(b"502 not implemented\r\n").await.ok();
        }
    }
}

/// Starts the sink; returns its port and the messages it keeps.
async fn sink(mode: Mode, acceptor: TlsAcceptor) -> (u16, Mails) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let mails: Mails = Arc::new(Mutex::new(Vec::new()));
    let m2 = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            let (mails, acceptor) = (m2.clone(), acceptor.clone());
            tokio::spawn(async move {
                match mode {
                    Mode::Implicit => {
                        // A client that refuses our certificate ends here.
                        if let Ok(t) = acceptor.accept(tcp).await {
                            session(t, true, false, &mails).await;
                        }
                    }
                    Mode::StartTls => {
                        if let End::StartTls(tcp) = session(tcp, false, true, &mails).await
                            && let Ok(t) = acceptor.accept(tcp).await
                        {
                            session(t, true, true, &mails).await;
                        }
                    }
                }
            });
        }
    });
    (port, mails)
}

fn config(db: &str, port: u16, tls: &str, ca: Option<&Path>) -> Config {
    let ca = ca
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    Config::parse(&format!(
        r#"
[database]
url = "{db}"
[auth]
intake_tokens = ["gateway-token-1"]
api_tokens = ["operator-token-1"]
[notify]
max_attempts = 2
[notify.webhook]
secret = "test-webhook-secret-0123456789"
[notify.smtp]
host = "localhost"
port = {port}
from = "monitor@example.invalid"
tls = "{tls}"
{ca}
[[seed.regions]]
id = "city"
name = "City"
tier = "city"
[[seed.venues]]
id = "s1"
name = "Scenic area"
sector = "scenic_area"
address = "1 Lake Road"
region_id = "city"
[[seed.devices]]
id = "gas-0001"
venue_id = "s1"
kind = "gas"
[[seed.people]]
id = "safety1"
name = "Safety 1"
role = "safety_officer"
region_id = "city"
email = "safety1@example.invalid"
[[seed.duty]]
person_id = "safety1"
role = "safety_officer"
region_id = "city"
"#
    ))
    .unwrap()
}

fn red_alarm() -> anquan_protocol::AlarmEvent {
    anquan_monitor::intake::decode(
        format!(
            r#"{{"event_id":"gw-01/s1/gas-0001/gas.lel/1","site":"s1","device":"gas-0001","kind":"gas","rule":"gas.lel","level":"red","state":"raised","value":55.0,"threshold":50.0,"ts_ms":{T0},"gateway":"gw-01"}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

/// Raises a red alarm and runs one scheduler tick (the call goes out by
/// e-mail); returns what the tick did.
async fn raise_and_deliver(
    dir: &Path,
    port: u16,
    tls: &str,
    ca: Option<&Path>,
) -> (App, scheduler::Tick) {
    let db = format!(
        "sqlite://{}/monitor-{tls}-{}.db?mode=rwc",
        dir.display(),
        ca.is_some()
    );
    let app = App::new(config(&db, port, tls, ca), Arc::new(ManualClock::new(T0)))
        .await
        .unwrap();
    let out = app.intake.accept(red_alarm()).await.unwrap();
    assert!(!out.duplicate);
    let t = scheduler::tick(&app).await.unwrap();
    (app, t)
}

#[tokio::test]
async fn email_over_starttls_and_implicit_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let ca = dir.path().join("ca.pem");
    for (mode, tls) in [(Mode::StartTls, "starttls"), (Mode::Implicit, "tls")] {
        let (port, mails) = sink(mode, acceptor(dir.path())).await;
        let (_app, t) = raise_and_deliver(dir.path(), port, tls, Some(&ca)).await;
        assert_eq!((t.sent, t.failed), (1, 0), "{tls}: {t:?}");
        let got = mails.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "{tls}");
        assert!(got[0].tls, "{tls}: the message did not come over TLS");
        assert_eq!(got[0].to, ["<safety1@example.invalid>"]);
        assert!(got[0].data.contains("gas.lel"), "{}", got[0].data);
    }
}

#[tokio::test]
async fn the_server_certificate_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    // Without ca_file the private CA is unknown: the attempt fails, nothing
    // is sent in clear either, and the failure is counted.
    let (port, mails) = sink(Mode::StartTls, acceptor(dir.path())).await;
    let (app, t) = raise_and_deliver(dir.path(), port, "starttls", None).await;
    assert_eq!((t.sent, t.failed), (0, 1), "{t:?}");
    assert!(mails.lock().unwrap().is_empty());
    let page = app.metrics.render();
    assert!(
        page.contains(r#"anquan_monitor_notifications_failed_total{channel="email"} 1"#),
        "{page}"
    );
}

#[test]
fn tls_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
    let mut text = format!(
        "[database]\nurl = \"{db}\"\n[auth]\nintake_tokens = [\"gateway-token-1\"]\napi_tokens = [\"operator-token-1\"]\n\
         [notify.webhook]\nsecret = \"test-webhook-secret-0123456789\"\n[notify.smtp]\nhost = \"localhost\"\nport = 25\nfrom = \"m@example.invalid\"\n"
    );
    let bad = Config::parse(&format!("{text}tls = \"ssl\"\n")).unwrap_err();
    assert_eq!(bad.key, "notify.smtp.tls");
    let bad = Config::parse(&format!("{text}ca_file = \"/x.pem\"\n")).unwrap_err();
    assert_eq!(bad.key, "notify.smtp.ca_file");
    text.push_str("tls = \"starttls\"\nca_file = \"/nonexistent/ca.pem\"\n");
    let cfg = Config::parse(&text).unwrap();
    let e = anquan_monitor::notify::Notifier::new(&cfg.notify).unwrap_err();
    assert!(e.to_string().contains("notify.smtp.ca_file"), "{e}");
}
