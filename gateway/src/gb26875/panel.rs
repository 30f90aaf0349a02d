//! What a transmission device has told us about its building: a pure
//! state machine over the information objects of its frames (no I/O, no
//! clock), from which each frame becomes one `fire_panel` reading.
//!
//! The standard reports *changes* (a detector went into fire alarm, a
//! module came back to normal); the edge rules judge *states* (how many
//! points are in fire now). [`Panel`] keeps the states in between: the
//! components not in normal operation, the flags a system or the device
//! raised without naming a component, and the device's own faults.
//!
//! How the objects move it (the choices where the standard leaves room are
//! marked; they follow what a duty officer at a panel would conclude):
//!
//! * Type 2, a component's state: the component is in fire, fault (its own
//!   or its power), isolated and/or supervision as its state word says; a
//!   word with none of these takes it off the list. Test mode (bit 0 clear)
//!   is not an excuse: the standard's own fire alarm example has bit 0
//!   clear, so a fire alarm counts whatever bit 0 says.
//! * Type 1, a system's state: the word is the whole system's state. A
//!   flag set with no component of the system in that state counts as one
//!   point (a panel that reports "fire" without naming the detector); a
//!   flag clear clears it from every component of the system (the panel
//!   says there is no fire, whatever we heard before). The reset bit acts
//!   as a reset (below).
//! * Type 4, an operation on a panel: reset (复位) and alarm cleared (警情
//!   消除) clear the system's fire, fault and supervision states (a panel
//!   announces again what is still there after a reset); isolations
//!   survive a reset, as they do on the panel. Manual alarm (手动报警) is
//!   a fire.
//! * Type 21, the device's own state: its fire bit counts as one fire
//!   point when no component is in fire; power and line failures become
//!   device faults. Type 24: the device's manual alarm is a fire, its
//!   reset clears the device's own fire flag.
//! * Analog values, versions, clocks and undecoded types change nothing.

use std::collections::BTreeMap;

use anquan_protocol::gb26875::{
    ComponentState, DeviceOperation, DeviceState, Object, SystemId, SystemOperation, SystemState,
};
use anquan_protocol::{Fault, FaultCode, Faults, Metric, Readings};
use serde::{Deserialize, Serialize};

/// The largest count a reading carries (the metric's range); a panel with
/// more points in one state reports this many, which alarms the same.
pub const MAX_COUNT: u32 = 3_000;

/// Most components remembered per device: a large panel has a few thousand
/// points; a device that reports more distinct abnormal components than
/// this is refused further ones (counted) rather than growing without end.
pub const MAX_COMPONENTS: usize = 20_000;

/// The four states a point can be in, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct States(u8);

impl States {
    const FIRE: u8 = 1;
    const FAULT: u8 = 2;
    const ISOLATED: u8 = 4;
    const SUPERVISION: u8 = 8;
    /// The four, in the order of the readings.
    const ALL: [u8; 4] = [Self::FIRE, Self::FAULT, Self::ISOLATED, Self::SUPERVISION];
    /// Cleared by a reset: everything but isolation.
    const RESETTABLE: u8 = Self::FIRE | Self::FAULT | Self::SUPERVISION;

    fn of_component(s: ComponentState) -> Self {
        let mut b = 0;
        if s.fire_alarm() {
            b |= Self::FIRE;
        }
        if s.fault() || s.power_fault() {
            b |= Self::FAULT;
        }
        if s.isolated() {
            b |= Self::ISOLATED;
        }
        if s.supervision() {
            b |= Self::SUPERVISION;
        }
        Self(b)
    }

    fn of_system(s: SystemState) -> Self {
        let mut b = 0;
        if s.fire_alarm() {
            b |= Self::FIRE;
        }
        if s.fault() || s.main_power_fault() || s.backup_power_fault() || s.bus_fault() {
            b |= Self::FAULT;
        }
        if s.isolated() {
            b |= Self::ISOLATED;
        }
        if s.supervision() {
            b |= Self::SUPERVISION;
        }
        Self(b)
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// A system on the device: its type and address.
type SystemKey = (u8, u8);

fn key(s: SystemId) -> SystemKey {
    (s.kind, s.address)
}

/// One device's building, as far as its frames told.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Panel {
    /// Components not in normal operation: `[system type, system address,
    /// component address]` → states.
    #[serde(with = "pairs")]
    components: BTreeMap<(u8, u8, u32), States>,
    /// Flags a system raised (type 1 state words, manual alarms).
    #[serde(with = "pairs")]
    systems: BTreeMap<SystemKey, States>,
    /// The device's own fire flag (its state word, its manual alarm).
    device_fire: bool,
    /// The device's own state word, for its faults.
    device_state: u8,
}

/// What [`Panel::apply`] did with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state moved (or was confirmed) by it.
    State,
    /// Nothing to keep (versions, clocks, analog values, unknown types).
    Ignored,
    /// A new component beyond [`MAX_COMPONENTS`]: not remembered.
    Full,
}

impl Panel {
    /// Moves the state by one information object.
    pub fn apply(&mut self, obj: &Object<'_>) -> Applied {
        match *obj {
            Object::ComponentStatus {
                component, state, ..
            } => {
                let k = (
                    component.system.kind,
                    component.system.address,
                    component.address.0,
                );
                let s = States::of_component(state);
                if s == States::default() {
                    self.components.remove(&k);
                } else if self.components.len() >= MAX_COMPONENTS
                    && !self.components.contains_key(&k)
                {
                    return Applied::Full;
                } else {
                    self.components.insert(k, s);
                }
                Applied::State
            }
            Object::SystemStatus { system, state, .. } => {
                if state.reset() {
                    self.reset(system);
                }
                let s = States::of_system(state);
                let sys = key(system);
                for (k, c) in self
                    .components
                    .range_mut((sys.0, sys.1, 0)..=(sys.0, sys.1, u32::MAX))
                {
                    debug_assert_eq!((k.0, k.1), sys);
                    c.0 &= s.0;
                }
                self.components.retain(|_, c| c.0 != 0);
                self.set_system(sys, s);
                Applied::State
            }
            Object::SystemOperation {
                system, operation, ..
            } => {
                if operation.reset() || operation.alarm_cleared() {
                    self.reset(system);
                }
                if operation.manual_alarm() {
                    let sys = key(system);
                    let s = self.systems.get(&sys).copied().unwrap_or_default();
                    self.set_system(sys, States(s.0 | States::FIRE));
                }
                if operation.contains(SystemOperation::RESET)
                    || operation.alarm_cleared()
                    || operation.manual_alarm()
                {
                    Applied::State
                } else {
                    Applied::Ignored
                }
            }
            Object::DeviceStatus { state, .. } => {
                self.device_state = state.bits();
                self.device_fire = state.fire_alarm();
                Applied::State
            }
            Object::DeviceOperation { operation, .. } => {
                if operation.contains(DeviceOperation::RESET) || operation.alarm_cleared() {
                    self.device_fire = false;
                }
                if operation.manual_alarm() {
                    self.device_fire = true;
                }
                if operation.reset() || operation.alarm_cleared() || operation.manual_alarm() {
                    Applied::State
                } else {
                    Applied::Ignored
                }
            }
            Object::AnalogValue { .. }
            | Object::SystemSoftwareVersion { .. }
            | Object::SystemTime { .. }
            | Object::DeviceSoftwareVersion { .. }
            | Object::DeviceTime { .. }
            | Object::Unknown { .. } => Applied::Ignored,
        }
    }

    /// A panel reset: fire, fault and supervision leave the system's
    /// components and flags; isolations stay.
    fn reset(&mut self, system: SystemId) {
        let sys = key(system);
        self.components.retain(|k, c| {
            if (k.0, k.1) == sys {
                c.0 &= !States::RESETTABLE;
            }
            c.0 != 0
        });
        if let Some(s) = self.systems.get_mut(&sys) {
            s.0 &= !States::RESETTABLE;
        }
        self.systems.retain(|_, s| s.0 != 0);
    }

    fn set_system(&mut self, sys: SystemKey, s: States) {
        if s == States::default() {
            self.systems.remove(&sys);
        } else {
            self.systems.insert(sys, s);
        }
    }

    /// Points in each state ([`States::ALL`] order), in one pass: the
    /// components in it, plus one for each system flag with no component
    /// of its system in that state (and the device's fire flag when no
    /// point is in fire at all).
    fn counts(&self) -> [u32; 4] {
        let mut n = [0u32; 4];
        // Per system, the states some component of it is in.
        let mut named: BTreeMap<SystemKey, u8> = BTreeMap::new();
        for (k, s) in &self.components {
            for (c, bit) in n.iter_mut().zip(States::ALL) {
                *c += u32::from(s.has(bit));
            }
            *named.entry((k.0, k.1)).or_default() |= s.0;
        }
        for (sys, s) in &self.systems {
            let named = named.get(sys).copied().unwrap_or_default();
            for (c, bit) in n.iter_mut().zip(States::ALL) {
                *c += u32::from(s.has(bit) && named & bit == 0);
            }
        }
        if self.device_fire && n[0] == 0 {
            n[0] = 1;
        }
        n
    }

    /// The reading: the four counts, at most [`MAX_COUNT`] each.
    pub fn readings(&self) -> Readings {
        let metrics = [
            Metric::FirePoints,
            Metric::FaultPoints,
            Metric::IsolatedPoints,
            Metric::SupervisionPoints,
        ];
        metrics
            .into_iter()
            .zip(self.counts())
            .map(|(m, n)| (m, n.min(MAX_COUNT) as f32))
            .collect()
    }

    /// The device's own faults: mains or backup power (`power`), its line
    /// to the panel or to us, or an unspecified fault (`comm`: what fails
    /// in a transmission device is its links).
    pub fn faults(&self) -> Faults {
        let s = DeviceState(self.device_state);
        let mut f = Faults::new();
        if s.main_power_fault() || s.backup_power_fault() {
            let _ = f.push(Fault::device(FaultCode::Power));
        }
        if s.panel_link_fault() || s.centre_link_fault() || s.fault() {
            let _ = f.push(Fault::device(FaultCode::Comm));
        }
        f
    }
}

/// A map with tuple keys as a JSON list of `[key, value]` pairs (JSON
/// object keys are strings only).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use anquan_protocol::gb26875::{ComponentAddress, ComponentId, Description, TimeTag};

    use super::*;

    const FAS: SystemId = SystemId {
        kind: 1,
        address: 1,
    };

    fn t() -> TimeTag {
        TimeTag::new(26, 12, 6, 10, 0, 0).unwrap()
    }

    fn comp(point: u16, state: ComponentState) -> Object<'static> {
        Object::ComponentStatus {
            component: ComponentId {
                system: FAS,
                kind: 40,
                address: ComponentAddress::new(1, point),
            },
            state,
            description: Description::new(b"3F"),
            time: t(),
        }
    }

    fn counts(p: &Panel) -> [f32; 4] {
        let r = p.readings();
        [
            Metric::FirePoints,
            Metric::FaultPoints,
            Metric::IsolatedPoints,
            Metric::SupervisionPoints,
        ]
        .map(|m| r.get(m).unwrap())
    }

    #[test]
    fn components_count_and_restore() {
        let mut p = Panel::default();
        assert_eq!(counts(&p), [0.0; 4]);
        // The standard's example: fire alarm with bit 0 clear still counts.
        p.apply(&comp(2, ComponentState(0x0002)));
        p.apply(&comp(
            3,
            ComponentState::NORMAL | ComponentState::FIRE_ALARM,
        ));
        p.apply(&comp(
            7,
            ComponentState::NORMAL | ComponentState::POWER_FAULT,
        ));
        p.apply(&comp(8, ComponentState::NORMAL | ComponentState::ISOLATED));
        assert_eq!(counts(&p), [2.0, 1.0, 1.0, 0.0]);
        // Repeated frames (a device retrying) change nothing.
        p.apply(&comp(
            3,
            ComponentState::NORMAL | ComponentState::FIRE_ALARM,
        ));
        assert_eq!(counts(&p), [2.0, 1.0, 1.0, 0.0]);
        p.apply(&comp(7, ComponentState::NORMAL));
        assert_eq!(counts(&p), [2.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn reset_clears_all_but_isolation() {
        let mut p = Panel::default();
        p.apply(&comp(2, ComponentState::FIRE_ALARM));
        p.apply(&comp(4, ComponentState::SUPERVISION));
        p.apply(&comp(8, ComponentState::ISOLATED | ComponentState::FAULT));
        let reset = Object::SystemOperation {
            system: FAS,
            operation: SystemOperation::RESET,
            operator: 1,
            time: t(),
        };
        assert_eq!(p.apply(&reset), Applied::State);
        assert_eq!(counts(&p), [0.0, 0.0, 1.0, 0.0]);
        // Another system's reset leaves this one alone.
        p.apply(&comp(2, ComponentState::FIRE_ALARM));
        let other = Object::SystemOperation {
            system: SystemId {
                kind: 1,
                address: 2,
            },
            operation: SystemOperation::RESET,
            operator: 1,
            time: t(),
        };
        p.apply(&other);
        assert_eq!(counts(&p)[0], 1.0);
        // The state word's reset bit does the same (the word still says
        // which states remain).
        let word = Object::SystemStatus {
            system: FAS,
            state: SystemState::NORMAL | SystemState::RESET | SystemState::ISOLATED,
            time: t(),
        };
        p.apply(&word);
        assert_eq!(counts(&p), [0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn system_flags_without_a_component_count_one() {
        let mut p = Panel::default();
        let word = |state| Object::SystemStatus {
            system: FAS,
            state,
            time: t(),
        };
        p.apply(&word(SystemState::NORMAL | SystemState::FIRE_ALARM));
        assert_eq!(counts(&p)[0], 1.0);
        // Named components replace the anonymous one.
        p.apply(&comp(2, ComponentState::FIRE_ALARM));
        p.apply(&comp(3, ComponentState::FIRE_ALARM));
        assert_eq!(counts(&p)[0], 2.0);
        // A word without fire says there is none, whatever we heard.
        p.apply(&word(SystemState::NORMAL | SystemState::MAIN_POWER_FAULT));
        assert_eq!(counts(&p), [0.0, 1.0, 0.0, 0.0]);
        p.apply(&word(SystemState::NORMAL));
        assert_eq!(counts(&p), [0.0; 4]);
        assert_eq!(p, Panel::default());
    }

    #[test]
    fn manual_alarms_and_the_device_state() {
        let mut p = Panel::default();
        p.apply(&Object::DeviceOperation {
            operation: DeviceOperation::MANUAL_ALARM,
            operator: 0,
            time: t(),
        });
        assert_eq!(counts(&p)[0], 1.0);
        p.apply(&Object::DeviceOperation {
            operation: DeviceOperation::RESET,
            operator: 0,
            time: t(),
        });
        assert_eq!(counts(&p)[0], 0.0);
        p.apply(&Object::DeviceStatus {
            state: DeviceState::NORMAL | DeviceState::MAIN_POWER_FAULT,
            time: t(),
        });
        assert_eq!(p.faults().as_slice(), [Fault::device(FaultCode::Power)]);
        p.apply(&Object::DeviceStatus {
            state: DeviceState::NORMAL | DeviceState::PANEL_LINK_FAULT | DeviceState::FIRE_ALARM,
            time: t(),
        });
        assert_eq!(p.faults().as_slice(), [Fault::device(FaultCode::Comm)]);
        assert_eq!(counts(&p)[0], 1.0);
        p.apply(&Object::DeviceStatus {
            state: DeviceState::NORMAL,
            time: t(),
        });
        assert!(p.faults().is_empty());
        assert_eq!(counts(&p)[0], 0.0);
        let op = Object::SystemOperation {
            system: FAS,
            operation: SystemOperation::MANUAL_ALARM,
            operator: 2,
            time: t(),
        };
        p.apply(&op);
        assert_eq!(counts(&p)[0], 1.0);
        let silence = Object::SystemOperation {
            system: FAS,
            operation: SystemOperation::SILENCE,
            operator: 2,
            time: t(),
        };
        assert_eq!(p.apply(&silence), Applied::Ignored);
        assert_eq!(counts(&p)[0], 1.0);
    }

    #[test]
    fn components_are_bounded_and_counts_capped() {
        let mut p = Panel::default();
        for i in 0..MAX_COMPONENTS as u32 {
            p.components.insert((1, 1, i), States(States::FAULT));
        }
        assert_eq!(
            p.apply(&comp(u16::MAX, ComponentState::FAULT)),
            Applied::Full
        );
        // A known component still moves; the count is capped.
        assert_eq!(p.apply(&comp(0, ComponentState::NORMAL)), Applied::State);
        assert_eq!(counts(&p)[1], MAX_COUNT as f32);
    }

    #[test]
    fn survives_a_json_round_trip() {
        let mut p = Panel::default();
        p.apply(&comp(2, ComponentState::FIRE_ALARM));
        p.apply(&Object::DeviceStatus {
            state: DeviceState::NORMAL | DeviceState::BACKUP_POWER_FAULT,
            time: t(),
        });
        let back: Panel = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
