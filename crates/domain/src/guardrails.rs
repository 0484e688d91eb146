//! Guardrails: the limits that keep one deployment inside its budget, per workspace
//! (archive size, run time, concurrency, daily runs), per user (workspaces owned, daily
//! runs across their workspaces) and per archive (entries and unpacked size, checked at
//! upload and again by the worker when it extracts), and the names [`Limit`] gives them
//! where a refusal names the limit it met.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Bytes of tar headers, padding and long names allowed per archive entry on top of its
/// content, when the decompressed stream of an archive is capped (so a gzip bomb of
/// headers or padding is stopped as surely as one of content).
pub const ARCHIVE_OVERHEAD_PER_ENTRY: u64 = 4096;

/// Application-level limits enforced by the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Guardrails {
    /// The largest workspace archive accepted, in bytes (30 MiB).
    pub max_archive_bytes: u64,
    /// The longest a run may execute, in seconds (8 minutes).
    pub max_run_seconds: u32,
    /// The longest a run may wait in the queue for a worker, in seconds (1 hour); past
    /// it the run fails with `queue_timeout` and its daily quota unit is given back.
    pub max_queue_seconds: u64,
    /// How many runs of one workspace may execute at once.
    pub max_concurrent_runs: u32,
    /// How many runs one workspace may create per UTC day.
    pub daily_run_quota: u32,
    /// How many log bytes are kept per run; the rest is counted, not kept.
    pub max_log_bytes: u64,
    /// How many workspaces one user may own.
    pub max_workspaces_per_user: u32,
    /// How many runs one user may create per UTC day, across all their workspaces (on
    /// top of each workspace's [`Guardrails::daily_run_quota`]).
    pub daily_run_quota_per_user: u32,
    /// The most entries (files, directories, links) a workspace archive may hold.
    pub max_archive_entries: u64,
    /// The most bytes of file content a workspace archive may unpack to.
    pub max_unpacked_bytes: u64,
    /// How recently a worker must have reported an executor's program available for run
    /// creation to prefer that executor (requirement 2.2), in seconds (10 minutes).
    pub executor_seen_within_seconds: u64,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            max_archive_bytes: 31_457_280,
            max_run_seconds: 480,
            max_queue_seconds: 3_600,
            max_concurrent_runs: 2,
            daily_run_quota: 100,
            max_log_bytes: 1_048_576,
            max_workspaces_per_user: 10,
            daily_run_quota_per_user: 200,
            max_archive_entries: Guardrails::DEFAULT_MAX_ARCHIVE_ENTRIES,
            max_unpacked_bytes: Guardrails::DEFAULT_MAX_UNPACKED_BYTES,
            executor_seen_within_seconds: 600,
        }
    }
}

impl Guardrails {
    /// The default [`Guardrails::max_archive_entries`], which the worker's extraction
    /// enforces too.
    pub const DEFAULT_MAX_ARCHIVE_ENTRIES: u64 = 100_000;
    /// The default [`Guardrails::max_unpacked_bytes`] (1 GiB), which the worker's
    /// extraction enforces too.
    pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 1 << 30;

    /// The duration limit of a run: the smallest of the guardrail, the executor's own
    /// limit and the task's constraint.
    pub fn run_seconds(&self, executor_limit: Option<u32>, task_limit: Option<u32>) -> u32 {
        [Some(self.max_run_seconds), executor_limit, task_limit]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.max_run_seconds)
    }

    /// The most bytes an archive's decompressed tar stream may hold before its end:
    /// the unpacked-size limit plus [`ARCHIVE_OVERHEAD_PER_ENTRY`] per allowed entry
    /// and a mebibyte of slack. Past it the archive is refused as too large unpacked.
    pub fn archive_stream_cap(&self) -> u64 {
        archive_stream_cap(self.max_unpacked_bytes, self.max_archive_entries)
    }
}

/// The cap on the decompressed tar stream of an archive that may unpack to
/// `max_unpacked_bytes` in at most `max_entries` entries (see
/// [`Guardrails::archive_stream_cap`]); the worker caps its extraction with it too.
pub fn archive_stream_cap(max_unpacked_bytes: u64, max_entries: u64) -> u64 {
    max_unpacked_bytes
        .saturating_add(max_entries.saturating_mul(ARCHIVE_OVERHEAD_PER_ENTRY))
        .saturating_add(1 << 20)
}

/// A guardrail a request met, as refusals name it: the camelCase name clients see
/// (`limit` in a problem, the fields of a workspace's `limits`) and the setting that
/// configures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// [`Guardrails::max_archive_bytes`].
    MaxArchiveBytes,
    /// [`Guardrails::max_archive_entries`].
    MaxArchiveEntries,
    /// [`Guardrails::max_unpacked_bytes`].
    MaxUnpackedBytes,
    /// [`Guardrails::daily_run_quota`].
    DailyRunQuota,
    /// [`Guardrails::daily_run_quota_per_user`].
    DailyRunQuotaPerUser,
    /// [`Guardrails::max_workspaces_per_user`].
    MaxWorkspacesPerUser,
}

impl Limit {
    /// Every limit a refusal can name.
    pub const ALL: [Limit; 6] = [
        Limit::MaxArchiveBytes,
        Limit::MaxArchiveEntries,
        Limit::MaxUnpackedBytes,
        Limit::DailyRunQuota,
        Limit::DailyRunQuotaPerUser,
        Limit::MaxWorkspacesPerUser,
    ];

    /// The name clients see, e.g. `maxWorkspacesPerUser`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxArchiveBytes => "maxArchiveBytes",
            Limit::MaxArchiveEntries => "maxArchiveEntries",
            Limit::MaxUnpackedBytes => "maxUnpackedBytes",
            Limit::DailyRunQuota => "dailyRunQuota",
            Limit::DailyRunQuotaPerUser => "dailyRunQuotaPerUser",
            Limit::MaxWorkspacesPerUser => "maxWorkspacesPerUser",
        }
    }

    /// The setting that configures it, e.g. `guardrails.max_workspaces_per_user`.
    pub fn setting(self) -> &'static str {
        match self {
            Limit::MaxArchiveBytes => "guardrails.max_archive_bytes",
            Limit::MaxArchiveEntries => "guardrails.max_archive_entries",
            Limit::MaxUnpackedBytes => "guardrails.max_unpacked_bytes",
            Limit::DailyRunQuota => "guardrails.daily_run_quota",
            Limit::DailyRunQuotaPerUser => "guardrails.daily_run_quota_per_user",
            Limit::MaxWorkspacesPerUser => "guardrails.max_workspaces_per_user",
        }
    }

    /// Its value under `guardrails`.
    pub fn value(self, guardrails: &Guardrails) -> u64 {
        match self {
            Limit::MaxArchiveBytes => guardrails.max_archive_bytes,
            Limit::MaxArchiveEntries => guardrails.max_archive_entries,
            Limit::MaxUnpackedBytes => guardrails.max_unpacked_bytes,
            Limit::DailyRunQuota => u64::from(guardrails.daily_run_quota),
            Limit::DailyRunQuotaPerUser => u64::from(guardrails.daily_run_quota_per_user),
            Limit::MaxWorkspacesPerUser => u64::from(guardrails.max_workspaces_per_user),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
        assert_eq!(g.max_workspaces_per_user, 10);
        assert_eq!(g.daily_run_quota_per_user, 200);
        assert_eq!(g.max_archive_entries, 100_000);
        assert_eq!(g.max_unpacked_bytes, 1024 * 1024 * 1024);
    }

    #[test]
    fn every_limit_has_a_camel_case_name_and_its_setting() {
        let g = Guardrails::default();
        for limit in Limit::ALL {
            let snake: String = limit
                .as_str()
                .chars()
                .flat_map(|c| {
                    let lower = c.to_ascii_lowercase();
                    if c.is_ascii_uppercase() {
                        vec!['_', lower]
                    } else {
                        vec![lower]
                    }
                })
                .collect();
            assert_eq!(limit.setting(), format!("guardrails.{snake}"));
            assert!(limit.value(&g) > 0, "{limit}");
        }
    }

    #[test]
    fn the_archive_stream_cap_allows_the_content_and_each_entry_its_headers() {
        let g = Guardrails {
            max_unpacked_bytes: 1000,
            max_archive_entries: 10,
            ..Guardrails::default()
        };
        assert_eq!(g.archive_stream_cap(), 1000 + 10 * 4096 + (1 << 20));
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
