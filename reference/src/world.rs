//! The scripted world the reference images sense, and the host prediction
//! of the alarms it must raise.
//!
//! The same code runs inside the image (on the emulated MCU) and on the
//! host (the end-to-end tests' prediction): the script gives the physical
//! quantity at each whole second of uptime, the part models turn it into
//! the bytes a real part would put on its bus, and the real firmware
//! drivers read them.
//!
//! | kind | script | parts |
//! |---|---|---|
//! | `gas` | clean air (0.5 %LEL) for 20 s, then a leak rising 1.5 %LEL/s to 60 %LEL | ADS1115 register model on I²C (pellistor bridge on AIN0−AIN1, CO amplifier at its zero on AIN2) |
//! | `water_pressure` | 0.45 MPa for 20 s, the pump stops (0.12 MPa static head), a burst at 45 s (0.04 MPa) | two 4–20 mA loops across 250 Ω shunts on the analog input |
//! | `electrical`, `crane` | no parts fitted on the emulated buses: every SPI/GPIO/ADC read is 0 | the real drivers detect the dead buses and the device raises its fault alarm |

use core::cell::Cell;
use core::convert::Infallible;

use anquan_edge_rules::Transition;
use anquan_firmware::drivers::current_loop::LoopConfig;
use anquan_firmware::hal::AnalogInput;
use anquan_firmware::kinds::crane::{CraneBuses, CraneConfig, CraneMonitor};
use anquan_firmware::kinds::electrical::{ElectricalConfig, ElectricalMonitor};
use anquan_firmware::kinds::gas::{GasConfig, GasDetector};
use anquan_firmware::kinds::water::{PressureConfig, PressureMonitor};
use anquan_protocol::DeviceKind;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, InputPin, OutputPin};
use embedded_hal::i2c::{self, I2c, NoAcknowledgeSource};
use embedded_hal::spi::{self, SpiDevice};

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
    }
}

/// Combustible gas at the detector, %LEL, at uptime `ms`.
pub fn gas_lel(ms: u64) -> f32 {
    let s = (ms / 1000) as f32;
    if s < 20.0 {
        0.5
    } else {
        (0.5 + 1.5 * (s - 20.0)).min(60.0)
    }
}

/// Fire-water pressure, MPa, at uptime `ms`.
pub fn water_mpa(ms: u64) -> f32 {
    match ms / 1000 {
        0..20 => 0.45,
        20..45 => 0.12,
        _ => 0.04,
    }
}

/// Small deterministic front-end noise (−1, 0, +1 LSB) per second and input.
fn noise(ms: u64, input: u8) -> i32 {
    let x = (ms / 1000)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(input) * 0x6A09_E667);
    ((x >> 33) % 3) as i32 - 1
}

/// The world's clock: the uptime the scripts read (set by the loop before
/// each step).
#[derive(Debug, Default)]
pub struct World {
    now_ms: Cell<u64>,
    buzzer: Cell<bool>,
    relay: Cell<bool>,
}

impl World {
    /// Uptime 0.
    pub const fn new() -> Self {
        Self {
            now_ms: Cell::new(0),
            buzzer: Cell::new(false),
            relay: Cell::new(false),
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

/// The pressure monitor's analog input: the pressure loop carries the
/// water script, the level loop a steady 5 m.
#[derive(Debug)]
pub struct WaterAdc<'w> {
    world: &'w World,
    config: PressureConfig,
}

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

/// A bus with nothing fitted: SPI reads 0, pins read low, the ADC 0 V.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unfitted;

impl spi::ErrorType for Unfitted {
    type Error = Infallible;
}

impl SpiDevice for Unfitted {
    fn transaction(&mut self, ops: &mut [spi::Operation<'_, u8>]) -> Result<(), Infallible> {
        for op in ops {
            match op {
                spi::Operation::Read(b) => b.fill(0),
                spi::Operation::Transfer(r, _) => r.fill(0),
                spi::Operation::TransferInPlace(b) => b.fill(0),
                spi::Operation::Write(_) | spi::Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}

impl digital::ErrorType for Unfitted {
    type Error = Infallible;
}

impl InputPin for Unfitted {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(false)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(true)
    }
}

impl OutputPin for Unfitted {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl AnalogInput for Unfitted {
    type Error = Infallible;
    fn read_microvolts(&mut self, _: u8) -> Result<i32, Infallible> {
        Ok(0)
    }
}

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
}

impl digital::ErrorType for Output<'_> {
    type Error = Infallible;
}

impl OutputPin for Output<'_> {
    fn set_low(&mut self) -> Result<(), Infallible> {
        let c = if self.relay {
            &self.world.relay
        } else {
            &self.world.buzzer
        };
        c.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        let c = if self.relay {
            &self.world.relay
        } else {
            &self.world.buzzer
        };
        c.set(true);
        Ok(())
    }
}

/// The gas detector on the scripted ADS1115.
pub fn gas(world: &World) -> GasDetector<GasAdc<'_>, NoWait> {
    let config = GasConfig::default();
    GasDetector::new(GasAdc::new(world, config), NoWait, config)
}

/// The pressure monitor on the scripted loops.
pub fn water(world: &World) -> PressureMonitor<WaterAdc<'_>> {
    let config = PressureConfig::default();
    PressureMonitor::new(WaterAdc { world, config }, config)
}

/// The electrical-fire monitor on unfitted buses.
pub fn electrical() -> ElectricalMonitor<Unfitted, Unfitted> {
    ElectricalMonitor::new(
        Unfitted,
        [
            Some(Unfitted),
            Some(Unfitted),
            Some(Unfitted),
            Some(Unfitted),
        ],
        ElectricalConfig::default(),
    )
}

/// The crane monitor on unfitted buses.
pub fn crane() -> CraneMonitor<Unfitted, Unfitted, Unfitted, Unfitted, Unfitted, NoWait> {
    CraneMonitor::new(
        CraneBuses {
            adc: Unfitted,
            load_clk: Unfitted,
            load_dout: Unfitted,
            radius: Unfitted,
            height: Unfitted,
            slew: Unfitted,
            inclinometer: Unfitted,
        },
        NoWait,
        CraneConfig::default(),
    )
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
