//! A RISC-V board (ESP32-C3 class, `riscv32imc`), for building and
//! measuring the images: the memory map of QEMU's `virt` machine (a 16550
//! UART at 0x1000_0000 for the MQTT pipe, a second at 0x1000_1000 for
//! Modbus, the CLINT timer at 10 MHz, the SiFive test device to exit).
//! It is not booted in CI (no riscv32imc machine with these parts there);
//! polled I/O, no stack painting.
#![allow(unsafe_code)]

use core::convert::Infallible;

use anquan_firmware::Sensors;
use anquan_firmware::store::RamFlash;
use embedded_io::{ErrorType, Read, ReadReady, Write};
use static_cell::StaticCell;

use crate::app::{self, BoardStats, Platform, State};
use crate::world::World;

const UART_MQTT: usize = 0x1000_0000;
const UART_MODBUS: usize = 0x1000_1000;
const MTIME: usize = 0x0200_BFF8;
const TEST_DEVICE: usize = 0x0010_0000;
const FLASH_BASE: usize = 0x8100_0000;
const FLASH_BYTES: usize = 32 * 1024;
const RBR: usize = 0;
const THR: usize = 0;
const LSR: usize = 5;

/// The emulated NOR flash.
pub type Flash = RamFlash<'static, 4096>;
/// The loop's state on this board, for the images' statics.
pub type Image<S> = State<S, Flash, Uart>;

fn rd(addr: usize) -> u8 {
    // SAFETY: a register of the board's 16550 UARTs.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}
fn wr(addr: usize, v: u8) {
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(addr as *mut u8, v) }
}
fn micros() -> u64 {
    loop {
        // SAFETY: the CLINT's mtime, read-only; high, low, high again so
        // a carry between the halves is never seen.
        let hi = unsafe { core::ptr::read_volatile((MTIME + 4) as *const u32) };
        // SAFETY: as above.
        let lo = unsafe { core::ptr::read_volatile(MTIME as *const u32) };
        // SAFETY: as above.
        if hi == unsafe { core::ptr::read_volatile((MTIME + 4) as *const u32) } {
            return ((u64::from(hi) << 32) | u64::from(lo)) / 10;
        }
    }
}

/// A 16550 UART as an `embedded-io` pipe (polled).
#[derive(Debug)]
pub struct Uart(usize);

impl ErrorType for Uart {
    type Error = Infallible;
}
impl Read for Uart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        while n < buf.len() && rd(self.0 + LSR) & 1 != 0 {
            buf[n] = rd(self.0 + RBR);
            n += 1;
        }
        Ok(n)
    }
}
impl ReadReady for Uart {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(rd(self.0 + LSR) & 1 != 0)
    }
}
impl Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for b in buf {
            while rd(self.0 + LSR) & 0x20 == 0 {}
            wr(self.0 + THR, *b);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// The board.
#[derive(Debug)]
pub struct Board;

impl Platform for Board {
    fn now_us(&mut self) -> u64 {
        micros()
    }
    fn modbus_rx(&mut self) -> Option<(u8, u64)> {
        (rd(UART_MODBUS + LSR) & 1 != 0).then(|| (rd(UART_MODBUS + RBR), micros()))
    }
    fn wait(&mut self) {}
    fn log(&mut self, _: &str) {}
    fn stats(&self) -> BoardStats {
        BoardStats::default()
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: the SiFive test device: 0x5555 = pass, 0x3333 = fail.
    unsafe {
        core::ptr::write_volatile(
            TEST_DEVICE as *mut u32,
            if code == 0 {
                0x5555
            } else {
                0x3333 | ((code as u32) << 16)
            },
        )
    };
    loop {
        core::hint::spin_loop();
    }
}

/// Builds the loop's state in `state`, in a frame of its own.
// The `&mut` comes from the `StaticCell`, not from `world`.
#[allow(clippy::mut_from_ref)]
#[inline(never)]
fn boot<S: Sensors>(
    world: &'static World,
    sensors: fn(&'static World) -> S,
    state: &'static StaticCell<Image<S>>,
) -> &'static mut Image<S> {
    // SAFETY: RAM set aside for the emulated flash.
    let mem = unsafe { core::slice::from_raw_parts_mut(FLASH_BASE as *mut u8, FLASH_BYTES) };
    mem.fill(0xFF);
    match State::new(
        world,
        sensors(world),
        Uart(UART_MQTT),
        RamFlash::new(mem),
        0..FLASH_BYTES as u32,
    ) {
        Ok(st) => state.init(st),
        Err(refused) => exit(refused as i32),
    }
}

/// Boots the board and runs the device; powers off with the result.
pub fn start<S: Sensors>(
    world: &'static World,
    sensors: fn(&'static World) -> S,
    state: &'static StaticCell<Image<S>>,
) -> ! {
    let st = boot(world, sensors, state);
    let code = app::run(
        &mut Board,
        world,
        st,
        Uart(UART_MODBUS),
        crate::world::RUN_MS,
    );
    exit(code)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(1)
}
