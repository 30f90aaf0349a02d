//! The device loop of a reference image, the same on every board: the
//! real `Device::step` on the kind's real drivers, the MQTT client on one
//! UART (a transparent DTU pipe), the Modbus RTU slave on another, the
//! frames in the flash store.
//!
//! Everything the loop owns is one [`State`], which a board keeps in a
//! static: the image's static RAM (measured from the ELF file) is then the
//! firmware's whole state, and the stack holds only what the calls need
//! (measured by painting it).

use core::fmt::Write as _;
use core::mem::size_of;
use core::ops::Range;

use anquan_edge_rules::defaults;
use anquan_firmware::hal::{NoClock, NoPin};
use anquan_firmware::modbus::rtu::{RtuConfig, RtuSlave, Served};
use anquan_firmware::mqtt::client;
use anquan_firmware::outbox::{FrameStore, Outbox};
use anquan_firmware::store::FlashOutbox;
use anquan_firmware::{DEFAULT_OUTBOX_BYTES, Device, DeviceConfig, Hal, Sensors};
use anquan_protocol::Id;
use embedded_io::{Read, ReadReady, Write};
use embedded_storage_async::nor_flash::{MultiwriteNorFlash, NorFlash};

use crate::world::{self, Output, World};

/// Modbus unit id of the reference images.
pub const UNIT: u8 = 1;
/// Modbus line speed of the reference images, baud.
pub const BAUD: u32 = 9_600;
/// Diagnostic input registers (u32 each, high word first) from
/// `DIAGNOSTICS_BASE`.
pub const DIAGNOSTICS: usize = 21;

/// A reference device: the kind's front end, buzzer and relay in the
/// world, frames on the flash store.
pub type Dev<S, F> = Device<S, Output<'static>, Output<'static>, NoPin, NoClock, FlashOutbox<F>>;

/// The same device with the RAM ring of `Device::new` instead of the flash
/// store (not linked; its size on the target is printed at boot).
pub type RamRingDev<S> =
    Device<S, Output<'static>, Output<'static>, NoPin, NoClock, Outbox<DEFAULT_OUTBOX_BYTES>>;

/// Board counters the loop reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoardStats {
    /// Deepest stack while booting (before the loop), bytes; 0 if unknown.
    pub stack_boot: usize,
    /// Deepest stack in the loop, bytes (painted stack); 0 if unknown.
    pub stack_loop: usize,
    /// Bytes lost because a receive ring was full.
    pub rx_overruns: u32,
    /// Times the timer read earlier than before (held, never shown).
    pub clock_clamps: u32,
}

/// What a board gives the loop.
pub trait Platform {
    /// Monotonic µs since boot (never earlier than the previous call).
    fn now_us(&mut self) -> u64;
    /// The next byte the Modbus UART received, with its arrival time (µs,
    /// the same clock).
    fn modbus_rx(&mut self) -> Option<(u8, u64)>;
    /// Sleeps until the next tick or interrupt.
    fn wait(&mut self);
    /// A line for the console (semihosting on QEMU).
    fn log(&mut self, line: &str);
    /// Stack use and the board's own counters.
    fn stats(&self) -> BoardStats;
}

/// Why the state cannot be built (the image's exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Refused {
    /// The site or device id is not a valid id.
    Ids = 2,
    /// The flash store did not mount.
    Flash = 3,
    /// The device refused its configuration.
    Config = 4,
}

/// Everything the loop owns.
pub struct State<S, F, M>
where
    S: Sensors,
    F: NorFlash + MultiwriteNorFlash,
{
    device: Dev<S, F>,
    link: client::Client<'static, M>,
    rtu: RtuSlave,
    diagnostics: [u16; 2 * DIAGNOSTICS],
}

impl<S, F, M> State<S, F, M>
where
    S: Sensors,
    F: NorFlash + MultiwriteNorFlash,
    M: Read + ReadReady + Write,
{
    /// The device of `sensors` in `world`, its MQTT client on `pipe`, its
    /// frames on `range` of `flash`.
    pub fn new(
        world: &'static World,
        sensors: S,
        pipe: M,
        flash: F,
        range: Range<u32>,
    ) -> Result<Self, Refused> {
        let kind = sensors.kind();
        let (Ok(site), Ok(id)) = (Id::new(world::SITE), Id::new(world::device_id(kind))) else {
            return Err(Refused::Ids);
        };
        let mut cfg = client::Config::new(world::device_id(kind), world::will_topic(kind));
        cfg.keep_alive_s = 30;
        cfg.connack_timeout_ms = 3_000;
        cfg.ping_timeout_ms = 5_000;
        let store = FlashOutbox::mount(flash, range).map_err(|_| Refused::Flash)?;
        let hal = Hal::new(sensors)
            .with_buzzer(Output::buzzer(world))
            .with_relay(Output::relay(world));
        let device = Device::with_store(
            DeviceConfig::new(site, id),
            defaults::for_kind(kind),
            hal,
            store,
        )
        .map_err(|_| Refused::Config)?;
        Ok(Self {
            device,
            link: client::Client::new(pipe, cfg),
            rtu: RtuSlave::new(RtuConfig {
                unit: UNIT,
                baud: BAUD,
            }),
            diagnostics: [0; 2 * DIAGNOSTICS],
        })
    }

    /// The diagnostic input registers: what every link went through.
    fn fill_diagnostics(&mut self, stack: usize) {
        let s = self.device.stats();
        let store = self.device.outbox().stats();
        let l = self.link.stats();
        let r = self.rtu.stats();
        let values: [u32; DIAGNOSTICS] = [
            s.frames,
            s.published,
            s.publish_errors,
            s.dropped,
            self.device.outbox().len() as u32,
            store.flash_errors,
            store.reclaimed_pages,
            l.connects,
            l.sessions,
            l.refused.iter().sum(),
            l.connack_timeouts,
            l.ping_timeouts,
            l.malformed,
            l.unexpected,
            l.resent,
            r.answered,
            r.exceptions,
            r.crc_errors,
            r.too_short
                .saturating_add(r.oversized)
                .saturating_add(r.unpolled),
            r.other_units,
            stack as u32,
        ];
        for (i, v) in values.iter().enumerate() {
            self.diagnostics[2 * i] = (v >> 16) as u16;
            self.diagnostics[2 * i + 1] = *v as u16;
        }
    }
}

/// Runs the device for `run_ms` of uptime; returns the exit code (0 = the
/// device sampled throughout and every frame it made is accounted for).
pub fn run<P, S, F, M, T>(
    p: &mut P,
    world: &World,
    st: &mut State<S, F, M>,
    mut modbus_tx: T,
    run_ms: u64,
) -> i32
where
    P: Platform,
    S: Sensors,
    F: NorFlash + MultiwriteNorFlash,
    M: Read + ReadReady + Write,
    T: Write,
{
    let kind = st.device.kind();
    let mut line = heapless::String::<256>::new();
    let _ = write!(
        line,
        "B {} {} state={} ram_ring_device={}",
        kind,
        world::device_id(kind),
        size_of::<State<S, F, M>>(),
        size_of::<RamRingDev<S>>(),
    );
    p.log(&line);
    loop {
        let now_us = p.now_us();
        let now = now_us / 1000;
        world.set_now(now);
        st.link.poll(now);
        st.device.step_observed(now, &mut st.link, |t| {
            p.log(&world::transition_line(now, t))
        });
        while let Some((b, at)) = p.modbus_rx() {
            st.rtu.on_byte(b, at);
        }
        st.fill_diagnostics(p.stats().stack_loop);
        let _ = st.rtu.poll(
            now_us,
            &mut Served {
                device: &mut st.device,
                now_ms: now,
                diagnostics: &st.diagnostics,
            },
            &mut modbus_tx,
        );
        if now >= run_ms {
            break;
        }
        p.wait();
    }
    let s = st.device.stats();
    let l = st.link.stats();
    let r = st.rtu.stats();
    let b = p.stats();
    let held = st.device.outbox().len();
    line.clear();
    let _ = write!(
        line,
        "S samples={} frames={} events={} published={} held={held} dropped={} sessions={} acked={} resent={} \
         rtu_answered={} rtu_exceptions={} rtu_crc={} rtu_torn={} rtu_gaps={} rtu_other={} buzzer={} relay={} \
         stack_boot={} stack={} rx_overruns={} clock_clamps={}",
        s.samples,
        s.frames,
        s.events,
        s.published,
        s.dropped,
        l.sessions,
        l.acked,
        l.resent,
        r.answered,
        r.exceptions,
        r.crc_errors,
        r.too_short
            .saturating_add(r.oversized)
            .saturating_add(r.unpolled),
        r.char_gaps,
        r.other_units,
        world.buzzer(),
        world.relay(),
        b.stack_boot,
        b.stack_loop,
        b.rx_overruns,
        b.clock_clamps,
    );
    p.log(&line);
    // Every frame made is delivered, held in flash or counted as dropped.
    let accounted = s.published as usize + held + s.dropped as usize;
    let sampled = u64::from(s.samples) * 1000 >= run_ms - 2000;
    if accounted == s.frames as usize && sampled {
        0
    } else {
        1
    }
}
