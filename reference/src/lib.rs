//! anquan-iot reference images: the real firmware on an emulated MCU.
//!
//! * [`world`]: the scripted sensor world (part models on the buses) and
//!   the device ids; builds on the host too.
//! * [`app`]: the device loop every board runs: `Device::step` on the real
//!   drivers, the MQTT 3.1.1 client on a UART pipe, the Modbus RTU slave on
//!   another UART, the frames in the flash store; its state is one struct a
//!   board keeps in a static.
//! * [`predict`]: the alarms the firmware raises on that script, computed
//!   on the host with the same firmware and edge-rules code.
//! * `platform` (target only): QEMU's mps2-an386 (Cortex-M4F, also built
//!   for Cortex-M0+), and a RISC-V board for size measurement.
#![no_std]

pub mod app;
#[cfg(target_os = "none")]
pub mod platform;
pub mod world;

use anquan_edge_rules::{Transition, defaults};
use anquan_firmware::mqtt::NoTransport;
use anquan_firmware::{Device, DeviceConfig, Hal, Sensors};
use anquan_protocol::{DeviceKind, Id};

use world::{Output, World};

/// Runs `kind`'s scripted world on the host for `run_ms` of uptime (steps
/// every 10 ms, as often as the images step at least) and calls `on` with
/// every alarm transition and the uptime of its step.
pub fn predict(kind: DeviceKind, run_ms: u64, mut on: impl FnMut(u64, &Transition)) {
    let world = World::new();
    match kind {
        DeviceKind::Gas => predict_on(&world, world::gas(&world), run_ms, &mut on),
        DeviceKind::WaterPressure => predict_on(&world, world::water(&world), run_ms, &mut on),
        DeviceKind::Electrical => predict_on(&world, world::electrical(&world), run_ms, &mut on),
        DeviceKind::Crane => predict_on(&world, world::crane(&world), run_ms, &mut on),
        // No image, nothing to predict: a fire panel is not our firmware.
        DeviceKind::FirePanel => {}
    }
}

fn predict_on<S: Sensors>(
    world: &World,
    sensors: S,
    run_ms: u64,
    on: &mut impl FnMut(u64, &Transition),
) {
    let kind = sensors.kind();
    let (Ok(site), Ok(id)) = (Id::new(world::SITE), Id::new(world::device_id(kind))) else {
        return;
    };
    let hal = Hal::new(sensors)
        .with_buzzer(Output::buzzer(world))
        .with_relay(Output::relay(world));
    let Ok(mut device) =
        Device::with_rules(DeviceConfig::new(site, id), defaults::for_kind(kind), hal)
    else {
        return;
    };
    let mut now = 0;
    while now <= run_ms {
        world.set_now(now);
        device.step_observed(now, &mut NoTransport, |t| on(now, t));
        now += 10;
    }
}
