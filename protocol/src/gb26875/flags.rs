//! The bit-field state and operation words of the information objects
//! (standard 8.2.1). Each keeps the raw bits, reserved ones included, so a
//! decoded object encodes back byte for byte.

use core::ops::BitOr;

macro_rules! flags {
    (
        $(#[$doc:meta])*
        $name:ident($int:ty) {
            $( $(#[$m:meta])* $konst:ident, $get:ident = $bit:literal; )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$m])* pub const $konst: Self = Self(1 << $bit); )*

            $( $(#[$m])* pub const fn $get(self) -> bool { self.0 & (1 << $bit) != 0 } )*

            /// The raw bits.
            pub const fn bits(self) -> $int {
                self.0
            }

            /// Whether every bit of `other` is set.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
        }

        impl BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }
    };
}

flags! {
    /// 建筑消防设施系统状态 (8.2.1.1): the state of a fire protection system
    /// (type 1 objects). Bits may be set together.
    SystemState(u16) {
        /// bit 0: normal operation (set) rather than test mode (clear).
        NORMAL, normal = 0;
        /// bit 1: 火警 fire alarm.
        FIRE_ALARM, fire_alarm = 1;
        /// bit 2: 故障 fault.
        FAULT, fault = 2;
        /// bit 3: 屏蔽 isolated (shielded, disabled by an operator).
        ISOLATED, isolated = 3;
        /// bit 4: 监管 supervisory signal.
        SUPERVISION, supervision = 4;
        /// bit 5: 启动 started (open) rather than stopped (closed).
        STARTED, started = 5;
        /// bit 6: 反馈 feedback received.
        FEEDBACK, feedback = 6;
        /// bit 7: 延时 delay running.
        DELAY, delay = 7;
        /// bit 8: 主电故障 main power fault.
        MAIN_POWER_FAULT, main_power_fault = 8;
        /// bit 9: 备电故障 backup power fault.
        BACKUP_POWER_FAULT, backup_power_fault = 9;
        /// bit 10: 总线故障 bus fault.
        BUS_FAULT, bus_fault = 10;
        /// bit 11: 手动 manual mode rather than automatic.
        MANUAL, manual = 11;
        /// bit 12: 配置改变 configuration changed.
        CONFIG_CHANGED, config_changed = 12;
        /// bit 13: 复位 reset.
        RESET, reset = 13;
    }
}

flags! {
    /// 建筑消防设施部件状态 (8.2.1.2): the state of one component
    /// (detector, call point, module…) in type 2 objects.
    ComponentState(u16) {
        /// bit 0: normal operation (set) rather than test mode (clear).
        NORMAL, normal = 0;
        /// bit 1: 火警 fire alarm.
        FIRE_ALARM, fire_alarm = 1;
        /// bit 2: 故障 fault.
        FAULT, fault = 2;
        /// bit 3: 屏蔽 isolated (shielded, disabled by an operator).
        ISOLATED, isolated = 3;
        /// bit 4: 监管 supervisory signal.
        SUPERVISION, supervision = 4;
        /// bit 5: 启动 started (open) rather than stopped (closed).
        STARTED, started = 5;
        /// bit 6: 反馈 feedback received.
        FEEDBACK, feedback = 6;
        /// bit 7: 延时 delay running.
        DELAY, delay = 7;
        /// bit 8: 电源故障 power fault.
        POWER_FAULT, power_fault = 8;
    }
}

flags! {
    /// 用户信息传输装置运行状态 (8.2.1.8): the state of the transmission
    /// device itself (type 21 objects).
    DeviceState(u8) {
        /// bit 0: normal monitoring (set) rather than test mode (clear).
        NORMAL, normal = 0;
        /// bit 1: 火警 fire alarm.
        FIRE_ALARM, fire_alarm = 1;
        /// bit 2: 故障 fault.
        FAULT, fault = 2;
        /// bit 3: 主电故障 main power fault.
        MAIN_POWER_FAULT, main_power_fault = 3;
        /// bit 4: 备电故障 backup power fault.
        BACKUP_POWER_FAULT, backup_power_fault = 4;
        /// bit 5: 与监控中心通信信道故障 link to the monitoring centre failed.
        CENTRE_LINK_FAULT, centre_link_fault = 5;
        /// bit 6: 监测连接线路故障 line to the monitored panel failed.
        PANEL_LINK_FAULT, panel_link_fault = 6;
    }
}

flags! {
    /// 建筑消防设施操作信息 (8.2.1.4): what an operator did on a fire
    /// alarm control panel (type 4 objects).
    SystemOperation(u8) {
        /// bit 0: 复位 reset.
        RESET, reset = 0;
        /// bit 1: 消音 silence.
        SILENCE, silence = 1;
        /// bit 2: 手动报警 manual alarm.
        MANUAL_ALARM, manual_alarm = 2;
        /// bit 3: 警情消除 alarm cleared.
        ALARM_CLEARED, alarm_cleared = 3;
        /// bit 4: 自检 self test.
        SELF_TEST, self_test = 4;
        /// bit 5: 确认 acknowledged.
        ACKNOWLEDGE, acknowledge = 5;
        /// bit 6: 测试 test.
        TEST, test = 6;
    }
}

flags! {
    /// 用户信息传输装置操作信息 (8.2.1.9): what an operator did on the
    /// transmission device (type 24 objects).
    DeviceOperation(u8) {
        /// bit 0: 复位 reset.
        RESET, reset = 0;
        /// bit 1: 消音 silence.
        SILENCE, silence = 1;
        /// bit 2: 手动报警 manual alarm.
        MANUAL_ALARM, manual_alarm = 2;
        /// bit 3: 警情消除 alarm cleared.
        ALARM_CLEARED, alarm_cleared = 3;
        /// bit 4: 自检 self test.
        SELF_TEST, self_test = 4;
        /// bit 5: 查岗应答 answered a roll call from the centre.
        ROLL_CALL_ANSWER, roll_call_answer = 5;
        /// bit 6: 测试 test.
        TEST, test = 6;
    }
}

impl ComponentState {
    /// Test mode: bit 0 clear.
    pub const fn test_mode(self) -> bool {
        !self.normal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_bits_follow_the_standard() {
        let s = ComponentState(0x0002);
        assert!(s.fire_alarm() && !s.fault() && s.test_mode());
        let s = ComponentState::NORMAL | ComponentState::ISOLATED;
        assert_eq!(s.bits(), 0b1001);
        assert!(s.isolated() && !s.supervision() && s.normal());
        assert!(ComponentState(0x0100).power_fault());
        assert!(ComponentState(0x0010).supervision());
        assert!(ComponentState(0xFFFF).contains(ComponentState::DELAY | ComponentState::FEEDBACK));
    }

    #[test]
    fn device_and_operation_bits() {
        assert!(DeviceState(0x08).main_power_fault());
        assert!(DeviceState(0x20).centre_link_fault());
        assert!(DeviceOperation(0x20).roll_call_answer());
        assert!(SystemOperation(0x02).silence());
        assert!(SystemState(1 << 13).reset());
    }
}
