//! Retry with exponential backoff and full jitter (requirement 13.2).
//!
//! Only errors a retry may cure are retried (`Transient`); a failed condition or a
//! malformed request is returned at once. Callers keep writes conditional, so a retried
//! write whose first attempt did land fails its condition instead of applying twice.
//!
//! This is the only loop that retries a table call: the table adapters make one attempt
//! per call (DynamoDB's SDK retry is off, a transaction conflict is `Transient` like
//! throttling; SQLite's busy wait is one attempt), so [`RetryPolicy::max_attempts`] is
//! the whole budget of a logical write.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (at least 1).
    pub max_attempts: u32,
    /// The backoff ceiling before the second attempt; it doubles after each failure.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
}

/// The attempts of a logical write in all, the first one included (requirement 13.2).
pub const MAX_ATTEMPTS: u32 = 3;

impl Default for RetryPolicy {
    /// At most [`MAX_ATTEMPTS`] attempts, backing off up to 25 ms, then 50 ms
    /// (requirement 13.2).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: MAX_ATTEMPTS,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The backoff ceiling after `failures` failed attempts (1 for the first failure).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Runs `attempt` until it succeeds, fails with an error `is_transient` rejects, or
    /// `max_attempts` attempts have failed; returns the last result. Between attempts it
    /// sleeps a uniformly random time up to the current ceiling ("full jitter"), so
    /// clients that failed together do not retry together.
    pub async fn run<T, E, Fut>(
        &self,
        mut attempt: impl FnMut() -> Fut,
        is_transient: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let mut failures = 0;
        loop {
            match attempt().await {
                Err(error) if is_transient(&error) && failures + 1 < self.max_attempts.max(1) => {
                    failures += 1;
                    let ceiling = self.ceiling(failures);
                    let pause = rand::thread_rng().gen_range(Duration::ZERO..=ceiling);
                    tracing::debug!(
                        attempt = failures,
                        ?pause,
                        "retrying after a transient error"
                    );
                    tokio::time::sleep(pause).await;
                }
                result => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        };
        assert_eq!(policy.ceiling(1), Duration::from_millis(10));
        assert_eq!(policy.ceiling(2), Duration::from_millis(20));
        assert_eq!(policy.ceiling(3), Duration::from_millis(40));
        assert_eq!(policy.ceiling(4), Duration::from_millis(50));
        assert_eq!(policy.ceiling(40), Duration::from_millis(50));
    }
}
