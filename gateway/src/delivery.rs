//! How a far end's answer is judged, shared by the sink and the alarm
//! forwarders (the HTTP contract of `POST /api/v1/alarms`).

/// Why a delivery did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 400/413/422: the far end will never take this entry; dead-letter it.
    Rejected(String),
    /// 401/403: our credentials are wrong; keep retrying (nothing is lost)
    /// and say so loudly.
    Unauthorized(String),
    /// 408/429/5xx, timeouts, refused connections: retry with backoff.
    Retry(String),
}

/// Judges an HTTP status that is not a success.
pub fn classify_status(status: u16, why: String) -> Failure {
    match status {
        // 409: the monitor holds a different event under this id (see
        // anquan-monitor intake); retrying cannot succeed and would
        // block the alarms behind it.
        400 | 409 | 413 | 422 => Failure::Rejected(why),
        401 | 403 => Failure::Unauthorized(why),
        _ => Failure::Retry(why),
    }
}

/// Whether a status means "accepted" (a duplicate event id is accepted too:
/// the receiver is idempotent).
pub fn is_accepted(status: u16) -> bool {
    matches!(status, 200 | 201 | 202 | 204)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract() {
        for s in [200, 201, 202] {
            assert!(is_accepted(s));
        }
        for s in [400, 409, 413, 422] {
            assert!(matches!(
                classify_status(s, String::new()),
                Failure::Rejected(_)
            ));
        }
        for s in [401, 403] {
            assert!(matches!(
                classify_status(s, String::new()),
                Failure::Unauthorized(_)
            ));
        }
        for s in [404, 408, 429, 500, 502, 503, 504] {
            assert!(matches!(
                classify_status(s, String::new()),
                Failure::Retry(_)
            ));
        }
        assert!(!is_accepted(301));
    }
}
