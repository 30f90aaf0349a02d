//! QEMU's `mps2-an386` (Cortex-M4F; the same code builds for Cortex-M0+):
//! two CMSDK APB UARTs with receive interrupts (UART1: the MQTT pipe to a
//! transparent DTU; UART2: the Modbus RTU line), SysTick at 1 kHz on the
//! 25 MHz system clock, semihosting for the console and the exit code,
//! and 32 KiB of the PSRAM standing in for the NOR flash of the frame
//! store. The stack is painted at reset and again when the loop starts, so
//! the deepest use of each phase can be measured.
//!
//! Memory-mapped I/O is the one place the images need `unsafe`: every
//! access goes through [`reg`] with addresses from the AN385/AN386
//! application notes (UART1 0x4000_5000, IRQ 2; UART2 0x4000_6000, IRQ 4).
#![allow(unsafe_code)]

use core::cell::{Cell, RefCell};
use core::convert::Infallible;

use anquan_firmware::Sensors;
use anquan_firmware::store::RamFlash;
use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use critical_section::Mutex;
use embedded_io::{ErrorType, Read, ReadReady, Write};
use static_cell::StaticCell;

use crate::app::{self, BoardStats, Platform, State};
use crate::world::World;

const SYSCLK_HZ: u32 = 25_000_000;
const TICK_RELOAD: u32 = SYSCLK_HZ / 1000 - 1;
const UART1: usize = 0x4000_5000;
const UART2: usize = 0x4000_6000;
const FLASH_BASE: usize = 0x2100_0000;
/// The frame store's emulated NOR flash: 8 pages of 4 KiB.
pub const FLASH_BYTES: usize = 32 * 1024;
const PAINT: u32 = 0xA5A5_A5A5;

/// The emulated NOR flash.
pub type Flash = RamFlash<'static, 4096>;
/// The loop's state on this board, for the images' statics.
pub type Image<S> = State<S, Flash, MqttUart>;

/// A memory-mapped register.
fn reg(addr: usize) -> *mut u32 {
    addr as *mut u32
}
fn read(addr: usize) -> u32 {
    // SAFETY: `addr` is a CMSDK peripheral register of this board.
    unsafe { core::ptr::read_volatile(reg(addr)) }
}
fn write(addr: usize, v: u32) {
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(reg(addr), v) }
}

// CMSDK APB UART registers and bits.
const DATA: usize = 0x0;
const STATE: usize = 0x4;
const CTRL: usize = 0x8;
const INTCLEAR: usize = 0xC;
const BAUDDIV: usize = 0x10;
const TX_FULL: u32 = 1;
const RX_FULL: u32 = 2;

#[derive(Clone, Copy)]
#[repr(u16)]
enum Irq {
    Uart1Rx = 2,
    Uart2Rx = 4,
}

// SAFETY: the numbers are the board's external interrupt lines.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

/// A receive ring filled by an interrupt handler; `T` is what is kept per
/// byte besides the byte (`()` for a byte stream, the arrival time for the
/// Modbus line, whose framing is timing).
struct Ring<T: Copy, const N: usize> {
    bytes: [u8; N],
    meta: [T; N],
    head: usize,
    len: usize,
    overruns: u32,
}

impl<T: Copy, const N: usize> Ring<T, N> {
    const fn new(zero: T) -> Self {
        Self {
            bytes: [0; N],
            meta: [zero; N],
            head: 0,
            len: 0,
            overruns: 0,
        }
    }
    fn push(&mut self, b: u8, meta: T) {
        if self.len == N {
            self.overruns = self.overruns.wrapping_add(1);
            return;
        }
        let at = (self.head + self.len) % N;
        self.bytes[at] = b;
        self.meta[at] = meta;
        self.len += 1;
    }
    fn pop(&mut self) -> Option<(u8, T)> {
        if self.len == 0 {
            return None;
        }
        let v = (self.bytes[self.head], self.meta[self.head]);
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(v)
    }
}

/// MQTT bytes from the DTU: 512 bytes of slack at 115 200 baud is ~44 ms
/// of loop latency (the client reads every tick; broker packets are 2–4
/// bytes).
static MQTT_RX: Mutex<RefCell<Ring<(), 512>>> = Mutex::new(RefCell::new(Ring::new(())));
/// Modbus bytes with their arrival time (low 32 bits of µs): one whole
/// request (256 bytes at most).
static MODBUS_RX: Mutex<RefCell<Ring<u32, 256>>> = Mutex::new(RefCell::new(Ring::new(0)));
/// Milliseconds counted by SysTick.
static TICKS_MS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let t = TICKS_MS.borrow(cs);
        t.set(t.get() + 1);
    });
}

/// µs since boot: the ticks counted plus the position in the current
/// millisecond. Read with interrupts masked, the count and the SysTick
/// counter cannot move apart except by a wrap whose interrupt is still
/// pending: then the count is one behind, and the counter is read again on
/// the new millisecond. (Without that check a read straddling a wrap comes
/// out up to 1 ms early, which is what made the images' clock run
/// backwards under host load.)
fn micros() -> u64 {
    critical_section::with(|cs| {
        let mut ms = TICKS_MS.borrow(cs).get();
        let mut current = SYST::get_current();
        if SCB::is_pendst_pending() {
            ms += 1;
            current = SYST::get_current();
        }
        let into_ms = (TICK_RELOAD - current.min(TICK_RELOAD)) / (SYSCLK_HZ / 1_000_000);
        ms * 1000 + u64::from(into_ms)
    })
}

/// Takes what a UART received. The interrupt is acknowledged *before* the
/// data register is read: a byte landing after the last read then raises
/// the interrupt again. (Acknowledged after, such a byte's interrupt was
/// wiped while its byte sat unread: the UART stayed full and silent for
/// good, which under host load stalled the Modbus link.)
fn receive(uart: usize, mut take: impl FnMut(u8)) {
    write(uart + INTCLEAR, 0b10);
    while read(uart + STATE) & RX_FULL != 0 {
        take(read(uart + DATA) as u8);
    }
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    match irqn {
        2 => receive(UART1, |b| {
            critical_section::with(|cs| MQTT_RX.borrow_ref_mut(cs).push(b, ()));
        }),
        4 => receive(UART2, |b| {
            let at = micros() as u32;
            critical_section::with(|cs| MODBUS_RX.borrow_ref_mut(cs).push(b, at));
        }),
        _ => {}
    }
}

fn uart_init(base: usize, baud: u32) {
    write(base + BAUDDIV, SYSCLK_HZ / baud);
    // TX and RX enabled, RX interrupt enabled.
    write(base + CTRL, 0b1011);
}

fn uart_write(base: usize, bytes: &[u8]) {
    for b in bytes {
        while read(base + STATE) & TX_FULL != 0 {}
        write(base + DATA, u32::from(*b));
    }
}

/// The MQTT UART as an `embedded-io` pipe.
#[derive(Debug)]
pub struct MqttUart;

impl ErrorType for MqttUart {
    type Error = Infallible;
}

impl Read for MqttUart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        critical_section::with(|cs| {
            let mut r = MQTT_RX.borrow_ref_mut(cs);
            while n < buf.len() {
                let Some((b, ())) = r.pop() else { break };
                buf[n] = b;
                n += 1;
            }
        });
        Ok(n)
    }
}

impl ReadReady for MqttUart {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(critical_section::with(|cs| MQTT_RX.borrow_ref(cs).len > 0))
    }
}

impl Write for MqttUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        uart_write(UART1, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// The Modbus UART's transmitter.
#[derive(Debug)]
pub struct ModbusTx;

impl ErrorType for ModbusTx {
    type Error = Infallible;
}

impl Write for ModbusTx {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        uart_write(UART2, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

unsafe extern "C" {
    static mut __sheap: u32;
    static mut _stack_start: u32;
}

/// The stack's lowest and highest address: from the end of the statics
/// to the top of the RAM.
fn stack_bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken.
    (
        core::ptr::addr_of!(__sheap) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}

/// Paints the free stack below the current stack pointer (interrupts
/// masked, so no handler's frame is under the brush).
fn paint_stack() {
    cortex_m::interrupt::free(|_| {
        let (bottom, _) = stack_bounds();
        let sp = cortex_m::register::msp::read() as usize;
        let mut p = bottom;
        while p + 64 < sp {
            // SAFETY: free RAM below the live stack, above the statics.
            unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
            p += 4;
        }
    });
}

/// The deepest stack use since the last paint, bytes.
fn stack_used() -> usize {
    let (bottom, top) = stack_bounds();
    let mut p = bottom;
    // SAFETY: reads of RAM between the statics and the stack top.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

/// The board.
#[derive(Debug)]
pub struct Mps2 {
    last_us: u64,
    stack_boot: usize,
    clock_clamps: u32,
}

impl Platform for Mps2 {
    fn now_us(&mut self) -> u64 {
        let now = micros();
        if now < self.last_us {
            self.clock_clamps = self.clock_clamps.saturating_add(1);
            return self.last_us;
        }
        self.last_us = now;
        now
    }

    fn modbus_rx(&mut self) -> Option<(u8, u64)> {
        let (b, at) = critical_section::with(|cs| MODBUS_RX.borrow_ref_mut(cs).pop())?;
        // Widen the 32-bit arrival time relative to now (the ring is
        // drained every tick, far within the 71 minutes of its range).
        let now = self.now_us();
        let back = (now as u32).wrapping_sub(at);
        Some((b, now.saturating_sub(u64::from(back))))
    }

    fn wait(&mut self) {
        cortex_m::asm::wfi();
    }

    fn log(&mut self, line: &str) {
        cortex_m_semihosting::hprintln!("{}", line);
    }

    fn stats(&self) -> BoardStats {
        let overruns = critical_section::with(|cs| {
            MQTT_RX
                .borrow_ref(cs)
                .overruns
                .saturating_add(MODBUS_RX.borrow_ref(cs).overruns)
        });
        BoardStats {
            stack_boot: self.stack_boot,
            stack_loop: stack_used(),
            rx_overruns: overruns,
            clock_clamps: self.clock_clamps,
        }
    }
}

fn exit(code: i32) -> ! {
    cortex_m_semihosting::debug::exit(if code == 0 {
        cortex_m_semihosting::debug::EXIT_SUCCESS
    } else {
        cortex_m_semihosting::debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// Builds the loop's state in `state`, in a frame of its own: the
/// temporaries of construction are gone from the stack when the loop runs.
// The `&mut` comes from the `StaticCell`, not from `world`.
#[allow(clippy::mut_from_ref)]
#[inline(never)]
fn boot<S: Sensors>(
    world: &'static World,
    sensors: fn(&'static World) -> S,
    state: &'static StaticCell<Image<S>>,
) -> &'static mut Image<S> {
    // The emulated flash starts as a factory-erased part.
    // SAFETY: PSRAM at 0x2100_0000 (16 MiB) is used by nothing else.
    let mem = unsafe { core::slice::from_raw_parts_mut(FLASH_BASE as *mut u8, FLASH_BYTES) };
    mem.fill(0xFF);
    // Built straight into the static where the optimiser can.
    state.init_with(|| {
        match State::new(
            world,
            sensors(world),
            MqttUart,
            RamFlash::new(mem),
            0..FLASH_BYTES as u32,
        ) {
            Ok(st) => st,
            Err(refused) => {
                cortex_m_semihosting::hprintln!("E {:?}", refused);
                exit(refused as i32)
            }
        }
    })
}

/// Boots the board and runs the device whose front end `sensors` builds
/// in `world`, with its state in `state`; exits QEMU with the result.
pub fn start<S: Sensors>(
    world: &'static World,
    sensors: fn(&'static World) -> S,
    state: &'static StaticCell<Image<S>>,
) -> ! {
    paint_stack();
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        exit(1);
    };
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(TICK_RELOAD);
    cp.SYST.clear_current();
    cp.SYST.enable_counter();
    cp.SYST.enable_interrupt();
    uart_init(UART1, 115_200);
    uart_init(UART2, app::BAUD);
    // SAFETY: the handlers above are ready before the lines are unmasked.
    unsafe {
        cortex_m::peripheral::NVIC::unmask(Irq::Uart1Rx);
        cortex_m::peripheral::NVIC::unmask(Irq::Uart2Rx);
    }
    let st = boot(world, sensors, state);
    let mut board = Mps2 {
        last_us: 0,
        stack_boot: stack_used(),
        clock_clamps: 0,
    };
    // The loop's own measurement starts here.
    paint_stack();
    let code = app::run(&mut board, world, st, ModbusTx, crate::world::RUN_MS);
    exit(code)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(1)
}
