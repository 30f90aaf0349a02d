//! The scripted world the reference images sense, and the part models that
//! put it on the buses.
//!
//! The same code runs inside the image (on the emulated MCU) and on the
//! host (the end-to-end tests' prediction): the script gives the physical
//! quantity at each whole second of uptime, the part models turn it into
//! the bytes or volts a real part would put on its bus, and the real
//! firmware drivers read them. Every kind's story is quiet first, then
//! something goes wrong:
//!
//! | kind | script | parts |
//! |---|---|---|
//! | `gas` | clean air (0.5 %LEL) for 20 s, then a leak rising 2 %LEL/s to 60 %LEL; at 50 s the valve is shut and ventilation brings it down 5 %LEL/s (the alarm clears) | ADS1115 register model on I²C (pellistor bridge on AIN0−AIN1, CO amplifier at its zero on AIN2) |
//! | `water_pressure` | 0.45 MPa for 20 s, a riser valve left half shut (0.06 MPa), a burst at 40 s (0.015 MPa), repaired and refilled at 55 s (0.45 MPa) | two 4–20 mA loops across 250 Ω shunts on the analog input |
//! | `electrical` | 60 mA residual current and cables at 28–32 °C; from 20 s an insulation fault lets the residual current rise 20 mA/s (to 1.2 A); from 30 s a loose joint heats cable 1 by 2.5 °C/s (to 140 °C) | RMS converter and winding check on the analog input; four MAX31865 register models (PT100, 3-wire) on SPI |
//! | `crane` | 2.4 t on the hook at 18 m, 6 m/s wind, mast 0.09° off plumb; from 20 s the trolley runs out at 0.5 m/s (moment past 110 % at ~58 s); from 40 s the wind rises 0.3 m/s per second (to 16 m/s) | HX711 bit-level model on two pins; three SSI encoder models (25-bit Gray); SCL3300 off-frame SPI model; the anemometer's 4–20 mA loop on the analog input |
//!
//! The models are single-threaded and scripted by the world's clock: they
//! are not the host simulator's `anquan_firmware::sim` parts (std, shared
//! across threads, with fault injection), which cannot run on the MCU.

use core::cell::Cell;
use core::convert::Infallible;

use anquan_edge_rules::Transition;
use anquan_firmware::drivers::current_loop::LoopConfig;
use anquan_firmware::drivers::max31865::RtdConfig;
use anquan_firmware::drivers::scl3300::{self, cmd, response};
use anquan_firmware::hal::AnalogInput;
use anquan_firmware::kinds::crane::{CraneBuses, CraneConfig, CraneMonitor, EncoderConfig};
use anquan_firmware::kinds::electrical::{ElectricalConfig, ElectricalMonitor};
use anquan_firmware::kinds::gas::{GasConfig, GasDetector};
use anquan_firmware::kinds::water::{PressureConfig, PressureMonitor};
use anquan_protocol::DeviceKind;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, InputPin, OutputPin};
use embedded_hal::i2c::{self, I2c, NoAcknowledgeSource};
use embedded_hal::spi::{self, Operation, SpiDevice};

/// Site id of the reference devices.
pub const SITE: &str = "qemu";
/// How long an image runs, ms of uptime (then it reports and exits).
pub const RUN_MS: u64 = 75_000;

/// The device id of a kind's reference image.
pub fn device_id(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Gas => "gas-q1",
        DeviceKind::Electrical => "elec-q1",
        DeviceKind::WaterPressure => "water-q1",
        DeviceKind::Crane => "crane-q1",
        // No image: a fire panel is not one of our firmware's devices.
        DeviceKind::FirePanel => "fire-panel-none",
    }
}

/// The MQTT last-will topic of a kind's reference image (what
/// `anquan_firmware::mqtt::last_will` gives for [`SITE`] and
/// [`device_id`]; a constant, so the client can hold it for the image's
/// whole life).
pub fn will_topic(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Gas => "sites/qemu/devices/gas-q1/status",
        DeviceKind::Electrical => "sites/qemu/devices/elec-q1/status",
        DeviceKind::WaterPressure => "sites/qemu/devices/water-q1/status",
        DeviceKind::Crane => "sites/qemu/devices/crane-q1/status",
        DeviceKind::FirePanel => "sites/qemu/devices/fire-panel-none/status",
    }
}

fn seconds(ms: u64) -> f32 {
    (ms / 1000) as f32
}

/// A quantity that holds `quiet` until `from_s`, then changes by `per_s`
/// per second up to `limit`.
fn ramp(ms: u64, quiet: f32, from_s: f32, per_s: f32, limit: f32) -> f32 {
    let s = seconds(ms);
    if s < from_s {
        quiet
    } else {
        let v = quiet + per_s * (s - from_s);
        if per_s >= 0.0 {
            v.min(limit)
        } else {
            v.max(limit)
        }
    }
}

/// Combustible gas at the detector, %LEL, at uptime `ms`: a leak from
/// 20 s, the valve shut at 50 s and the room ventilated.
pub fn gas_lel(ms: u64) -> f32 {
    if ms < 50_000 {
        ramp(ms, 0.5, 20.0, 2.0, 60.0)
    } else {
        ramp(ms, 60.0, 50.0, -5.0, 0.5)
    }
}

/// Fire-water pressure, MPa, at uptime `ms`.
pub fn water_mpa(ms: u64) -> f32 {
    match ms / 1000 {
        0..20 => 0.45,
        20..40 => 0.06,
        40..55 => 0.015,
        _ => 0.45,
    }
}

/// Residual current of the monitored circuit, mA.
pub fn residual_ma(ms: u64) -> f32 {
    ramp(ms, 60.0, 20.0, 20.0, 1_200.0)
}

/// Temperature of cable `i` (0–3), °C: cable 1 has the loose joint.
pub fn cable_c(i: usize, ms: u64) -> f32 {
    if i == 0 {
        ramp(ms, 32.0, 30.0, 2.5, 140.0)
    } else {
        27.0 + i as f32
    }
}

/// Hook load, t.
pub fn load_t(_ms: u64) -> f32 {
    2.4
}

/// Trolley radius, m.
pub fn radius_m(ms: u64) -> f32 {
    ramp(ms, 18.0, 20.0, 0.5, 50.0)
}

/// Hook height, m.
pub fn height_m(_ms: u64) -> f32 {
    32.3
}

/// Slew angle, degrees (the jib turns slowly all along).
pub fn slew_deg(ms: u64) -> f32 {
    -30.0 + 0.5 * seconds(ms)
}

/// Wind at the jib head, m/s.
pub fn wind_ms(ms: u64) -> f32 {
    ramp(ms, 6.0, 40.0, 0.3, 16.0)
}

/// Mast inclination, X and Y axis, degrees.
pub fn mast_deg(_ms: u64) -> (f32, f32) {
    (0.08, 0.04)
}

/// Small deterministic front-end noise (−1, 0, +1 LSB) per second and input.
fn noise(ms: u64, input: u8) -> i32 {
    let x = (ms / 1000)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(input) * 0x6A09_E667);
    ((x >> 33) % 3) as i32 - 1
}

/// The HX711's two wires, shared by its clock and data pin models.
#[derive(Debug, Default)]
struct Hx711Line {
    latched: Cell<u32>,
    /// Pulses clocked in the current read; `None` = idle.
    pulses: Cell<Option<u8>>,
    clock_high: Cell<bool>,
    bit: Cell<bool>,
}

/// The world: its clock (the uptime the scripts read, set by the loop
/// before each step), the outputs the device drives, and the wires parts
/// share.
#[derive(Debug, Default)]
pub struct World {
    now_ms: Cell<u64>,
    buzzer: Cell<bool>,
    relay: Cell<bool>,
    hx711: Hx711Line,
}

impl World {
    /// Uptime 0.
    pub const fn new() -> Self {
        Self {
            now_ms: Cell::new(0),
            buzzer: Cell::new(false),
            relay: Cell::new(false),
            hx711: Hx711Line {
                latched: Cell::new(0),
                pulses: Cell::new(None),
                clock_high: Cell::new(false),
                bit: Cell::new(false),
            },
        }
    }
    /// Moves the world to `ms`.
    pub fn set_now(&self, ms: u64) {
        self.now_ms.set(ms);
    }
    /// Uptime, ms.
    pub fn now(&self) -> u64 {
        self.now_ms.get()
    }
    /// Whether the buzzer sounds.
    pub fn buzzer(&self) -> bool {
        self.buzzer.get()
    }
    /// Whether the relay is closed.
    pub fn relay(&self) -> bool {
        self.relay.get()
    }
}

// ------------------------------------------------------------------ gas

/// An ADS1115 on I²C whose AIN0−AIN1 carries the gas script (single-shot
/// conversions complete at once).
#[derive(Debug)]
pub struct GasAdc<'w> {
    world: &'w World,
    config: GasConfig,
    pointer: u8,
    config_reg: u16,
    conversion: i16,
}

impl<'w> GasAdc<'w> {
    /// The converter of a detector with `config`.
    pub fn new(world: &'w World, config: GasConfig) -> Self {
        Self {
            world,
            config,
            pointer: 0,
            config_reg: 0x8583,
            conversion: 0,
        }
    }

    fn convert(&mut self) {
        let now = self.world.now();
        let mux = (self.config_reg >> 12) & 7;
        let uv = match mux {
            // AIN0−AIN1: the pellistor bridge.
            0 => {
                let nominal = self.config.lel.calibration.invert(gas_lel(now));
                nominal * self.config.lel.uv_per_lel
            }
            // AIN2: the CO amplifier at its zero (clean air).
            6 => self.config.co.zero_uv as f32,
            _ => 0.0,
        };
        let fsr = match (self.config_reg >> 9) & 7 {
            0 => 6_144_000.0,
            1 => 4_096_000.0,
            2 => 2_048_000.0,
            3 => 1_024_000.0,
            4 => 512_000.0,
            _ => 256_000.0,
        };
        let code = (uv * 32_768.0 / fsr) as i32 + noise(now, mux as u8);
        self.conversion = code.clamp(-32_768, 32_767) as i16;
    }
}

impl i2c::ErrorType for GasAdc<'_> {
    type Error = i2c::ErrorKind;
}

impl I2c for GasAdc<'_> {
    fn transaction(
        &mut self,
        address: u8,
        ops: &mut [i2c::Operation<'_>],
    ) -> Result<(), Self::Error> {
        if address != self.config.address {
            return Err(i2c::ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        }
        for op in ops {
            match op {
                i2c::Operation::Write(bytes) => {
                    let Some((&pointer, data)) = bytes.split_first() else {
                        continue;
                    };
                    self.pointer = pointer & 3;
                    if self.pointer == 1 && data.len() >= 2 {
                        let v = u16::from_be_bytes([data[0], data[1]]);
                        self.config_reg = v | 0x8000;
                        if v & 0x8000 != 0 {
                            self.convert();
                        }
                    }
                }
                i2c::Operation::Read(buf) => {
                    let v = match self.pointer {
                        0 => self.conversion as u16,
                        1 => self.config_reg,
                        _ => 0,
                    };
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = v.to_be_bytes().get(i).copied().unwrap_or(0);
                    }
                }
            }
        }
        Ok(())
    }
}

// -------------------------------------------------------- water pressure

/// The pressure monitor's analog input: the pressure loop carries the
/// water script, the level loop a steady 5 m.
#[derive(Debug)]
pub struct WaterAdc<'w> {
    world: &'w World,
    config: PressureConfig,
}

/// Shunt voltage, µV, of a 4–20 mA transmitter reading `value`.
fn loop_uv(l: &LoopConfig, value: f32) -> i32 {
    let nominal = l.calibration.invert(value);
    let ma = 4.0 + 16.0 * (nominal - l.at_4ma) / (l.at_20ma - l.at_4ma);
    (ma * l.shunt_ohms * 1000.0) as i32
}

impl AnalogInput for WaterAdc<'_> {
    type Error = Infallible;
    fn read_microvolts(&mut self, channel: u8) -> Result<i32, Infallible> {
        let now = self.world.now();
        let p = &self.config.pressure;
        let uv = if channel == p.channel {
            loop_uv(p, water_mpa(now))
        } else if let Some(l) = self.config.level.filter(|l| l.channel == channel) {
            loop_uv(&l, 5.0)
        } else {
            0
        };
        Ok(uv + 60 * noise(now, channel))
    }
}

// ----------------------------------------------------------- electrical

/// The electrical monitor's analog input: the RMS converter carries the
/// residual-current script, the winding check reads an intact winding.
#[derive(Debug)]
pub struct ElectricalAdc<'w> {
    world: &'w World,
    config: ElectricalConfig,
}

impl AnalogInput for ElectricalAdc<'_> {
    type Error = Infallible;
    fn read_microvolts(&mut self, channel: u8) -> Result<i32, Infallible> {
        let now = self.world.now();
        let r = &self.config.residual;
        let uv = if channel == r.rms_channel {
            // mA = µV × turns / burden / 1000.
            let nominal = r.calibration.invert(residual_ma(now));
            (nominal * r.burden_ohms * 1000.0 / r.turns) as i32 + 10 * noise(now, channel)
        } else if channel == r.check_channel {
            // The bias across a ~40 Ω winding: tens of millivolts.
            20_000 + 100 * noise(now, channel)
        } else {
            0
        };
        Ok(uv)
    }
}

/// A MAX31865 with a PT100 on cable `cable`: configuration, threshold and
/// RTD registers, automatic conversion of the scripted temperature.
#[derive(Debug)]
pub struct Rtd<'w> {
    world: &'w World,
    cable: usize,
    probe: RtdConfig,
    regs: [u8; 8],
}

impl<'w> Rtd<'w> {
    /// Unconfigured, as after power-on.
    pub fn new(world: &'w World, cable: usize, probe: RtdConfig) -> Self {
        Self {
            world,
            cable,
            probe,
            regs: [0, 0, 0, 0xFF, 0xFF, 0, 0, 0],
        }
    }

    /// Latches a conversion into the RTD registers (bias on, automatic
    /// mode); the fault bit follows the thresholds, as on the part.
    fn convert(&mut self) {
        if self.regs[0] & 0xC0 != 0xC0 {
            return;
        }
        let now = self.world.now();
        let ohms = self.probe.resistance(cable_c(self.cable, now));
        let code = (i32::from(self.probe.code(ohms)) + noise(now, 10 + self.cable as u8))
            .clamp(0, 0x7FFF) as u16;
        let high = u16::from_be_bytes([self.regs[3], self.regs[4]]) >> 1;
        let low = u16::from_be_bytes([self.regs[5], self.regs[6]]) >> 1;
        if code >= high {
            self.regs[7] |= 0x80;
        }
        if code <= low {
            self.regs[7] |= 0x40;
        }
        let [h, l] = ((code << 1) | u16::from(self.regs[7] != 0)).to_be_bytes();
        self.regs[1] = h;
        self.regs[2] = l;
    }
}

impl spi::ErrorType for Rtd<'_> {
    type Error = Infallible;
}

impl SpiDevice for Rtd<'_> {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        // The first byte written is the address (bit 7 = write); the
        // address auto-increments over the data.
        let mut address: Option<usize> = None;
        let mut write = false;
        for op in ops {
            match op {
                Operation::Write(bytes) => {
                    for &b in bytes.iter() {
                        match address {
                            None => {
                                write = b & 0x80 != 0;
                                address = Some(usize::from(b & 7));
                                if !write && b & 7 == 1 {
                                    self.convert();
                                }
                            }
                            Some(a) => {
                                if write {
                                    match a & 7 {
                                        // D1 clears the fault status and self-clears.
                                        0 => {
                                            if b & 0x02 != 0 {
                                                self.regs[7] = 0;
                                            }
                                            self.regs[0] = b & !0x22;
                                        }
                                        r @ 3..=6 => self.regs[r] = b,
                                        _ => {}
                                    }
                                }
                                address = Some((a + 1) & 7);
                            }
                        }
                    }
                }
                Operation::Read(buf) => {
                    for b in buf.iter_mut() {
                        let a = address.unwrap_or(0) & 7;
                        *b = self.regs[a];
                        address = Some(a + 1);
                    }
                }
                Operation::Transfer(r, _) => r.fill(0),
                Operation::TransferInPlace(b) => b.fill(0),
                Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- crane

/// The crane's analog input: the anemometer's 4–20 mA loop.
#[derive(Debug)]
pub struct WindAdc<'w> {
    world: &'w World,
    wind: LoopConfig,
}

impl AnalogInput for WindAdc<'_> {
    type Error = Infallible;
    fn read_microvolts(&mut self, channel: u8) -> Result<i32, Infallible> {
        let now = self.world.now();
        if channel != self.wind.channel {
            return Ok(0);
        }
        Ok(loop_uv(&self.wind, wind_ms(now)) + 60 * noise(now, 20))
    }
}

/// The HX711's PD_SCK input (an output pin for the driver): the load pin's
/// bridge carries the load script.
#[derive(Debug)]
pub struct Hx711Clock<'w> {
    world: &'w World,
    counts_per_tonne: f32,
    zero_counts: i32,
}

/// The HX711's DOUT (an input pin for the driver).
#[derive(Debug)]
pub struct Hx711Data<'w> {
    world: &'w World,
}

impl digital::ErrorType for Hx711Clock<'_> {
    type Error = Infallible;
}

impl OutputPin for Hx711Clock<'_> {
    fn set_high(&mut self) -> Result<(), Infallible> {
        let line = &self.world.hx711;
        if !line.clock_high.get() {
            let n = match line.pulses.get() {
                None => {
                    // First pulse of a read: latch the conversion.
                    let now = self.world.now();
                    let code = (load_t(now) * self.counts_per_tonne) as i32
                        + self.zero_counts
                        + 20 * noise(now, 30);
                    line.latched
                        .set((code.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0xFF_FFFF);
                    0
                }
                Some(n) => n,
            };
            line.bit
                .set(n >= 24 || line.latched.get() >> (23 - n) & 1 == 1);
            line.pulses.set(if n >= 24 { None } else { Some(n + 1) });
        }
        line.clock_high.set(true);
        Ok(())
    }

    fn set_low(&mut self) -> Result<(), Infallible> {
        self.world.hx711.clock_high.set(false);
        Ok(())
    }
}

impl digital::ErrorType for Hx711Data<'_> {
    type Error = Infallible;
}

impl InputPin for Hx711Data<'_> {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        let line = &self.world.hx711;
        // Idle: a conversion is always ready at a 1 s sampling period.
        Ok((line.pulses.get().is_some() || line.clock_high.get()) && line.bit.get())
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}

/// What an SSI encoder measures.
#[derive(Debug, Clone, Copy)]
enum Axis {
    Radius,
    Height,
    Slew,
}

/// An SSI absolute encoder on the scripted axis.
#[derive(Debug)]
pub struct Encoder<'w> {
    world: &'w World,
    axis: Axis,
    config: EncoderConfig,
}

impl spi::ErrorType for Encoder<'_> {
    type Error = Infallible;
}

impl SpiDevice for Encoder<'_> {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        let now = self.world.now();
        let value = match self.axis {
            Axis::Radius => radius_m(now),
            Axis::Height => height_m(now),
            Axis::Slew => slew_deg(now),
        };
        let c = &self.config;
        let steps = c.calibration.invert(value) / c.units_per_count;
        // Nearest count (no `f32::round` without std).
        let steps = if steps < 0.0 {
            steps - 0.5
        } else {
            steps + 0.5
        };
        let count = i64::from(c.zero_count) + steps as i64;
        let bytes = c
            .ssi
            .encode(count.clamp(0, i64::from(u32::MAX)) as u32)
            .to_be_bytes();
        let mut at = 0;
        for op in ops {
            let buf: &mut [u8] = match op {
                Operation::Read(b) | Operation::TransferInPlace(b) | Operation::Transfer(b, _) => b,
                Operation::Write(_) | Operation::DelayNs(_) => continue,
            };
            for b in buf.iter_mut() {
                *b = bytes.get(at).copied().unwrap_or(0);
                at += 1;
            }
        }
        Ok(())
    }
}

/// An SCL3300 on the mast, speaking the off-frame protocol (each frame
/// carries the answer to the previous command).
#[derive(Debug)]
pub struct Inclinometer<'w> {
    world: &'w World,
    answer: u32,
    /// Status reads left before start-up completes after a reset.
    starting: u8,
}

impl Inclinometer<'_> {
    fn execute(&mut self, command: u32) -> u32 {
        let [op, dh, dl, crc] = command.to_be_bytes();
        if scl3300::crc8(&[op, dh, dl]) != crc {
            return response(op, scl3300::RS_ERROR, 0);
        }
        let rs = if self.starting > 0 {
            0
        } else {
            scl3300::RS_NORMAL
        };
        let now = self.world.now();
        let raw = |deg: f32, axis: u8| {
            (((deg * 16_384.0 / 90.0) as i32) + noise(now, axis)).clamp(-32_768, 32_767) as i16
                as u16
        };
        match command {
            cmd::SW_RESET => {
                self.starting = 1;
                response(op, 0, 0)
            }
            cmd::READ_STATUS => {
                self.starting = self.starting.saturating_sub(1);
                response(op, rs, 0)
            }
            cmd::READ_WHOAMI => response(op, rs, u16::from(scl3300::WHOAMI)),
            cmd::READ_ANG_X => response(op, rs, raw(mast_deg(now).0, 40)),
            cmd::READ_ANG_Y => response(op, rs, raw(mast_deg(now).1, 41)),
            _ => response(op, rs, u16::from_be_bytes([dh, dl])),
        }
    }
}

impl spi::ErrorType for Inclinometer<'_> {
    type Error = Infallible;
}

impl SpiDevice for Inclinometer<'_> {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        for op in ops {
            if let Operation::Transfer(rx, tx) = op {
                let mut command = [0u8; 4];
                for (c, t) in command.iter_mut().zip(tx.iter()) {
                    *c = *t;
                }
                for (r, a) in rx.iter_mut().zip(self.answer.to_be_bytes()) {
                    *r = a;
                }
                self.answer = self.execute(u32::from_be_bytes(command));
            }
        }
        Ok(())
    }
}

// -------------------------------------------------------------- outputs

/// Waits the board's time, not the world's (conversions complete at once).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoWait;

impl DelayNs for NoWait {
    fn delay_ns(&mut self, _: u32) {}
}

/// A buzzer or relay output: its state in the world.
#[derive(Debug, Clone, Copy)]
pub struct Output<'w> {
    world: &'w World,
    relay: bool,
}

impl<'w> Output<'w> {
    /// The buzzer.
    pub fn buzzer(world: &'w World) -> Self {
        Self {
            world,
            relay: false,
        }
    }
    /// The relay.
    pub fn relay(world: &'w World) -> Self {
        Self { world, relay: true }
    }
    fn set(&mut self, on: bool) {
        if self.relay {
            self.world.relay.set(on);
        } else {
            self.world.buzzer.set(on);
        }
    }
}

impl digital::ErrorType for Output<'_> {
    type Error = Infallible;
}

impl OutputPin for Output<'_> {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.set(true);
        Ok(())
    }
}

// --------------------------------------------------------- front ends

/// The gas detector's front end in the world.
pub type Gas<'w> = GasDetector<GasAdc<'w>, NoWait>;
/// The pressure monitor's front end in the world.
pub type Water<'w> = PressureMonitor<WaterAdc<'w>>;
/// The electrical-fire monitor's front end in the world.
pub type Electrical<'w> = ElectricalMonitor<ElectricalAdc<'w>, Rtd<'w>>;
/// The crane monitor's front end in the world.
pub type Crane<'w> =
    CraneMonitor<WindAdc<'w>, Hx711Clock<'w>, Hx711Data<'w>, Encoder<'w>, Inclinometer<'w>, NoWait>;

/// The gas detector on the scripted ADS1115.
pub fn gas(world: &World) -> Gas<'_> {
    let config = GasConfig::default();
    GasDetector::new(GasAdc::new(world, config), NoWait, config)
}

/// The pressure monitor on the scripted loops.
pub fn water(world: &World) -> Water<'_> {
    let config = PressureConfig::default();
    PressureMonitor::new(WaterAdc { world, config }, config)
}

/// The electrical-fire monitor: the transformer on the analog input, four
/// PT100s on their MAX31865s.
pub fn electrical(world: &World) -> Electrical<'_> {
    let config = ElectricalConfig::default();
    let probe = |i: usize| config.temps[i].map(|probe| Rtd::new(world, i, probe));
    ElectricalMonitor::new(
        ElectricalAdc { world, config },
        [probe(0), probe(1), probe(2), probe(3)],
        config,
    )
}

/// The crane monitor: load pin, three encoders, anemometer, inclinometer.
pub fn crane(world: &World) -> Crane<'_> {
    let config = CraneConfig::default();
    let encoder = |axis, config| Encoder {
        world,
        axis,
        config,
    };
    let buses = CraneBuses {
        adc: WindAdc {
            world,
            wind: config.wind,
        },
        load_clk: Hx711Clock {
            world,
            counts_per_tonne: config.load.counts_per_tonne,
            zero_counts: config.load.zero_counts,
        },
        load_dout: Hx711Data { world },
        radius: encoder(Axis::Radius, config.radius),
        height: encoder(Axis::Height, config.height),
        slew: encoder(Axis::Slew, config.slew),
        inclinometer: Inclinometer {
            world,
            answer: 0,
            starting: 1,
        },
    };
    CraneMonitor::new(buses, NoWait, config)
}

/// One alarm transition as the image prints it and the prediction lists
/// it: `T <ms> <rule> <level> <state>`.
pub fn transition_line(ms: u64, t: &Transition) -> heapless::String<96> {
    use core::fmt::Write as _;
    let mut s = heapless::String::new();
    let _ = write!(
        s,
        "T {ms} {} {} {}",
        t.rule,
        t.level.as_str(),
        t.state.as_str()
    );
    s
}
