//! Ingest over TLS with a client certificate, and with username/password,
//! and a TLS broker with an ACL that keeps devices to their own topics,
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

/// A site broker as it should be run: TLS only, no anonymous clients, and
/// an ACL under which each device (user name = device id) may publish only
/// under its own topics. A device that tries another's topic is stopped by
/// the broker; one that lies about its id in the payload, on its own topic,
/// is stopped by the gateway.
#[test]
fn tls_broker_with_an_acl_keeps_each_device_to_its_own_topics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs(d);
    let pw = d.join("passwd");
    std::fs::write(&pw, "").unwrap();
    for (user, pass) in [("gateway", "gw-pass"), ("gas-1", "one"), ("gas-2", "two")] {
        let st = Command::new(require("mosquitto_passwd"))
            .arg("-b")
            .arg(&pw)
            .args([user, pass])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let acl = d.join("acl");
    std::fs::write(
        &acl,
        "user gateway\ntopic read sites/#\ntopic readwrite alarms/#\n\n\
         pattern write sites/+/devices/%u/#\n",
    )
    .unwrap();
    let mq = Mosquitto::start_with(&format!(
        "allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n\
         cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
        d.display(),
        pw = pw.display(),
        acl = acl.display(),
    ));
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        mqtt_extra: "username = \"gateway\"\npassword = \"gw-pass\"\n".into(),
        mqtt_tls: Some(format!("ca_file = \"{}/ca.pem\"\n", d.display())),
        ..Setup::default()
    });
    let publish = |user: &str, pass: &str, topic: &str, payload: &str| {
        let st = mq
            .client("mosquitto_pub")
            .args(["--cafile", &format!("{}/ca.pem", d.display())])
            .args(["-u", user, "-P", pass, "-t", topic, "-m", payload])
            .status()
            .unwrap();
        assert!(st.success());
    };
    // gas-1 on gas-2's topic, with a payload that matches it: the broker's
    // ACL drops it.
    publish(
        "gas-1",
        "one",
        &telemetry_topic("s1", "gas-2"),
        &gas_frame("gas-2", 1, now_ms(), 60.0),
    );
    // gas-1 on its own topic claiming to be gas-2: the gateway refuses it.
    publish(
        "gas-1",
        "one",
        &telemetry_topic("s1", "gas-1"),
        &gas_frame("gas-2", 2, now_ms(), 60.0),
    );
    // gas-1 as itself: accepted.
    publish(
        "gas-1",
        "one",
        &telemetry_topic("s1", "gas-1"),
        &gas_frame("gas-1", 1, now_ms(), 3.0),
    );
    eventually(Duration::from_secs(60), "gas-1's own frame", || {
        (gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#) == 1.0)
            .then_some(())
    });
    assert_eq!(
        gw.metric(r#"anquan_gateway_rejected_total{reason="device_mismatch"}"#),
        1.0
    );
    // The spoofed topic never reached the gateway: two frames arrived, the
    // liar's and the honest one.
    assert_eq!(gw.metric("anquan_gateway_frames_received_total"), 2.0);
}
