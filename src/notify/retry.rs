//! When to try again, and what an answer means. Pure: the jitter comes in as a number.

use std::time::{Duration, SystemTime};

/// Longest `Retry-After` honoured; a receiver asking for more is asked again after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait before retry number `retry` (1: after the first failed attempt): `initial`
/// doubled per retry, at most `max`, then "equal jitter" — the upper half of it scaled by
/// `unit` (in 0..=1, drawn at random by the caller): between half and all of the step.
pub fn backoff(initial: Duration, max: Duration, retry: u32, unit: f64) -> Duration {
    let step = initial
        .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
        .min(max);
    let half = step / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// The wait a `Retry-After` value asks for: delay-seconds or an HTTP-date, relative to `now`
/// (a date in the past: no wait), at most [`MAX_RETRY_AFTER`]. `None` when it is neither.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let wait = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: delivered.
    Delivered,
    /// 429: the receiver asks to wait (for `after`, when it said how long).
    RateLimited {
        /// Its `Retry-After`, understood.
        after: Option<Duration>,
    },
    /// Anything else: tried again later.
    Failed {
        /// Why (no URL, no secret).
        error: String,
    },
}

impl Outcome {
    /// The ledger's and the metrics' name of it.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::RateLimited { .. } => "rate_limited",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// What an HTTP answer means. Every failure is retried: a 4xx other than 429 usually means a
/// receiver that is misconfigured (a revoked Slack webhook answers 404 or 410), which someone
/// fixes while the alert fires; the escalation closing ends the retries.
pub fn classify(status: u16, retry_after_header: Option<&str>, now: SystemTime) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::RateLimited {
            after: retry_after_header.and_then(|v| retry_after(v, now)),
        },
        s => Outcome::Failed {
            error: format!("HTTP {s}"),
        },
    }
}

/// When the next attempt may start after `outcome` of attempt number `attempt` (1 for the
/// first), `unit` being the jitter draw: a `Retry-After` (never earlier; `initial` at least,
/// so `Retry-After: 0` is no busy loop), else the backoff. `None` once delivered.
pub fn next_wait(
    outcome: &Outcome,
    attempt: u32,
    initial: Duration,
    max: Duration,
    unit: f64,
) -> Option<Duration> {
    match outcome {
        Outcome::Delivered => None,
        Outcome::RateLimited { after: Some(a) } => Some((*a).max(initial)),
        Outcome::RateLimited { after: None } | Outcome::Failed { .. } => {
            Some(backoff(initial, max, attempt, unit))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_from_initial_to_max_with_equal_jitter() {
        let table = [
            // (retry, unit, expected)
            (1, 1.0, S(1)),
            (1, 0.0, MS(500)),
            (1, 0.5, MS(750)),
            (2, 1.0, S(2)),
            (3, 1.0, S(4)),
            (9, 1.0, S(256)),
            (10, 1.0, S(300)),
            (10, 0.0, S(150)),
            (60, 1.0, S(300)),
            (0, 1.0, S(1)),
            (2, 7.0, S(2)),
            (2, -1.0, S(1)),
        ];
        for (retry, unit, want) in table {
            assert_eq!(
                backoff(S(1), S(300), retry, unit),
                want,
                "retry {retry}, unit {unit}"
            );
        }
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + S(1_700_000_000);
        let date = httpdate::fmt_http_date(now + S(42));
        let past = httpdate::fmt_http_date(now - S(42));
        let table: &[(&str, Option<Duration>)] = &[
            ("1", Some(S(1))),
            (" 120 ", Some(S(120))),
            ("0", Some(S(0))),
            (&date, Some(S(42))),
            (&past, Some(S(0))),
            ("999999", Some(MAX_RETRY_AFTER)),
            ("soon", None),
            ("-5", None),
            ("1.5", None),
            ("", None),
        ];
        for (v, want) in table {
            assert_eq!(retry_after(v, now), *want, "{v:?}");
        }
    }

    #[test]
    fn answers_are_classified_and_the_next_wait_follows() {
        let now = SystemTime::UNIX_EPOCH + S(1_700_000_000);
        let table: &[(u16, Option<&str>, Outcome, Option<Duration>)] = &[
            (200, None, Outcome::Delivered, None),
            (204, None, Outcome::Delivered, None),
            (
                429,
                Some("3"),
                Outcome::RateLimited { after: Some(S(3)) },
                Some(S(3)),
            ),
            // No busy loop: at least backoff_initial.
            (
                429,
                Some("0"),
                Outcome::RateLimited { after: Some(S(0)) },
                Some(S(1)),
            ),
            (
                429,
                Some("later"),
                Outcome::RateLimited { after: None },
                Some(S(4)),
            ),
            (429, None, Outcome::RateLimited { after: None }, Some(S(4))),
            (
                500,
                None,
                Outcome::Failed {
                    error: "HTTP 500".into(),
                },
                Some(S(4)),
            ),
            (
                404,
                None,
                Outcome::Failed {
                    error: "HTTP 404".into(),
                },
                Some(S(4)),
            ),
            (
                302,
                None,
                Outcome::Failed {
                    error: "HTTP 302".into(),
                },
                Some(S(4)),
            ),
        ];
        for (status, ra, outcome, wait) in table {
            let got = classify(*status, *ra, now);
            assert_eq!(&got, outcome, "{status}");
            // Third attempt, no jitter taken off: 1 s doubled twice.
            assert_eq!(next_wait(&got, 3, S(1), S(300), 1.0), *wait, "{status}");
        }
        assert_eq!(Outcome::Delivered.status(), "delivered");
        assert_eq!(
            Outcome::RateLimited { after: None }.status(),
            "rate_limited"
        );
    }
}
