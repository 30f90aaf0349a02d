//! The boards.
#[cfg(target_arch = "arm")]
pub mod mps2;
#[cfg(target_arch = "riscv32")]
pub mod riscv;

#[cfg(target_arch = "arm")]
pub use mps2::{Image, start};
#[cfg(target_arch = "riscv32")]
pub use riscv::{Image, start};
