//! The one place dealbridge waits before trying a call again: exponential backoff with full jitter,
//! honouring a server's `Retry-After` when it gives one, and the one retry loop
//! ([`run_with_retries`]) every client runs its calls in.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tracing::warn;

/// Whether a failed try may be made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    No,
    /// Yes, after the policy's backoff or the server's `Retry-After`.
    After(Option<Duration>),
}

/// Runs `call` (given the try's number, from 1) until it succeeds, `should_retry` says its
/// error may not be repeated, or `policy`'s tries are used up; returns the last result.
pub async fn run_with_retries<T, E, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut call: impl FnMut(u32) -> Fut,
    should_retry: impl Fn(&E) -> Again,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match call(attempt).await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        match should_retry(&error) {
            Again::After(retry_after) if attempt < policy.max_attempts.max(1) => {
                warn!(what, attempt, error = %error, "call failed; retrying");
                policy.wait(attempt, retry_after).await;
            }
            _ => return Err(error),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// No waiting between tries (tests that count calls, not time).
    pub fn immediate(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// The wait after failed try number `attempt` (1-based): a random duration up to
    /// `base × 2^(attempt-1)`, capped; a server's `Retry-After` (capped) wins.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(Duration::from_secs(60));
        }
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        if ceiling.is_zero() {
            return ceiling;
        }
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=nanos))
    }

    /// Waits before try `attempt + 1`.
    pub async fn wait(&self, attempt: u32, retry_after: Option<Duration>) {
        let d = self.delay(attempt, retry_after);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_is_tried_until_it_succeeds_or_may_not_be_repeated() {
        let policy = RetryPolicy::immediate(4);
        let mut tries = Vec::new();
        let ok: Result<u32, String> = run_with_retries(
            &policy,
            "test",
            |n| {
                tries.push(n);
                async move {
                    if n < 3 {
                        Err(format!("try {n}"))
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| Again::After(None),
        )
        .await;
        assert_eq!(ok, Ok(3));
        assert_eq!(tries, [1, 2, 3]);
        let mut count = 0;
        let refused: Result<(), String> = run_with_retries(
            &policy,
            "test",
            |_| {
                count += 1;
                async { Err("refused".to_string()) }
            },
            |_| Again::No,
        )
        .await;
        assert_eq!(refused, Err("refused".into()));
        assert_eq!(count, 1, "an error that may not be repeated is tried once");
        let mut count = 0;
        let _: Result<(), String> = run_with_retries(
            &policy,
            "test",
            |_| {
                count += 1;
                async { Err("down".to_string()) }
            },
            |_| Again::After(None),
        )
        .await;
        assert_eq!(count, 4, "at most the policy's tries");
    }

    #[test]
    fn delays_grow_with_jitter_under_a_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        for _ in 0..200 {
            assert!(p.delay(1, None) <= Duration::from_millis(100));
            assert!(p.delay(2, None) <= Duration::from_millis(200));
            assert!(p.delay(9, None) <= Duration::from_millis(300));
        }
        assert_eq!(RetryPolicy::immediate(3).delay(3, None), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_minute() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
    }
}
