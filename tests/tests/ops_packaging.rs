//! Packaging artefacts stay consistent: the systemd units pass
//! `systemd-analyze verify`, keep their hardening (offline
//! `systemd-analyze security` exposure ≤ 2.0), the `cargo deb` metadata of
//! every binary crate names files that exist, and every Dockerfile is
//! multi-stage, runs as a non-root user and copies files that exist.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| panic!("no parent"))
        .to_path_buf()
}

const UNITS: &[&str] = &["anquan-gateway", "anquan-monitor"];

const HARDENING: &[&str] = &[
    "DynamicUser=yes",
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=\n",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "StateDirectory=",
    "LoadCredential=",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter=@system-service",
    "MemoryMax=",
];

fn systemd_analyze() -> Command {
    Command::new("systemd-analyze")
}

#[test]
fn systemd_units_verify_and_stay_hardened() {
    let dir = tempfile::tempdir().unwrap();
    for unit in UNITS {
        let text =
            std::fs::read_to_string(repo().join(format!("ops/systemd/{unit}.service"))).unwrap();
        for h in HARDENING {
            assert!(text.contains(h), "{unit}.service lacks `{}`", h.trim());
        }
        // verify checks that ExecStart's program exists: the packaged path
        // is /usr/bin/<binary>, which a test machine need not have.
        let local = text.replace(&format!("/usr/bin/{unit}"), "/bin/true");
        let path = dir.path().join(format!("{unit}.service"));
        std::fs::write(&path, local).unwrap();
        let out = systemd_analyze()
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| {
                panic!("systemd-analyze not runnable ({e}): run scripts/install-deps (Debian package `systemd`)")
            });
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains(&format!("{unit}.service:")),
            "systemd-analyze verify {unit}.service:\n{stderr}"
        );
        let out = systemd_analyze()
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(&path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        let score: f64 = report
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no exposure level in:\n{report}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert!(score <= 2.0, "{unit}: exposure {score} > 2.0:\n{report}");
    }
}

#[test]
fn deb_metadata_names_existing_files() {
    for (krate, bin) in [
        ("gateway", "anquan-gateway"),
        ("monitor", "anquan-monitor"),
        ("simulator", "anquan-sim"),
    ] {
        let dir = repo().join(krate);
        let manifest: toml::Table =
            toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
        let deb = &manifest["package"]["metadata"]["deb"];
        let assets = deb["assets"].as_array().unwrap();
        let mut has_binary = false;
        for a in assets {
            let a = a.as_array().unwrap();
            let src = a[0].as_str().unwrap();
            if src == format!("target/release/{bin}") {
                has_binary = true;
                continue;
            }
            let base = src.trim_end_matches("/*");
            assert!(
                dir.join(base).exists(),
                "{krate}/Cargo.toml: deb asset {src} does not exist"
            );
        }
        assert!(has_binary, "{krate}: the deb does not ship {bin}");
    }
}

#[test]
fn dockerfiles_are_multi_stage_non_root_and_copy_existing_files() {
    for name in ["gateway", "monitor", "sim"] {
        let path = repo().join(format!("ops/docker/{name}.Dockerfile"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(" AS builder"), "{name}: not multi-stage");
        assert!(
            text.contains("cargo build --release --locked"),
            "{name}: not a locked release build"
        );
        let user = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("USER "))
            .unwrap_or_else(|| panic!("{name}: no USER"));
        assert!(
            !user.starts_with("root") && !user.starts_with("0"),
            "{name}: runs as {user}"
        );
        for l in text.lines().filter(|l| l.starts_with("COPY ")) {
            let parts: Vec<&str> = l.split_whitespace().collect();
            if parts.iter().any(|p| p.starts_with("--from")) || parts[1] == "." {
                continue;
            }
            assert!(
                repo().join(parts[1]).exists(),
                "{name}: COPY of missing {}",
                parts[1]
            );
        }
    }
}
