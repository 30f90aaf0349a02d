//! Helpers shared by the end-to-end tests in `tests/tests/` and the
//! gateway bench: real services on free loopback ports ([`services`]), the
//! gateway binary as a child process ([`gateway`]), and a local HTTP
//! receiver standing in for the monitor's alarm intake ([`receiver`]), a
//! fault-injecting proxy ([`proxy`]), the fault matrix ([`faults`]) and
//! the soak ([`soak`]), the monitor binary ([`monitor`]), a PostgreSQL of its own ([`pg`]) and the city-scale
//! alarm storm's plan ([`storm`]).

pub mod faults;
pub mod gateway;
pub mod modbus;
pub mod monitor;
pub mod mqtt;
pub mod pg;
pub mod proxy;
pub mod receiver;
pub mod services;
pub mod soak;
pub mod storm;

use std::path::PathBuf;

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// `cargo build -p {package} --bin {bin}` in the profile the tests run in
/// (debug), in the workspace's target directory (`CARGO_TARGET_DIR` if
/// set); the binary's path. For programs a test runs but cannot name as a
/// dependency (the simulator, the monitor); callers build once per test
/// process.
pub fn cargo_build_bin(package: &str, bin: &str) -> PathBuf {
    let root = workspace_root();
    let st = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .current_dir(&root)
        .status()
        .unwrap_or_else(|e| panic!("cargo build -p {package}: {e}"));
    assert!(st.success(), "cargo build -p {package} --bin {bin} failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("debug")
        .join(bin)
}
