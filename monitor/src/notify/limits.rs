//! Send-rate limits per channel and address, as the providers set them
//! (SMS and voice: per number per minute and per hour; robots: per robot
//! per minute): a message over the limit is not sent and not failed, it
//! waits until the window lets it through (`Throttled`, counted). Sends
//! are counted in this replica; with several replicas each keeps its own
//! count, so set the limits per replica (the providers' own limits still
//! apply and are classified as throttling when they answer so).
//!
//! The last send of each window is kept for red: a message below red may
//! use a window only while more than one send is left in it, so a flood of
//! lower notices to one number never makes a red call wait for the next
//! minute (or hour) at that number. (Red also goes on every channel the
//! person has at once, so one throttled channel does not hold it up.)
//!
//! Time is the service's clock, passed in.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::policy::ChannelKind;

/// The limits of one channel kind, per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rate {
    /// Sends a minute (0 = no limit).
    pub per_minute: u32,
    /// Sends an hour (0 = no limit).
    pub per_hour: u32,
}

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// The send times of every (channel, address) seen in the last hour.
#[derive(Debug, Default)]
pub struct Limits {
    sent: Mutex<HashMap<(ChannelKind, String), VecDeque<i64>>>,
}

impl Limits {
    /// Takes a send for `(kind, target)` at `now` under `rate`, or says
    /// when one is free (Unix ms). Only `red` may take the last send of a
    /// window (of more than one).
    pub fn take(
        &self,
        kind: ChannelKind,
        target: &str,
        rate: Rate,
        red: bool,
        now: i64,
    ) -> Result<(), i64> {
        if rate.per_minute == 0 && rate.per_hour == 0 {
            return Ok(());
        }
        let Ok(mut sent) = self.sent.lock() else {
            return Ok(());
        };
        // Forget addresses idle for an hour (bounded memory).
        if sent.len() > 10_000 {
            sent.retain(|_, q| q.back().is_some_and(|t| *t > now - HOUR));
        }
        let q = sent.entry((kind, target.to_string())).or_default();
        while q.front().is_some_and(|t| *t <= now - HOUR) {
            q.pop_front();
        }
        // The sends this message may use of each window.
        let share = |cap: u32| {
            let cap = cap as usize;
            if red || cap <= 1 { cap } else { cap - 1 }
        };
        let in_minute: Vec<i64> = q.iter().copied().filter(|t| *t > now - MIN).collect();
        let per_minute = share(rate.per_minute);
        if rate.per_minute > 0 && in_minute.len() >= per_minute {
            let idx = in_minute.len() - per_minute;
            return Err(in_minute[idx] + MIN);
        }
        let per_hour = share(rate.per_hour);
        if rate.per_hour > 0 && q.len() >= per_hour {
            let idx = q.len() - per_hour;
            return Err(q[idx] + HOUR);
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_minute_and_per_hour() {
        let l = Limits::default();
        let r = Rate {
            per_minute: 1,
            per_hour: 3,
        };
        let sms = ChannelKind::Sms;
        assert_eq!(l.take(sms, "138", r, true, 0), Ok(()));
        assert_eq!(l.take(sms, "138", r, true, 10), Err(MIN));
        assert_eq!(l.take(sms, "139", r, true, 10), Ok(()), "per address");
        assert_eq!(
            l.take(sms, "138", Rate::default(), false, 10),
            Ok(()),
            "no limit"
        );
        assert_eq!(l.take(sms, "138", r, true, MIN), Ok(()));
        assert_eq!(l.take(sms, "138", r, true, 2 * MIN), Ok(()));
        assert_eq!(l.take(sms, "138", r, true, 3 * MIN), Err(HOUR), "3 an hour");
        assert_eq!(l.take(sms, "138", r, true, HOUR), Ok(()));
    }

    #[test]
    fn the_last_send_of_a_window_is_kept_for_red() {
        let l = Limits::default();
        let r = Rate {
            per_minute: 3,
            per_hour: 0,
        };
        let sms = ChannelKind::Sms;
        // Lower notices take two of the three sends a minute…
        assert_eq!(l.take(sms, "138", r, false, 0), Ok(()));
        assert_eq!(l.take(sms, "138", r, false, 1), Ok(()));
        assert_eq!(
            l.take(sms, "138", r, false, 2),
            Err(MIN),
            "the third is red's"
        );
        // … a red call still goes now, then the window is full for all.
        assert_eq!(l.take(sms, "138", r, true, 3), Ok(()));
        assert_eq!(l.take(sms, "138", r, true, 4), Err(MIN));
        // A window of one is not reserved (nothing would ever be sent).
        let one = Rate {
            per_minute: 1,
            per_hour: 0,
        };
        assert_eq!(l.take(sms, "139", one, false, 0), Ok(()));
    }
}
