//! The anquan-iot lab as a library: the Modbus server of virtual devices
//! ([`modbus`]), used by `anquan-sim modbus` and by the end-to-end tests.

pub mod modbus;
