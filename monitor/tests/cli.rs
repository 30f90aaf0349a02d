//! `anquan-monitor check`: the example is valid but refused for its
//! placeholder secrets unless `--demo`; a bad file fails and the message
//! names the key; logs carry no colour codes when not on a terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn check(path: &std::path::Path) -> (bool, String) {
    check_with(path, &["--demo"])
}

fn check_with(path: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anquan-monitor"))
        .args(["check", "--config"])
        .arg(path)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_accepts_the_example_and_names_bad_keys() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("monitor.example.toml");
    let (ok, out) = check(&example);
    assert!(ok, "{out}");
    assert!(
        !out.contains('\x1b'),
        "colour codes in a log that is not a terminal: {out:?}"
    );
    assert!(out.contains("accepted for --demo"), "{out}");
    // Without --demo the example's secrets and password are refused, each
    // named.
    let (ok, out) = check_with(&example, &[]);
    assert!(!ok, "{out}");
    for key in [
        "auth.intake_tokens[0]",
        "auth.api_tokens[0]",
        "auth.gateways[0].token",
        "notify.webhook.secret",
        "users[0].password_hash",
    ] {
        assert!(out.contains(key), "{key} not named: {out}");
    }
    assert!(out.contains("--demo"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("red_min = 5", "red_min = 0");
    std::fs::write(&bad, text).unwrap();
    let (ok, out) = check(&bad);
    assert!(!ok);
    assert!(out.contains("sla.red_min: must be at least 1"), "{out}");
    let text = std::fs::read_to_string(&example).unwrap().replace(
        "region_id = \"jx-nh-xs\"\n\n[[seed.devices]]",
        "region_id = \"nowhere\"\n\n[[seed.devices]]",
    );
    std::fs::write(&bad, text).unwrap();
    let (ok, out) = check(&bad);
    assert!(!ok);
    assert!(out.contains("seed.venues[0].region_id"), "{out}");
    let (ok, out) = check(&dir.path().join("missing.toml"));
    assert!(!ok);
    assert!(out.contains("cannot read"), "{out}");
}

#[test]
fn hash_password_reads_stdin_and_prints_a_phc_string() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_anquan-monitor"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap();
    let phc = phc.trim();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(anquan_monitor::web::auth::verify_password(
        phc,
        "correct horse"
    ));
    assert!(!anquan_monitor::web::auth::verify_password(
        phc,
        "correct horse\n"
    ));
    // An empty password is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_anquan-monitor"))
        .arg("hash-password")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `anquan-monitor openapi` prints the served document, and an
/// independent validator (openapi-spec-validator, installed by
/// `scripts/install-deps`) accepts it.
#[test]
fn openapi_prints_a_valid_document() {
    let out = Command::new(env!("CARGO_BIN_EXE_anquan-monitor"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim_end(), anquan_monitor::openapi::json());
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let venv = std::env::var_os("ANQUAN_OPENAPI_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map_or_else(
                || std::path::PathBuf::from("/root"),
                std::path::PathBuf::from,
            );
            home.join(".cache/anquan-iot/openapi-venv")
        });
    let validator = venv.join("bin/openapi-spec-validator");
    assert!(
        validator.is_file(),
        "openapi-spec-validator is not installed at {}: run scripts/install-deps",
        venv.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(&validator).arg(&file).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openapi-spec-validator: {said}");
    assert!(said.contains("OK"), "{said}");
}
