//! The device loop of a reference image, the same on every board: the
//! real `Device::step` on the kind's real drivers, the MQTT client on one
//! UART (a transparent DTU pipe), the Modbus RTU slave on another, the
//! frames in the flash store.

use core::fmt::Write as _;

use anquan_edge_rules::defaults;
use anquan_firmware::modbus::rtu::{RtuConfig, RtuSlave, Served};
use anquan_firmware::mqtt::{self, client};
use anquan_firmware::outbox::FrameStore;
use anquan_firmware::store::FlashOutbox;
use anquan_firmware::{Device, DeviceConfig, Hal, Sensors};
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

/// What a board gives the loop.
pub trait Platform {
    /// Monotonic µs since boot.
    fn now_us(&mut self) -> u64;
    /// The next byte the Modbus UART received, with its arrival time (µs).
    fn modbus_rx(&mut self) -> Option<(u8, u64)>;
    /// Sleeps until the next tick or interrupt.
    fn wait(&mut self);
    /// A line for the console (semihosting on QEMU).
    fn log(&mut self, line: &str);
    /// Deepest stack use so far, bytes (painted stack), 0 if unknown.
    fn stack_used(&self) -> usize;
    /// Stack in use now, bytes (0 if unknown).
    fn stack_now(&self) -> usize;
}

/// Runs the device for `run_ms` of uptime; returns the exit code (0 = the
/// device sampled throughout and every frame it made is accounted for).
#[allow(clippy::too_many_arguments)]
pub fn run<P, S, M, T, F>(
    p: &mut P,
    world: &World,
    sensors: S,
    mqtt_pipe: M,
    mut modbus_tx: T,
    flash: F,
    flash_range: core::ops::Range<u32>,
    run_ms: u64,
) -> i32
where
    P: Platform,
    S: Sensors,
    M: Read + ReadReady + Write,
    T: Write,
    F: NorFlash + MultiwriteNorFlash,
{
    let kind = sensors.kind();
    let (Ok(site), Ok(id)) = (Id::new(world::SITE), Id::new(world::device_id(kind))) else {
        return 2;
    };
    let will = mqtt::last_will(&site, &id);
    let mut cfg = client::Config::new(world::device_id(kind), &will.topic);
    cfg.keep_alive_s = 30;
    cfg.connack_timeout_ms = 3_000;
    cfg.ping_timeout_ms = 5_000;
    let mut link: client::Client<'_, M> = client::Client::new(mqtt_pipe, cfg);
    let Ok(store) = FlashOutbox::mount(flash, flash_range) else {
        p.log("E flash store did not mount");
        return 3;
    };
    let hal = Hal::new(sensors)
        .with_buzzer(Output::buzzer(world))
        .with_relay(Output::relay(world));
    let Ok(mut device) = Device::with_store(
        DeviceConfig::new(site, id),
        defaults::for_kind(kind),
        hal,
        store,
    ) else {
        p.log("E device config refused");
        return 4;
    };
    let mut rtu = RtuSlave::new(RtuConfig {
        unit: UNIT,
        baud: BAUD,
    });
    let mut diag = [0u16; 2 * DIAGNOSTICS];
    let mut line = heapless::String::<160>::new();
    // The loop's state (device, link, slave, store) lives in this frame:
    // its depth is the state's RAM; the painted high-water adds the rest.
    let state = p.stack_now();
    let _ = write!(line, "B {} {}", kind, world::device_id(kind));
    p.log(&line);
    loop {
        let now_us = p.now_us();
        let now = now_us / 1000;
        world.set_now(now);
        link.poll(now);
        device.step_observed(now, &mut link, |t| p.log(&world::transition_line(now, t)));
        while let Some((b, at)) = p.modbus_rx() {
            rtu.on_byte(b, at);
        }
        fill_diagnostics(&mut diag, &device, &link, &rtu, p.stack_used());
        let _ = rtu.poll(
            now_us,
            &mut Served {
                device: &mut device,
                now_ms: now,
                diagnostics: &diag,
            },
            &mut modbus_tx,
        );
        if now >= run_ms {
            break;
        }
        p.wait();
    }
    let s = device.stats();
    let l = link.stats();
    let r = rtu.stats();
    line.clear();
    let _ = write!(
        line,
        "S samples={} frames={} events={} published={} held={} dropped={} sessions={} acked={} rtu_answered={} rtu_crc={} buzzer={} relay={} state={} stack={}",
        s.samples,
        s.frames,
        s.events,
        s.published,
        device.outbox().len(),
        s.dropped,
        l.sessions,
        l.acked,
        r.answered,
        r.crc_errors,
        world.buzzer(),
        world.relay(),
        state,
        p.stack_used()
    );
    p.log(&line);
    // Every frame made is delivered, held in flash or counted as dropped.
    let accounted = s.published as usize + device.outbox().len() + s.dropped as usize;
    let sampled = u64::from(s.samples) * 1000 >= run_ms - 2000;
    if accounted == s.frames as usize && sampled {
        0
    } else {
        1
    }
}

fn fill_diagnostics<D, M: Read + ReadReady + Write, const W: usize>(
    out: &mut [u16; 2 * DIAGNOSTICS],
    device: &D,
    link: &client::Client<'_, M, W>,
    rtu: &RtuSlave,
    stack: usize,
) where
    D: DeviceView,
{
    let (s, held, store) = device.view();
    let l = link.stats();
    let r = rtu.stats();
    let values: [u32; DIAGNOSTICS] = [
        s.frames,
        s.published,
        s.publish_errors,
        s.dropped,
        held as u32,
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
        r.too_short.saturating_add(r.oversized),
        r.other_units,
        stack as u32,
    ];
    for (i, v) in values.iter().enumerate() {
        out[2 * i] = (v >> 16) as u16;
        out[2 * i + 1] = *v as u16;
    }
}

/// The counters of a device with a flash store.
trait DeviceView {
    fn view(
        &self,
    ) -> (
        anquan_firmware::Stats,
        usize,
        anquan_firmware::store::StoreStats,
    );
}

impl<S, B, R, K, C, F> DeviceView for Device<S, B, R, K, C, FlashOutbox<F>>
where
    S: Sensors,
    B: embedded_hal::digital::OutputPin,
    R: embedded_hal::digital::OutputPin,
    K: embedded_hal::digital::InputPin,
    C: anquan_firmware::hal::Clock,
    F: NorFlash + MultiwriteNorFlash,
{
    fn view(
        &self,
    ) -> (
        anquan_firmware::Stats,
        usize,
        anquan_firmware::store::StoreStats,
    ) {
        (self.stats(), self.outbox().len(), self.outbox().stats())
    }
}
