//! The anquan-iot lab as a library: virtual devices on the firmware code
//! ([`device`]), their physics ([`models`]), scenario files ([`scenario`]),
//! running a scenario against a gateway ([`run`]), checking the alarms
//! that came out against the expected timeline ([`verify`]), load
//! ([`load`]), the Modbus server of virtual devices ([`modbus`]), used
//! by `anquan-sim modbus` and by the end-to-end tests, and a GB/T 26875.3
//! fire alarm transmission device ([`fire_panel`]).

pub mod budget;
pub mod device;
pub mod dtu;
pub mod fire_panel;
pub mod judge;
pub mod load;
pub mod modbus;
pub mod models;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod verify;
