//! [`RetryPolicy`]: how many tries a failed request gets and how long to wait between
//! them. Shared by [`crate::TlaoClient`], [`crate::WorkerClient`] and
//! [`crate::EventStream`]; which failures are worth another try is each caller's rule
//! (see the crate's HTTP core).

use std::time::Duration;

use rand::Rng;

/// How failed calls are retried: up to `attempts` tries, sleeping between them for a
/// delay that starts at `initial_backoff` and doubles up to `max_backoff`, each delay
/// drawn between half and all of it (jitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many tries in all, at least 1.
    pub attempts: u32,
    /// The delay before the second try.
    pub initial_backoff: Duration,
    /// The longest delay between two tries.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Five tries, 250 ms doubling up to 4 s: at most 3.75 s of waiting in all.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The delay after the `failed`-th failed try (1-based), with jitter.
    pub fn delay(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1));
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = full / 2;
        let jitter_millis = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stays_bounded() {
        let policy = RetryPolicy::default();
        let mut total = Duration::ZERO;
        for failed in 1..policy.attempts {
            let delay = policy.delay(failed);
            let full = (policy.initial_backoff * 2u32.pow(failed - 1)).min(policy.max_backoff);
            assert!(delay >= full / 2 && delay <= full, "{delay:?} for {full:?}");
            total += delay;
        }
        assert!(total <= Duration::from_secs(10));
    }
}
