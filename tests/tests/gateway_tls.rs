//! Ingest over TLS with a client certificate, and with username/password,
//! against a real Mosquitto (certificates made by the `openssl` tool).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::mqtt::{gas_frame, now_ms, telemetry_topic};
use anquan_e2e::services::{Mosquitto, eventually, require};

fn sh(dir: &Path, args: &[&str]) {
    let st = Command::new(require("openssl"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(st.success(), "openssl {args:?}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn certs(dir: &Path) {
    sh(
        dir,
        &[
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
            "/CN=anquan-test-ca",
        ],
    );
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext)
            .unwrap_or_else(|e| panic!("write {name}.ext: {e}"));
        sh(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        sh(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

#[test]
fn ingest_over_tls_with_a_client_certificate() {
    let certs_dir = tempfile::tempdir().unwrap();
    let d = certs_dir.path();
    certs(d);
    let mq = Mosquitto::start_with(&format!(
        "cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\nrequire_certificate true\n",
        d.display()
    ));
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        extra: String::new(),
        mqtt_tls: Some(format!(
            "ca_file = \"{0}/ca.pem\"\nclient_cert_file = \"{0}/client.pem\"\nclient_key_file = \"{0}/client.key\"\n",
            d.display()
        )),
        ..Setup::default()
    });
    let st = mq
        .client("mosquitto_pub")
        .args(["--cafile", &format!("{}/ca.pem", d.display())])
        .args(["--cert", &format!("{}/client.pem", d.display())])
        .args(["--key", &format!("{}/client.key", d.display())])
        .args([
            "-t",
            &telemetry_topic("s1", "gas-1"),
            "-m",
            &gas_frame("gas-1", 1, now_ms(), 3.0),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    eventually(Duration::from_secs(60), "the frame over TLS", || {
        (gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#) == 1.0)
            .then_some(())
    });
}

#[test]
fn ingest_with_username_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    std::fs::write(&pw, "").unwrap();
    let st = Command::new(require("mosquitto_passwd"))
        .args(["-b"])
        .arg(&pw)
        .args(["gateway", "pa55"])
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new(require("mosquitto_passwd"))
        .args(["-b"])
        .arg(&pw)
        .args(["device", "dev"])
        .status()
        .unwrap();
    assert!(st.success());
    let mq = Mosquitto::start_with(&format!(
        "allow_anonymous false\npassword_file {}\n",
        pw.display()
    ));
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        mqtt_extra: "username = \"gateway\"\npassword = \"pa55\"\n".into(),
        ..Setup::default()
    });
    let st = mq
        .client("mosquitto_pub")
        .args(["-u", "device", "-P", "dev"])
        .args([
            "-t",
            &telemetry_topic("s1", "gas-1"),
            "-m",
            &gas_frame("gas-1", 1, now_ms(), 3.0),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    eventually(
        Duration::from_secs(60),
        "the frame with credentials",
        || {
            (gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#) == 1.0)
                .then_some(())
        },
    );
}
