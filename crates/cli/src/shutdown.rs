//! Stopping a server gracefully: what `tlao dev` and `tlao serve` do on SIGTERM or
//! Ctrl-C (SIGINT).
//!
//! 1. The server stops leasing: its dispatcher starts no more workers, and workers'
//!    waiting lease requests answer that nothing is leasable. Queued runs stay queued
//!    for another instance or the next start.
//! 2. The runs whose workers this server started may finish, for the grace period
//!    (`server.shutdown_grace_seconds`, 30 s by default).
//! 3. Those still running then are cancelled, each with a log line saying why, and
//!    their workers are told to stop (at their next report); those still running a
//!    few seconds later are stopped by the launcher, with their process trees.
//! 4. The HTTP server stops (open requests get a few seconds) and the process exits 0.
//!
//! A second signal skips what is left of the wait: the runs still running are
//! cancelled at once, their processes ended, and the process exits. No run this server
//! started is left `running` by either kind of stop. Runs leased by workers of their
//! own (`tlao worker`, one ECS task per run) are not this server's to end: they go on
//! and report to any instance.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tlao_domain::{EventPayload, LogStream, Reported, Usage};
use tlao_orchestrator::{Completion, LaunchedRuns, Services};
use tokio::signal::unix::{SignalKind, signal};

use crate::server::Background;

/// How often the stop looks at the runs it waits for.
const POLL: Duration = Duration::from_millis(100);
/// After cancelling, how long workers get to see it and exit before their process
/// trees are ended for them (a quiet worker reports within its heartbeat interval).
const AFTER_CANCEL: Duration = Duration::from_secs(3);

/// Serves until SIGTERM or SIGINT, then stops as the module says.
pub async fn serve_until_signalled(
    http: actix_web::dev::Server,
    services: Arc<Services>,
    background: Background,
    grace: Duration,
) -> anyhow::Result<()> {
    let handle = http.handle();
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut http = std::pin::pin!(http);
    tokio::select! {
        served = &mut http => return served.context("the HTTP server stopped with an error"),
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    let second_signal = async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    let stop = Stop {
        services,
        launched: background.launched.unwrap_or_default(),
    };
    stop.drain(grace, second_signal).await;
    // What is left of the workers this server started, and of everything they started,
    // ends now rather than with the process.
    if let Some(launcher) = &background.launcher {
        match launcher.stop_all().await {
            Ok(0) => {}
            Ok(stopped) => tracing::warn!(
                operation = "shutdown",
                stopped,
                "stopped the workers still running"
            ),
            Err(error) => {
                tracing::error!(operation = "shutdown", %error, "could not stop the workers still running")
            }
        }
    }
    // The server future runs the stop it is asked for: drive both.
    let ((), served) = tokio::join!(handle.stop(true), http);
    served.context("the HTTP server stopped with an error")
}

/// A server on its way out.
struct Stop {
    services: Arc<Services>,
    launched: LaunchedRuns,
}

impl Stop {
    /// Steps 1 to 3; a second signal cuts the waits short.
    async fn drain(&self, grace: Duration, second_signal: impl Future<Output = ()>) {
        self.services.core.stop_leasing();
        let running = self.launched.len();
        tracing::info!(
            operation = "shutdown",
            running,
            grace_seconds = grace.as_secs(),
            "stopping: no more runs are leased; running runs may finish"
        );
        if running > 0 {
            eprintln!(
                "Stopping: waiting up to {} s for {running} running run(s) to finish (Ctrl-C again to stop now)",
                grace.as_secs()
            );
        }
        let mut second_signal = std::pin::pin!(second_signal);
        let hurried = tokio::select! {
            () = self.until_no_run_is_running(grace) => false,
            () = &mut second_signal => true,
        };
        let reason = if hurried {
            "the server was stopped at once (a second signal)".to_owned()
        } else {
            format!(
                "the server is stopping and the run did not finish within its {} s grace period",
                grace.as_secs()
            )
        };
        self.cancel_the_rest(&reason).await;
        if !hurried {
            tokio::select! {
                () = self.until_no_run_is_running(AFTER_CANCEL) => {}
                () = &mut second_signal => {}
            }
        }
    }

    /// Waits until every worker this server started exited, or `limit` passed.
    async fn until_no_run_is_running(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.launched.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
    }

    /// Cancels every run whose worker is still running, saying why in its log.
    async fn cancel_the_rest(&self, reason: &str) {
        let workers = &self.services.workers;
        for (run_id, lease_id) in self.launched.snapshot() {
            let line = EventPayload::Log {
                stream: LogStream::System,
                text: format!("run cancelled: {reason}"),
            };
            // Best effort: the line explains the cancel; the cancel is what matters.
            let _ = workers
                .report(&run_id, &lease_id, None, vec![Reported::Event(line)])
                .await;
            match workers
                .complete_if_running(&run_id, &lease_id, Completion::Cancelled, Usage::Unmeasured)
                .await
            {
                Ok(Some(run)) => tracing::warn!(
                    workspace_id = %run.workspace_id, run_id = %run_id, operation = "shutdown",
                    %reason, "run cancelled"
                ),
                Ok(None) => {}
                Err(error) => tracing::error!(
                    run_id = %run_id, operation = "shutdown", %error,
                    "could not cancel a run of a stopping server"
                ),
            }
        }
    }
}
