//! The application data unit (应用数据单元, standard 7 and 8): a type flag
//! (类型标志), an object count (信息对象数目), then that many information
//! objects of that type, each a fixed-size body and, for most types, the
//! time tag of the event.
//!
//! | type | object | bytes |
//! |---|---|---|
//! | 1 | system state: system type, address, state (2) + time | 10 |
//! | 2 | component state: system type, address, component type, address (4), state (2), description (31) + time | 46 |
//! | 3 | analog value: system type, address, component type, address (4), analog type, value (i16) + time | 16 |
//! | 4 | operation on the panel: system type, address, operation, operator + time | 10 |
//! | 5 | panel software version: system type, address, major, minor | 4 |
//! | 8 | panel clock: system type, address + time | 8 |
//! | 21 | device state + time | 7 |
//! | 24 | operation on the device: operation, operator + time | 8 |
//! | 25 | device software version: major, minor | 2 |
//! | 28 | device clock: time | 6 |
//!
//! Other types (6, 7 and 26 carry length-prefixed or configuration data;
//! 61–91 are the centre's queries and commands) are not decoded: the
//! iterator hands their bytes over as [`Object::Unknown`] and stops, since
//! it cannot know where one object ends.

use super::bytes::{Reader, Writer};
use super::flags::{ComponentState, DeviceOperation, DeviceState, SystemOperation, SystemState};
use super::{Gb26875Error, MAX_ADU_LEN, TimeTag};

/// Length of the component description (部件说明).
pub const DESCRIPTION_LEN: usize = 31;

/// A fire protection system: its type (系统类型标志, 1 = fire alarm
/// system, 10 = linkage controller, …) and its address (系统地址).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SystemId {
    /// 系统类型标志.
    pub kind: u8,
    /// 系统地址, set on the system.
    pub address: u8,
}

/// A component address (部件地址): four bytes, low byte first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ComponentAddress(pub u32);

impl ComponentAddress {
    /// The zone (区号): the low two bytes.
    pub const fn zone(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }

    /// The position in the zone (位号): the high two bytes.
    pub const fn point(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The address of `point` in `zone`.
    pub const fn new(zone: u16, point: u16) -> Self {
        Self((point as u32) << 16 | zone as u32)
    }
}

/// A component of a system: detector, manual call point, module…
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ComponentId {
    /// The system it belongs to.
    pub system: SystemId,
    /// 部件类型 (40 = smoke detector, 23 = manual call point, …).
    pub kind: u8,
    /// 部件地址.
    pub address: ComponentAddress,
}

/// A component description: 31 bytes of GB 18030 text, padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Description(pub [u8; DESCRIPTION_LEN]);

impl Description {
    /// `text` (GB 18030 or ASCII bytes) cut to 31 bytes and padded with
    /// zero bytes. Cutting may split a multi-byte character; keep texts
    /// short enough.
    pub fn new(text: &[u8]) -> Self {
        let mut b = [0u8; DESCRIPTION_LEN];
        for (dst, src) in b.iter_mut().zip(text) {
            *dst = *src;
        }
        Self(b)
    }

    /// The text bytes without the trailing padding (zero bytes and spaces).
    /// Still GB 18030: decoding it needs tables this `no_std` crate does
    /// not carry; the gateway decodes.
    pub fn trimmed(&self) -> &[u8] {
        let end = self
            .0
            .iter()
            .rposition(|&b| b != 0 && b != b' ')
            .map_or(0, |i| i + 1);
        self.0.get(..end).unwrap_or_default()
    }
}

impl Default for Description {
    fn default() -> Self {
        Self([0; DESCRIPTION_LEN])
    }
}

/// One information object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object<'a> {
    /// Type 1 上传建筑消防设施系统状态: a system's state changed.
    SystemStatus {
        /// Which system.
        system: SystemId,
        /// Its state.
        state: SystemState,
        /// When it changed.
        time: TimeTag,
    },
    /// Type 2 上传建筑消防设施部件运行状态: a component's state changed —
    /// the fire alarm of a detector comes as this.
    ComponentStatus {
        /// Which component.
        component: ComponentId,
        /// Its state.
        state: ComponentState,
        /// Its description (location text).
        description: Description,
        /// When it changed.
        time: TimeTag,
    },
    /// Type 3 上传建筑消防设施部件模拟量值: a measured value.
    AnalogValue {
        /// Which component.
        component: ComponentId,
        /// 模拟量类型 (3 = temperature in 0.1 °C, 6 = gas in 0.1 %LEL, …).
        kind: u8,
        /// 模拟量值, in the unit of `kind`.
        value: i16,
        /// When it was sampled.
        time: TimeTag,
    },
    /// Type 4 上传建筑消防设施操作信息: an operator acted on a panel.
    SystemOperation {
        /// Which system.
        system: SystemId,
        /// What was done.
        operation: SystemOperation,
        /// 操作员编号.
        operator: u8,
        /// When.
        time: TimeTag,
    },
    /// Type 5 上传建筑消防设施软件版本.
    SystemSoftwareVersion {
        /// Which system.
        system: SystemId,
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// Type 8 上传建筑消防设施系统时间: the panel's clock.
    SystemTime {
        /// Which system.
        system: SystemId,
        /// Its clock.
        time: TimeTag,
    },
    /// Type 21 上传用户信息传输装置运行状态: the device's own state.
    DeviceStatus {
        /// Its state.
        state: DeviceState,
        /// When it changed.
        time: TimeTag,
    },
    /// Type 24 上传用户信息传输装置操作信息: an operator acted on the device.
    DeviceOperation {
        /// What was done.
        operation: DeviceOperation,
        /// 操作员编号.
        operator: u8,
        /// When.
        time: TimeTag,
    },
    /// Type 25 上传用户信息传输装置软件版本.
    DeviceSoftwareVersion {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// Type 28 上传用户信息传输装置系统时间: the device's clock.
    DeviceTime {
        /// Its clock.
        time: TimeTag,
    },
    /// A type not decoded here: the count and every remaining byte of the
    /// data unit. Always the last item the iterator yields.
    Unknown {
        /// The type flag.
        type_code: u8,
        /// The declared number of objects.
        count: u8,
        /// The objects' bytes, undecoded.
        data: &'a [u8],
    },
}

impl<'a> Object<'a> {
    /// The type flag (类型标志) of a data unit holding this object.
    pub const fn type_code(&self) -> u8 {
        match self {
            Self::SystemStatus { .. } => 1,
            Self::ComponentStatus { .. } => 2,
            Self::AnalogValue { .. } => 3,
            Self::SystemOperation { .. } => 4,
            Self::SystemSoftwareVersion { .. } => 5,
            Self::SystemTime { .. } => 8,
            Self::DeviceStatus { .. } => 21,
            Self::DeviceOperation { .. } => 24,
            Self::DeviceSoftwareVersion { .. } => 25,
            Self::DeviceTime { .. } => 28,
            Self::Unknown { type_code, .. } => *type_code,
        }
    }

    /// Reads one object of `type_code`; `None` when the bytes run out.
    /// An unknown type takes all of `r`.
    fn read(type_code: u8, count: u8, r: &mut Reader<'a>) -> Option<Result<Self, Gb26875Error>> {
        fn system(r: &mut Reader<'_>) -> Option<SystemId> {
            Some(SystemId {
                kind: r.u8()?,
                address: r.u8()?,
            })
        }
        fn component(r: &mut Reader<'_>) -> Option<ComponentId> {
            Some(ComponentId {
                system: system(r)?,
                kind: r.u8()?,
                address: ComponentAddress(r.u32_le()?),
            })
        }
        macro_rules! time {
            () => {
                match TimeTag::read(r)? {
                    Ok(t) => t,
                    Err(e) => return Some(Err(e)),
                }
            };
        }
        let obj = match type_code {
            1 => {
                let system = system(r)?;
                let state = SystemState(r.u16_le()?);
                Self::SystemStatus {
                    system,
                    state,
                    time: time!(),
                }
            }
            2 => {
                let component = component(r)?;
                let state = ComponentState(r.u16_le()?);
                let description = Description(r.array::<DESCRIPTION_LEN>()?);
                Self::ComponentStatus {
                    component,
                    state,
                    description,
                    time: time!(),
                }
            }
            3 => {
                let component = component(r)?;
                let kind = r.u8()?;
                let value = i16::from_le_bytes(r.array::<2>()?);
                Self::AnalogValue {
                    component,
                    kind,
                    value,
                    time: time!(),
                }
            }
            4 => {
                let system = system(r)?;
                let operation = SystemOperation(r.u8()?);
                let operator = r.u8()?;
                Self::SystemOperation {
                    system,
                    operation,
                    operator,
                    time: time!(),
                }
            }
            5 => Self::SystemSoftwareVersion {
                system: system(r)?,
                major: r.u8()?,
                minor: r.u8()?,
            },
            8 => {
                let system = system(r)?;
                Self::SystemTime {
                    system,
                    time: time!(),
                }
            }
            21 => {
                let state = DeviceState(r.u8()?);
                Self::DeviceStatus {
                    state,
                    time: time!(),
                }
            }
            24 => {
                let operation = DeviceOperation(r.u8()?);
                let operator = r.u8()?;
                Self::DeviceOperation {
                    operation,
                    operator,
                    time: time!(),
                }
            }
            25 => Self::DeviceSoftwareVersion {
                major: r.u8()?,
                minor: r.u8()?,
            },
            28 => Self::DeviceTime { time: time!() },
            type_code => Self::Unknown {
                type_code,
                count,
                data: r.take(r.rest().len())?,
            },
        };
        Some(Ok(obj))
    }

    /// Writes the object's bytes (not the type flag or count).
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Gb26875Error> {
        fn system(w: &mut Writer<'_>, s: SystemId) -> Result<(), Gb26875Error> {
            w.put(&[s.kind, s.address])
        }
        fn component(w: &mut Writer<'_>, c: ComponentId) -> Result<(), Gb26875Error> {
            system(w, c.system)?;
            w.u8(c.kind)?;
            w.u32_le(c.address.0)
        }
        match *self {
            Self::SystemStatus {
                system: s,
                state,
                time,
            } => {
                system(w, s)?;
                w.u16_le(state.0)?;
                time.write(w)
            }
            Self::ComponentStatus {
                component: c,
                state,
                description,
                time,
            } => {
                component(w, c)?;
                w.u16_le(state.0)?;
                w.put(&description.0)?;
                time.write(w)
            }
            Self::AnalogValue {
                component: c,
                kind,
                value,
                time,
            } => {
                component(w, c)?;
                w.u8(kind)?;
                w.put(&value.to_le_bytes())?;
                time.write(w)
            }
            Self::SystemOperation {
                system: s,
                operation,
                operator,
                time,
            } => {
                system(w, s)?;
                w.put(&[operation.0, operator])?;
                time.write(w)
            }
            Self::SystemSoftwareVersion {
                system: s,
                major,
                minor,
            } => {
                system(w, s)?;
                w.put(&[major, minor])
            }
            Self::SystemTime { system: s, time } => {
                system(w, s)?;
                time.write(w)
            }
            Self::DeviceStatus { state, time } => {
                w.u8(state.0)?;
                time.write(w)
            }
            Self::DeviceOperation {
                operation,
                operator,
                time,
            } => {
                w.put(&[operation.0, operator])?;
                time.write(w)
            }
            Self::DeviceSoftwareVersion { major, minor } => w.put(&[major, minor]),
            Self::DeviceTime { time } => time.write(w),
            Self::Unknown { data, .. } => w.put(data),
        }
    }

    /// How many objects this stands for in the count byte.
    const fn count(&self) -> u8 {
        match self {
            Self::Unknown { count, .. } => *count,
            _ => 1,
        }
    }
}

/// Iterates the information objects of a data unit, checking each. Yields
/// `Err` once and stops at the first problem: an object cut short
/// ([`Gb26875Error::TruncatedObject`]), a bad time tag, or bytes after the
/// declared count ([`Gb26875Error::TrailingData`]). An empty data unit (the
/// heartbeat, confirm, deny) yields nothing.
#[derive(Debug, Clone)]
pub struct Objects<'a> {
    type_code: Option<u8>,
    remaining: u8,
    reader: Reader<'a>,
    truncated_head: bool,
    done: bool,
}

impl<'a> Objects<'a> {
    /// The objects of `adu`, the application data unit of a frame.
    pub fn new(adu: &'a [u8]) -> Self {
        let (type_code, remaining, rest, truncated_head) = match adu {
            [] => (None, 0, &[][..], false),
            [t] => (Some(*t), 0, &[][..], true),
            [t, n, rest @ ..] => (Some(*t), *n, rest, false),
        };
        Self {
            type_code,
            remaining,
            reader: Reader::new(rest),
            truncated_head,
            done: type_code.is_none(),
        }
    }

    /// The data unit's type flag, `None` for an empty data unit.
    pub const fn type_code(&self) -> Option<u8> {
        self.type_code
    }

    fn fail(&mut self, e: Gb26875Error) -> Option<Result<Object<'a>, Gb26875Error>> {
        self.done = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for Objects<'a> {
    type Item = Result<Object<'a>, Gb26875Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let type_code = self.type_code.unwrap_or_default();
        if self.truncated_head {
            return self.fail(Gb26875Error::TruncatedObject { type_code });
        }
        if self.remaining == 0 {
            if self.reader.rest().is_empty() {
                self.done = true;
                return None;
            }
            return self.fail(Gb26875Error::TrailingData { type_code });
        }
        match Object::read(type_code, self.remaining, &mut self.reader) {
            None => self.fail(Gb26875Error::TruncatedObject { type_code }),
            Some(Err(e)) => self.fail(e),
            Some(Ok(obj)) => {
                if matches!(obj, Object::Unknown { .. }) {
                    self.done = true;
                } else {
                    self.remaining -= 1;
                }
                Some(Ok(obj))
            }
        }
    }
}

/// Encodes a data unit: the type flag, the count and `objects`, which must
/// all be of `type_code` ([`Gb26875Error::MixedObjects`] otherwise). Returns
/// the length written to `out`. No objects at all give a two-byte unit
/// `[type_code, 0]`; a frame with no data unit (heartbeat, confirm) simply
/// has an empty `adu`.
pub fn encode_objects(
    type_code: u8,
    objects: &[Object<'_>],
    out: &mut [u8],
) -> Result<usize, Gb26875Error> {
    let mut w = Writer::new(out);
    w.put(&[type_code, 0])?;
    let mut count: u8 = 0;
    for obj in objects {
        if obj.type_code() != type_code {
            return Err(Gb26875Error::MixedObjects);
        }
        count = count
            .checked_add(obj.count())
            .ok_or(Gb26875Error::TooManyObjects)?;
        obj.write(&mut w)?;
    }
    if w.len() > MAX_ADU_LEN {
        return Err(Gb26875Error::TooLong(w.len()));
    }
    w.patch(1, count)?;
    Ok(w.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TimeTag {
        TimeTag::new(12, 9, 26, 9, 58, 2).unwrap()
    }

    #[test]
    fn empty_unit_has_no_objects() {
        let mut it = Objects::new(&[]);
        assert_eq!(it.type_code(), None);
        assert!(it.next().is_none());
    }

    #[test]
    fn a_lone_type_byte_is_truncated() {
        let mut it = Objects::new(&[2]);
        assert_eq!(
            it.next(),
            Some(Err(Gb26875Error::TruncatedObject { type_code: 2 }))
        );
        assert!(it.next().is_none());
    }

    #[test]
    fn short_object_and_trailing_bytes_are_errors() {
        // Type 21 needs 7 bytes per object; 6 given.
        let adu = [21, 1, 0x01, 0, 0, 0, 1, 1];
        let mut it = Objects::new(&adu);
        assert_eq!(
            it.next(),
            Some(Err(Gb26875Error::TruncatedObject { type_code: 21 }))
        );
        assert!(it.next().is_none());
        // One object declared, two present.
        let mut adu = [0u8; 2 + 14];
        let n = encode_objects(
            21,
            &[
                Object::DeviceStatus {
                    state: DeviceState::NORMAL,
                    time: t(),
                },
                Object::DeviceStatus {
                    state: DeviceState::NORMAL,
                    time: t(),
                },
            ],
            &mut adu,
        )
        .unwrap();
        assert_eq!(n, 16);
        adu[1] = 1;
        let mut it = Objects::new(&adu);
        assert!(matches!(it.next(), Some(Ok(Object::DeviceStatus { .. }))));
        assert_eq!(
            it.next(),
            Some(Err(Gb26875Error::TrailingData { type_code: 21 }))
        );
        assert!(it.next().is_none());
    }

    #[test]
    fn bad_object_time_is_an_error() {
        let adu = [28, 1, 0, 0, 0, 0, 1, 0];
        assert_eq!(Objects::new(&adu).next(), Some(Err(Gb26875Error::BadTime)));
    }

    #[test]
    fn unknown_type_yields_its_bytes_and_stops() {
        // 81 读用户信息传输装置运行状态: count 1, one reserved byte.
        let adu = [81, 1, 0];
        let mut it = Objects::new(&adu);
        assert_eq!(
            it.next(),
            Some(Ok(Object::Unknown {
                type_code: 81,
                count: 1,
                data: &[0]
            }))
        );
        assert!(it.next().is_none());
        let mut out = [0u8; 3];
        let obj = Object::Unknown {
            type_code: 81,
            count: 1,
            data: &[0],
        };
        assert_eq!(encode_objects(81, &[obj], &mut out), Ok(3));
        assert_eq!(out, adu);
    }

    #[test]
    fn encoder_refuses_mixed_and_oversized_units() {
        let mut out = [0u8; 2048];
        let a = Object::DeviceTime { time: t() };
        let b = Object::DeviceSoftwareVersion { major: 1, minor: 1 };
        assert_eq!(
            encode_objects(28, &[a, b], &mut out),
            Err(Gb26875Error::MixedObjects)
        );
        let many = [a; 171]; // 2 + 171 × 6 = 1028
        assert_eq!(
            encode_objects(28, &many, &mut out),
            Err(Gb26875Error::TooLong(1028))
        );
        let big = Object::Unknown {
            type_code: 200,
            count: 255,
            data: &[],
        };
        assert_eq!(
            encode_objects(200, &[big, big], &mut out),
            Err(Gb26875Error::TooManyObjects)
        );
        assert_eq!(
            encode_objects(28, &[a], &mut out[..7]),
            Err(Gb26875Error::BufferFull)
        );
    }

    #[test]
    fn component_address_and_description() {
        let a = ComponentAddress(u32::from_le_bytes([0x0A, 0x00, 0x02, 0x00]));
        assert_eq!((a.zone(), a.point()), (10, 2));
        assert_eq!(ComponentAddress::new(10, 2), a);
        let d = Description::new(b"B1 smoke  ");
        assert_eq!(d.trimmed(), b"B1 smoke");
        assert_eq!(Description::default().trimmed(), b"");
    }
}
