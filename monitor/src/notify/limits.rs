//! Send-rate limits per channel and address, as the providers set them
//! (SMS and voice: per number per minute and per hour; robots: per robot
//! per minute): a message over the limit is not sent and not failed, it
//! waits until the window lets it through (`Throttled`, counted). Sends
//! are counted in this replica; with several replicas each keeps its own
//! count, so set the limits per replica (the providers' own limits still
//! apply and are classified as throttling when they answer so).
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
    /// when one is free (Unix ms).
    pub fn take(&self, kind: ChannelKind, target: &str, rate: Rate, now: i64) -> Result<(), i64> {
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
        let in_minute: Vec<i64> = q.iter().copied().filter(|t| *t > now - MIN).collect();
        if rate.per_minute > 0 && in_minute.len() >= rate.per_minute as usize {
            let idx = in_minute.len() - rate.per_minute as usize;
            return Err(in_minute[idx] + MIN);
        }
        if rate.per_hour > 0 && q.len() >= rate.per_hour as usize {
            let idx = q.len() - rate.per_hour as usize;
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
        assert_eq!(l.take(sms, "138", r, 0), Ok(()));
        assert_eq!(l.take(sms, "138", r, 10), Err(MIN));
        assert_eq!(l.take(sms, "139", r, 10), Ok(()), "per address");
        assert_eq!(l.take(sms, "138", Rate::default(), 10), Ok(()), "no limit");
        assert_eq!(l.take(sms, "138", r, MIN), Ok(()));
        assert_eq!(l.take(sms, "138", r, 2 * MIN), Ok(()));
        assert_eq!(l.take(sms, "138", r, 3 * MIN), Err(HOUR), "3 an hour");
        assert_eq!(l.take(sms, "138", r, HOUR), Ok(()));
    }
}
