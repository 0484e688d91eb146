//! Turning a finished (or unstartable) agent process into an [`ExecutionOutcome`].
//!
//! Shared by the executor kinds: the stderr tail becomes the error message of a failed
//! run (requirement 5.6), a program that cannot be started is `executor_unavailable`,
//! and whatever the agent wrote to its output directory becomes artifacts, also when
//! it failed (partial results help the person reading the failure).

use std::io;
use std::path::Path;

use tlao_domain::{
    EventPayload, EventSink, ExecutionOutcome, ExecutionStatus, LogStream, RunError, RunErrorCode,
    Usage,
};

use crate::outputs::collect_outputs;
use crate::process::Finished;

/// An outcome of `status`, with the transcript, usage and the output directory's files.
pub(crate) fn outcome(
    status: ExecutionStatus,
    logs: String,
    usage: Usage,
    outdir: &Path,
    events: &dyn EventSink,
) -> ExecutionOutcome {
    let artifacts = match collect_outputs(outdir) {
        Ok(artifacts) => artifacts,
        Err(error) => {
            system(
                events,
                format!("cannot list the output directory (out/): {error}"),
            );
            Vec::new()
        }
    };
    ExecutionOutcome {
        status,
        logs,
        artifacts,
        usage,
    }
}

/// A failed outcome before any process ran (nothing to collect but the output dir).
pub(crate) fn failed_early(
    error: RunError,
    outdir: &Path,
    events: &dyn EventSink,
) -> ExecutionOutcome {
    system(events, error.message.clone());
    outcome(
        ExecutionStatus::Failed(error),
        String::new(),
        Usage::Unmeasured,
        outdir,
        events,
    )
}

/// The run error for a program that could not be started.
pub(crate) fn unavailable(program: &str, error: &io::Error, hint: &str) -> RunError {
    let message = match error.kind() {
        io::ErrorKind::NotFound => {
            format!("{program:?} was not found on this worker: {hint}")
        }
        io::ErrorKind::PermissionDenied => {
            format!("{program:?} cannot be executed on this worker (permission denied): {hint}")
        }
        _ => format!("{program:?} could not be started: {error}"),
    };
    RunError {
        code: RunErrorCode::ExecutorUnavailable,
        message,
        exit_code: None,
    }
}

/// The run error of a process that ended badly: `what` (e.g. "kiro-cli failed"), the
/// exit code or signal, then the stderr tail.
pub(crate) fn exit_failure(what: &str, finished: &Finished, stderr_tail: &str) -> RunError {
    let how = match (finished.exit_code(), finished.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended abnormally".to_owned(),
    };
    let message = if stderr_tail.is_empty() {
        format!("{what} ({how}); it printed nothing on stderr")
    } else {
        format!("{what} ({how}):\n{stderr_tail}")
    };
    RunError {
        code: RunErrorCode::ExecutorFailed,
        message,
        exit_code: finished.exit_code(),
    }
}

/// Emits a line from the worker itself.
pub(crate) fn system(events: &dyn EventSink, text: String) {
    events.emit(EventPayload::Log {
        stream: LogStream::System,
        text: crate::ansi::one_line(&text),
    });
}
