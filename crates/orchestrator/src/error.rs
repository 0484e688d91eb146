//! The errors of the use cases. They say what went wrong in domain terms; the API alone
//! decides which HTTP status each becomes.

use tlao_domain::{Fenced, Limit, RunId, TaskType, ValidationErrors};

use crate::store::StoreError;

/// Why a use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is invalid; every bad field is listed.
    #[error("invalid input: {0}")]
    Invalid(ValidationErrors),
    /// The caller could not be identified (bad API key, unknown user).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// What kind of thing (`run`, `task`, ...).
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The request conflicts with the current state (a finished run cancelled, an
    /// idempotency key reused with another body, a name taken).
    #[error("{0}")]
    Conflict(String),
    /// A worker wrote under a lease that may not write the run any more: the run ended
    /// or another lease holds it (fencing). Nothing was written; the worker must stop.
    #[error("run {run_id} may not be written under this lease: {fenced}; stop working on it")]
    Fenced {
        /// The run.
        run_id: RunId,
        /// Why the lease may not write it.
        fenced: Fenced,
    },
    /// An upload is larger than allowed.
    #[error("the upload exceeds the limit of {max_bytes} bytes")]
    TooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// No registered executor serves the task type (or the requested one does not).
    #[error("{message}")]
    NoExecutor {
        /// The task type that could not be served.
        task_type: TaskType,
        /// What was looked for and what exists.
        message: String,
    },
    /// A daily run quota is used up: the workspace's ([`Limit::DailyRunQuota`]) or the
    /// caller's across their workspaces ([`Limit::DailyRunQuotaPerUser`]).
    #[error("{}", quota_message(*.limit, *.quota))]
    QuotaExceeded {
        /// Which quota.
        limit: Limit,
        /// The quota.
        quota: u32,
        /// Seconds until the quota resets.
        retry_after_seconds: u64,
    },
    /// A limit that time does not lift was met: the workspaces a user may own, or an
    /// archive's entries or unpacked size.
    #[error("{}", limit_message(*.limit, *.max))]
    LimitReached {
        /// Which limit.
        limit: Limit,
        /// Its value.
        max: u64,
    },
    /// Storage kept failing through every retry.
    #[error("storage is unavailable, try again shortly")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an unexpected failure.
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

fn quota_message(limit: Limit, quota: u32) -> String {
    match limit {
        Limit::DailyRunQuotaPerUser => format!(
            "you have used your daily quota of {quota} runs across your workspaces ({}); it resets at the next UTC midnight",
            limit.setting()
        ),
        _ => format!(
            "the workspace has used its daily quota of {quota} runs; it resets at the next UTC midnight"
        ),
    }
}

fn limit_message(limit: Limit, max: u64) -> String {
    match limit {
        Limit::MaxWorkspacesPerUser => format!(
            "you own {max} workspaces, the most one user may own ({}); use one of them or ask an administrator to raise the limit",
            limit.setting()
        ),
        Limit::MaxArchiveEntries => format!(
            "the archive has more than {max} entries ({}); leave out generated files and dependencies",
            limit.setting()
        ),
        Limit::MaxUnpackedBytes => format!(
            "the archive unpacks to more than {max} bytes ({}); leave out build outputs and dependencies",
            limit.setting()
        ),
        Limit::MaxArchiveBytes => format!(
            "the archive exceeds the limit of {max} bytes ({})",
            limit.setting()
        ),
        Limit::DailyRunQuota | Limit::DailyRunQuotaPerUser => {
            format!("the limit {limit} of {max} was reached")
        }
    }
}

impl ServiceError {
    /// A `NotFound` for `what` with `id`.
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        ServiceError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// A single-field validation error.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(ValidationErrors::single(field, message))
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(e) => ServiceError::Unavailable(e.into()),
            other => ServiceError::Internal(other.into()),
        }
    }
}

impl From<crate::codec::CodecError> for ServiceError {
    fn from(error: crate::codec::CodecError) -> Self {
        ServiceError::Internal(error.into())
    }
}

impl From<tlao_ports::BlobError> for ServiceError {
    fn from(error: tlao_ports::BlobError) -> Self {
        if error.is_transient() {
            ServiceError::Unavailable(error.into())
        } else {
            ServiceError::Internal(error.into())
        }
    }
}
