//! Puts the memory layout of the target (mps2-an386 for Arm, a QEMU
//! `virt`-like map for RISC-V) where the linker scripts find it.
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let file = match (arch.as_str(), os.as_str()) {
        ("arm", "none") => "memory-arm.x",
        ("riscv32", "none") => "memory-riscv.x",
        _ => return,
    };
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let _ = std::fs::write(out.join("memory.x"), text);
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={file}");
    println!("cargo:rerun-if-changed=build.rs");
}
