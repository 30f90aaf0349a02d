//! QEMU's `mps2-an386` (Cortex-M4F; the same code builds for Cortex-M0+):
//! two CMSDK APB UARTs with receive interrupts (UART1: the MQTT pipe to a
//! transparent DTU; UART2: the Modbus RTU line), SysTick at 1 kHz on the
//! 25 MHz system clock, semihosting for the console and the exit code,
//! and 32 KiB of the PSRAM standing in for the NOR flash of the frame
//! store. The stack is painted at boot so its deepest use can be measured.
//!
//! Memory-mapped I/O is the one place the images need `unsafe`: every
//! access goes through [`reg`] with addresses from the AN385/AN386
//! application notes (UART1 0x4000_5000, IRQ 2; UART2 0x4000_6000, IRQ 4).
#![allow(unsafe_code)]

use core::cell::RefCell;
use core::convert::Infallible;
use core::sync::atomic::{AtomicU32, Ordering};

use anquan_firmware::store::RamFlash;
use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embedded_io::{ErrorType, Read, ReadReady, Write};

use crate::app::{self, Platform};
use crate::world::World;

const SYSCLK_HZ: u32 = 25_000_000;
const UART1: usize = 0x4000_5000;
const UART2: usize = 0x4000_6000;
const FLASH_BASE: usize = 0x2100_0000;
/// The frame store's emulated NOR flash: 8 pages of 4 KiB.
pub const FLASH_BYTES: usize = 32 * 1024;
const PAINT: u32 = 0xA5A5_A5A5;

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

/// A receive ring filled by an interrupt handler: bytes and arrival µs.
struct Ring<const N: usize> {
    bytes: [(u8, u32); N],
    head: usize,
    len: usize,
    overruns: u32,
}

impl<const N: usize> Ring<N> {
    const fn new() -> Self {
        Self {
            bytes: [(0, 0); N],
            head: 0,
            len: 0,
            overruns: 0,
        }
    }
    fn push(&mut self, b: u8, at: u32) {
        if self.len == N {
            self.overruns = self.overruns.wrapping_add(1);
            return;
        }
        self.bytes[(self.head + self.len) % N] = (b, at);
        self.len += 1;
    }
    fn pop(&mut self) -> Option<(u8, u32)> {
        if self.len == 0 {
            return None;
        }
        let v = self.bytes[self.head];
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(v)
    }
}

static MQTT_RX: Mutex<RefCell<Ring<512>>> = Mutex::new(RefCell::new(Ring::new()));
static MODBUS_RX: Mutex<RefCell<Ring<300>>> = Mutex::new(RefCell::new(Ring::new()));
static TICKS_MS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes the counter: load + store is enough (no
    // read-modify-write atomics on Cortex-M0+).
    TICKS_MS.store(
        TICKS_MS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// µs since boot (wraps after 71 minutes; the loop widens it).
fn micros32() -> u32 {
    loop {
        let ms = TICKS_MS.load(Ordering::Relaxed);
        // SAFETY: SysTick's current value register, read-only use.
        let val = unsafe { (*cortex_m::peripheral::SYST::PTR).cvr.read() };
        if TICKS_MS.load(Ordering::Relaxed) == ms {
            let reload = SYSCLK_HZ / 1000 - 1;
            return ms
                .wrapping_mul(1000)
                .wrapping_add((reload - val.min(reload)) / (SYSCLK_HZ / 1_000_000));
        }
    }
}

fn drain(uart: usize, ring: &'static Mutex<RefCell<Ring<512>>>) {
    while read(uart + STATE) & RX_FULL != 0 {
        let b = read(uart + DATA) as u8;
        critical_section::with(|cs| ring.borrow_ref_mut(cs).push(b, micros32()));
    }
    write(uart + INTCLEAR, 0b10);
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    match irqn {
        2 => drain(UART1, &MQTT_RX),
        4 => {
            while read(UART2 + STATE) & RX_FULL != 0 {
                let b = read(UART2 + DATA) as u8;
                let at = micros32();
                critical_section::with(|cs| MODBUS_RX.borrow_ref_mut(cs).push(b, at));
            }
            write(UART2 + INTCLEAR, 0b10);
        }
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
                let Some((b, _)) = r.pop() else { break };
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

fn stack_bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken.
    (
        core::ptr::addr_of!(__sheap) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}

/// Paints the free RAM between the statics and the current stack pointer.
fn paint_stack() {
    let (bottom, _) = stack_bounds();
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = bottom;
    while p + 256 < sp {
        // SAFETY: free RAM below the live stack, above the statics.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// The board.
pub struct Mps2 {
    high_us: u64,
    last_us: u32,
}

impl Platform for Mps2 {
    fn now_us(&mut self) -> u64 {
        let now = micros32();
        if now < self.last_us {
            self.high_us += 1 << 32;
        }
        self.last_us = now;
        self.high_us | u64::from(now)
    }

    fn modbus_rx(&mut self) -> Option<(u8, u64)> {
        let (b, at) = critical_section::with(|cs| MODBUS_RX.borrow_ref_mut(cs).pop())?;
        // Widen the 32-bit arrival time relative to now.
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

    fn stack_now(&self) -> usize {
        stack_bounds().1 - cortex_m::register::msp::read() as usize
    }

    fn stack_used(&self) -> usize {
        let (bottom, top) = stack_bounds();
        let mut p = bottom;
        // SAFETY: reads of RAM between the statics and the stack top.
        while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
            p += 4;
        }
        top - p
    }
}

/// Boots the board and runs `kind`'s device; exits QEMU with the result.
pub fn start<S: anquan_firmware::Sensors>(world: &World, sensors: S) -> ! {
    paint_stack();
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
        loop {}
    };
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(SYSCLK_HZ / 1000 - 1);
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
    // The emulated flash starts as a factory-erased part.
    // SAFETY: PSRAM at 0x2100_0000 (16 MiB) is used by nothing else.
    let mem = unsafe { core::slice::from_raw_parts_mut(FLASH_BASE as *mut u8, FLASH_BYTES) };
    mem.fill(0xFF);
    let flash = RamFlash::<4096>::new(mem);
    let mut board = Mps2 {
        high_us: 0,
        last_us: 0,
    };
    let code = app::run(
        &mut board,
        world,
        sensors,
        MqttUart,
        ModbusTx,
        flash,
        0..FLASH_BYTES as u32,
        crate::world::RUN_MS,
    );
    cortex_m_semihosting::debug::exit(if code == 0 {
        cortex_m_semihosting::debug::EXIT_SUCCESS
    } else {
        cortex_m_semihosting::debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {}
}
