//! The six-byte time tag (时间标签, standard 8.2.2): second, minute, hour,
//! day, month, year − 2000, one binary byte each, in that order. It stamps
//! the frame (when it was sent) and most information objects (when the
//! state changed), so a device's buffered alarms keep their own time.

use super::Gb26875Error;
use super::bytes::{Reader, Writer};

/// A validated time tag, local time of the sender (the standard names no
/// time zone; in practice it is China Standard Time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeTag {
    // Field order makes the derived `Ord` chronological.
    year: u8,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl TimeTag {
    /// The wire size.
    pub const LEN: usize = 6;

    /// Validates the fields: `year` is years since 2000 (0–99), `day` must
    /// exist in that month (leap years counted).
    pub const fn new(
        year: u8,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    ) -> Result<Self, Gb26875Error> {
        if year > 99
            || month < 1
            || month > 12
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(Gb26875Error::BadTime);
        }
        Ok(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Decodes the wire order `[second, minute, hour, day, month, year]`.
    pub const fn from_bytes(b: [u8; 6]) -> Result<Self, Gb26875Error> {
        let [second, minute, hour, day, month, year] = b;
        Self::new(year, month, day, hour, minute, second)
    }

    /// The wire order `[second, minute, hour, day, month, year]`.
    pub const fn to_bytes(self) -> [u8; 6] {
        [
            self.second,
            self.minute,
            self.hour,
            self.day,
            self.month,
            self.year,
        ]
    }

    /// The full year, 2000–2099.
    pub const fn year(self) -> u16 {
        2000 + self.year as u16
    }

    /// Month, 1–12.
    pub const fn month(self) -> u8 {
        self.month
    }

    /// Day of the month, 1–31.
    pub const fn day(self) -> u8 {
        self.day
    }

    /// Hour, 0–23.
    pub const fn hour(self) -> u8 {
        self.hour
    }

    /// Minute, 0–59.
    pub const fn minute(self) -> u8 {
        self.minute
    }

    /// Second, 0–59.
    pub const fn second(self) -> u8 {
        self.second
    }

    /// The civil time of `secs` seconds after the Unix epoch, read on a
    /// clock `offset_s` seconds ahead of UTC (China Standard Time: 8 h, the
    /// time the devices and their monitoring centres keep). Fails outside
    /// 2000–2099.
    pub const fn from_unix_secs(secs: u64, offset_s: i32) -> Result<Self, Gb26875Error> {
        let local = secs as i64 + offset_s as i64;
        if local < 0 {
            return Err(Gb26875Error::BadTime);
        }
        let days = local / 86_400;
        let rem = local % 86_400;
        // Days to civil date (Howard Hinnant's `civil_from_days`).
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
        if year < 2000 || year > 2099 {
            return Err(Gb26875Error::BadTime);
        }
        Self::new(
            (year - 2000) as u8,
            month as u8,
            day as u8,
            (rem / 3_600) as u8,
            (rem % 3_600 / 60) as u8,
            (rem % 60) as u8,
        )
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Option<Result<Self, Gb26875Error>> {
        r.array::<6>().map(Self::from_bytes)
    }

    pub(crate) fn write(self, w: &mut Writer<'_>) -> Result<(), Gb26875Error> {
        w.put(&self.to_bytes())
    }
}

const fn days_in_month(year: u8, month: u8) -> u8 {
    match month {
        2 => {
            // 2000–2099: every fourth year is a leap year (2000 included).
            if year.is_multiple_of(4) { 29 } else { 28 }
        }
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_order_is_second_first() {
        // 2012-09-26 09:58:32, as in the standard's examples.
        let t = TimeTag::from_bytes([0x20, 0x3A, 0x09, 0x1A, 0x09, 0x0C]).unwrap();
        assert_eq!(
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            (2012, 9, 26, 9, 58, 32)
        );
        assert_eq!(t.to_bytes(), [0x20, 0x3A, 0x09, 0x1A, 0x09, 0x0C]);
    }

    #[test]
    fn out_of_range_fields_are_rejected() {
        for bad in [
            [60, 0, 0, 1, 1, 0],
            [0, 60, 0, 1, 1, 0],
            [0, 0, 24, 1, 1, 0],
            [0, 0, 0, 0, 1, 0],
            [0, 0, 0, 32, 1, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 0, 1, 13, 0],
            [0, 0, 0, 1, 1, 100],
            [0, 0, 0, 31, 4, 24],
            [0, 0, 0, 29, 2, 25],
            [0; 6],
        ] {
            assert_eq!(
                TimeTag::from_bytes(bad),
                Err(Gb26875Error::BadTime),
                "{bad:?}"
            );
        }
        assert!(TimeTag::from_bytes([0, 0, 0, 29, 2, 24]).is_ok());
        assert!(TimeTag::from_bytes([59, 59, 23, 31, 12, 99]).is_ok());
    }

    #[test]
    fn unix_seconds_to_civil_time() {
        // 2026-12-06 02:06:08 UTC is 10:06:08 in China.
        let t = TimeTag::from_unix_secs(1_796_522_768, 8 * 3_600).unwrap();
        assert_eq!(
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            (2026, 12, 6, 10, 6, 8)
        );
        // A leap day, and the ends of the range.
        let t = TimeTag::from_unix_secs(951_782_400, 0).unwrap();
        assert_eq!((t.year(), t.month(), t.day()), (2000, 2, 29));
        assert!(TimeTag::from_unix_secs(946_684_799, 0).is_err());
        assert!(TimeTag::from_unix_secs(4_102_444_799, 0).is_ok());
        assert!(TimeTag::from_unix_secs(4_102_444_800, 0).is_err());
    }

    #[test]
    fn ordering_is_chronological() {
        let a = TimeTag::new(24, 12, 31, 23, 59, 59).unwrap();
        let b = TimeTag::new(25, 1, 1, 0, 0, 0).unwrap();
        assert!(a < b);
    }
}
