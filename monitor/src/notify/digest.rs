//! Digests (`notify.digest_ms`): in an alarm storm a person on duty would
//! get one message per notice on every channel, and the providers throttle
//! per number (a handful a minute, five an hour for SMS), so what matters
//! would queue behind what does not. At most one non-red notice that asks
//! no answer goes to a person on one channel per window; what comes for the
//! same inbox meanwhile waits, and when the window ends it goes as **one**
//! message listing them all (the catalogue's `notice.digest`). A quiet inbox
//! adds no delay: the first notice goes at once. A busy one's window
//! doubles while notices keep coming, up to four times the base
//! ([`Windows`]): a storm of several minutes then costs a person a few
//! messages, not one a minute.
//!
//! Never held: red (it also keeps the last send of every rate window,
//! [`super::limits`]), calls and anything else that asks an answer (each
//! carries its own reply code and link), report mails.
//!
//! How a digest is made, durably: the worker claims the waiting rows of one
//! inbox together; the oldest becomes the carrier (its text replaced by the
//! digest, template `digest`), the others are `MERGED` with `digest_id`
//! naming it. When the carrier is sent they become `SENT` with it (and
//! reach the warnings as sent); when it fails for good they fail with it; a
//! retry carries them again. A crash between the two leaves leased rows
//! that the next tick takes again. A digest over SMS or voice needs a
//! registered `digest` template (`anquan-monitor sms-templates` prints it);
//! without one, that channel's notices go one by one under the rate limit.
//!
//! The windows are kept in this replica (as the rate limits are).

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::Row;

use super::Priority;
use crate::App;
use crate::error::Result;
use crate::messages::{self, Lang};
use crate::policy::ChannelKind;

/// The catalogue entry and provider template key of a digest.
pub const TEMPLATE: &str = "digest";

/// The most notices one digest lists (the rest wait for the next).
pub const MAX: usize = 20;

/// Whether a queued message may wait for a digest.
pub fn digestible(subject: &str, priority: Priority) -> bool {
    !priority.is_red() && !priority.asks_answer() && subject != crate::report_mail::SUBJECT
}

/// Who a message goes to, on which channel and address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Inbox {
    /// The person.
    pub person: String,
    /// The channel.
    pub channel: ChannelKind,
    /// The address (number, robot, …).
    pub target: String,
}

/// How much a busy inbox's window may grow: at most this many times
/// `notify.digest_ms`.
pub const MAX_GROWTH: i64 = 4;

/// When each inbox last took a digestible message, and its window now.
/// A window doubles while notices keep coming (a send within two windows
/// of the last), up to [`MAX_GROWTH`] times the base, and falls back to the
/// base after a quiet one: in a storm a person gets a digest every 1, 2,
/// then 4 minutes, not one a minute. Time is passed in.
#[derive(Debug, Default)]
pub struct Windows {
    last: Mutex<HashMap<Inbox, (i64, i64)>>,
}

impl Windows {
    /// Whether a digestible message may go to `inbox` at `now`, or when it
    /// may (Unix ms).
    pub fn open(&self, inbox: &Inbox, now: i64) -> Result<(), i64> {
        let Ok(last) = self.last.lock() else {
            return Ok(());
        };
        match last.get(inbox) {
            Some((t, w)) if t.saturating_add(*w) > now => Err(t.saturating_add(*w)),
            _ => Ok(()),
        }
    }

    /// Records that `inbox` took one at `now` under a base window of
    /// `base_ms`.
    pub fn used(&self, inbox: Inbox, base_ms: i64, now: i64) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        // Forget inboxes whose window is over (bounded memory).
        if last.len() > 10_000 {
            last.retain(|_, (t, w)| t.saturating_add(*w) > now);
        }
        let window = match last.get(&inbox) {
            Some((t, w)) if now - t < w.saturating_mul(2) => {
                w.saturating_mul(2).min(base_ms.saturating_mul(MAX_GROWTH))
            }
            _ => base_ms,
        };
        last.insert(inbox, (now, window));
    }
}

/// Turns the claimed rows `ids` (the oldest first, all of one inbox,
/// leased by this replica) into one digest: the first carries it, the
/// others are merged into it. Returns the carrier.
pub async fn merge(app: &App, inbox: &Inbox, ids: &[String]) -> Result<String> {
    let (carrier, others) = match ids {
        [] => return Ok(String::new()),
        [first] => return Ok(first.clone()),
        [first, rest @ ..] => (first, rest),
    };
    let mut tx = app.db.begin().await?;
    let mut titles = Vec::with_capacity(ids.len());
    let mut carrier_params = None;
    for id in ids {
        let r = sqlx::query("SELECT title, params FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        titles.push(r.try_get::<String, _>("title")?);
        if id == carrier {
            carrier_params = crate::db::opt_str(&r, "params")?;
        }
    }
    let lang: Option<String> = sqlx::query("SELECT lang FROM people WHERE id = $1")
        .bind(&inbox.person)
        .fetch_optional(&mut *tx)
        .await?
        .and_then(|r| crate::db::opt_str(&r, "lang").ok().flatten());
    let lang = lang
        .as_deref()
        .and_then(Lang::parse)
        .or_else(|| Lang::parse(&app.cfg.notify.lang))
        .unwrap_or(Lang::Zh);
    let text = messages::digest(lang, &titles);
    // The text in the channel's form, as a warning's drafts have it.
    let (body, params) = match inbox.channel {
        ChannelKind::Sms => (text.sms, Some(text.params.to_string())),
        ChannelKind::Voice => (text.voice, Some(text.params.to_string())),
        // A robot keeps its mention of the person.
        k if k.is_robot() => (text.body, carrier_params),
        _ => (text.body, None),
    };
    sqlx::query(
        "UPDATE deliveries SET template = $1, title = $2, body = $3, params = $4 \
         WHERE id = $5 AND lease_owner = $6",
    )
    .bind(TEMPLATE)
    .bind(&text.title)
    .bind(&body)
    .bind(params)
    .bind(carrier)
    .bind(&app.instance)
    .execute(&mut *tx)
    .await?;
    for id in others {
        sqlx::query(
            "UPDATE deliveries SET state = 'MERGED', digest_id = $1, lease_until = 0 \
             WHERE id = $2 AND lease_owner = $3 AND state = 'QUEUED'",
        )
        .bind(carrier)
        .bind(id)
        .bind(&app.instance)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    app.metrics
        .notifications_digested
        .with_label_values(&[inbox.channel.as_str()])
        .inc_by(ids.len() as u64);
    tracing::info!(carrier = %carrier, person = %inbox.person, channel = %inbox.channel.as_str(), count = ids.len(), "notify: notices sent as one digest");
    Ok(carrier.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anquan_protocol::Level;

    fn inbox(person: &str) -> Inbox {
        Inbox {
            person: person.into(),
            channel: ChannelKind::Sms,
            target: "13800000001".into(),
        }
    }

    #[test]
    fn one_notice_per_window_per_inbox() {
        let w = Windows::default();
        let a = inbox("a");
        assert_eq!(w.open(&a, 0), Ok(()), "a quiet inbox: at once");
        w.used(a.clone(), 60_000, 0);
        assert_eq!(w.open(&a, 59_999), Err(60_000));
        assert_eq!(w.open(&inbox("b"), 1), Ok(()), "per person");
        assert_eq!(w.open(&a, 60_000), Ok(()));
    }

    #[test]
    fn a_busy_inbox_waits_longer_and_a_quiet_one_is_back_to_the_base() {
        let w = Windows::default();
        let a = inbox("a");
        const MIN: i64 = 60_000;
        w.used(a.clone(), MIN, 0);
        // Busy: the next digest at the end of the window doubles it…
        w.used(a.clone(), MIN, MIN);
        assert_eq!(w.open(&a, 2 * MIN), Err(3 * MIN));
        w.used(a.clone(), MIN, 3 * MIN);
        assert_eq!(w.open(&a, 3 * MIN), Err(7 * MIN));
        // … up to four times the base.
        w.used(a.clone(), MIN, 7 * MIN);
        assert_eq!(w.open(&a, 7 * MIN), Err(11 * MIN));
        // Quiet for two windows: back to the base.
        w.used(a.clone(), MIN, 30 * MIN);
        assert_eq!(w.open(&a, 30 * MIN), Err(31 * MIN));
    }

    #[test]
    fn red_calls_and_report_mails_are_never_held() {
        let info = |l| Priority::warning(l, false);
        assert!(digestible("warning", info(Level::Orange)));
        assert!(digestible("task", Priority::ROUTINE));
        assert!(!digestible("warning", info(Level::Red)));
        assert!(!digestible(
            "warning",
            Priority::warning(Level::Yellow, true)
        ));
        assert!(!digestible(crate::report_mail::SUBJECT, Priority::ROUTINE));
    }
}
