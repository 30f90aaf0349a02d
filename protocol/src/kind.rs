//! Device kinds.

use core::fmt;

use serde::{Deserialize, Serialize};

/// What a device is. It decides the time-series measurement name and the
/// default rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Combustible-gas (%LEL) and CO detector.
    Gas,
    /// Electrical-fire monitor: residual current and cable temperatures.
    Electrical,
    /// Fire-water pipe-network pressure (and optional tank level).
    WaterPressure,
    /// Tower-crane safety monitor ("black box").
    Crane,
    /// A building's fire alarm control panel, reported by its 用户信息传输装置
    /// (user information transmission device) in GB/T 26875.3 frames and
    /// turned into readings by the gateway (v1 addition): its points in
    /// fire alarm, fault, isolation and supervision.
    FirePanel,
}

impl DeviceKind {
    /// Every kind, in a stable order.
    pub const ALL: [Self; 5] = [
        Self::Gas,
        Self::Electrical,
        Self::WaterPressure,
        Self::Crane,
        Self::FirePanel,
    ];

    /// The wire name, also the time-series measurement name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gas => "gas",
            Self::Electrical => "electrical",
            Self::WaterPressure => "water_pressure",
            Self::Crane => "crane",
            Self::FirePanel => "fire_panel",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for DeviceKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::parse(s).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in DeviceKind::ALL {
            assert_eq!(DeviceKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(DeviceKind::parse("smoke"), None);
        assert_eq!(DeviceKind::parse("Gas"), None);
    }
}
