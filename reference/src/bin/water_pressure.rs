//! The water_pressure reference image (see the crate docs and firmware/README.md).
#![no_std]
#![no_main]

use anquan_reference::platform::{self, Image};
use anquan_reference::world::{self, World};
use static_cell::StaticCell;

/// The scripted world the parts sense.
static WORLD: StaticCell<World> = StaticCell::new();
/// The device, its MQTT client and Modbus slave: static RAM.
static STATE: StaticCell<Image<world::Water<'static>>> = StaticCell::new();

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    platform::start(WORLD.init(World::new()), world::water, &STATE)
}
