//! The electrical reference image (see the crate docs and firmware/README.md).
#![no_std]
#![no_main]

use anquan_reference::platform;
use anquan_reference::world::{self, World};

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    let world = World::new();
    platform::start(&world, world::electrical())
}
