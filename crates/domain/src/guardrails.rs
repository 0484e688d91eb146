//! Guardrails: the limits that keep one deployment inside its budget.

use serde::{Deserialize, Serialize};

/// Application-level limits enforced by the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Guardrails {
    /// The largest workspace archive accepted, in bytes (30 MiB).
    pub max_archive_bytes: u64,
    /// The longest a run may execute, in seconds (8 minutes).
    pub max_run_seconds: u32,
    /// How many runs of one workspace may execute at once.
    pub max_concurrent_runs: u32,
    /// How many runs one workspace may create per UTC day.
    pub daily_run_quota: u32,
    /// How many log bytes are kept per run; the rest is counted, not kept.
    pub max_log_bytes: u64,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            max_archive_bytes: 31_457_280,
            max_run_seconds: 480,
            max_concurrent_runs: 2,
            daily_run_quota: 100,
            max_log_bytes: 1_048_576,
        }
    }
}

impl Guardrails {
    /// The duration limit of a run: the smallest of the guardrail, the executor's own
    /// limit and the task's constraint.
    pub fn run_seconds(&self, executor_limit: Option<u32>, task_limit: Option<u32>) -> u32 {
        [Some(self.max_run_seconds), executor_limit, task_limit]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.max_run_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_contract_values() {
        let g = Guardrails::default();
        assert_eq!(g.max_archive_bytes, 30 * 1024 * 1024);
        assert_eq!(g.max_run_seconds, 480);
        assert_eq!(g.max_concurrent_runs, 2);
        assert_eq!(g.daily_run_quota, 100);
        assert_eq!(g.max_log_bytes, 1024 * 1024);
    }

    #[test]
    fn the_tightest_run_limit_wins() {
        let g = Guardrails::default();
        assert_eq!(g.run_seconds(None, None), 480);
        assert_eq!(g.run_seconds(Some(60), None), 60);
        assert_eq!(g.run_seconds(Some(60), Some(30)), 30);
        assert_eq!(g.run_seconds(None, Some(10_000)), 480);
    }
}
