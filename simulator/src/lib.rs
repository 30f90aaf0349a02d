//! The anquan-iot lab as a library: virtual devices on the firmware code
//! ([`device`]), their physics ([`models`]), scenario files ([`scenario`]),
//! running a scenario against a gateway ([`run`]) and checking the alarms
//! that came out against the expected timeline ([`verify`]).

pub mod device;
pub mod load;
pub mod models;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod verify;
