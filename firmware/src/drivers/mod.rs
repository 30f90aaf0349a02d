//! Part drivers over the embedded-hal 1.0 traits. Each module names the part
//! it drives and the datasheet behaviour it relies on; the device kinds in
//! [`crate::kinds`] combine them into sensors.
//!
//! | module | part | bus |
//! |---|---|---|
//! | [`ads1115`] | TI ADS1115 16-bit ΔΣ ADC | I²C |
//! | [`max31865`] | Analog Devices (Maxim) MAX31865 RTD-to-digital converter | SPI |
//! | [`hx711`] | Avia HX711 24-bit load-cell ADC | two GPIOs (PD_SCK out, DOUT in) |
//! | [`ssi`] | SSI absolute multi-turn encoders (Kübler Sendix, Hengstler AC58 class) | SPI (clock + data in) |
//! | [`scl3300`] | Murata SCL3300-D01 3-axis inclinometer | SPI |
//! | [`current_loop`] | any 2-wire 4–20 mA transmitter, NAMUR NE 43 signalling | [`crate::hal::AnalogInput`] |

pub mod ads1115;
pub mod current_loop;
pub mod hx711;
pub mod max31865;
pub mod scl3300;
pub mod ssi;
