//! `tlao logs RUN [--follow]`: a run's kept log lines; with `--follow`, the live event
//! stream to the run's end (resuming across dropped connections and server restarts),
//! exiting like `tlao run` does: 0 when the run completed, 1 otherwise.

use anyhow::Context as _;
use serde_json::json;
use tlao_domain::RunId;

use crate::commands::run::exit_for;
use crate::context::Context;
use crate::errors::Exit;
use crate::follow::{self, Display};
use crate::output;

/// Options of `tlao logs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao logs run_01J...\n  \
    tlao logs run_01J... --follow\n  \
    tlao logs run_01J... --follow --json | jq -c 'select(.type == \"status\")'")]
pub struct LogsArgs {
    /// The run (`run_...`).
    pub id: RunId,
    /// Stream new lines until the run ends; exits 0 when it completed, 1 otherwise.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print JSON: `{"runId","status","logs","logsTruncated"}`, or with --follow one
    /// event per line, then `{"type":"end","status",...}`.
    #[arg(long)]
    pub json: bool,
}

/// `tlao logs`.
pub async fn logs(args: LogsArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    if args.follow {
        let display = if args.json {
            Display::JsonLines
        } else {
            Display::Human
        };
        let status = follow::follow(&ctx, &args.id, 0, display).await?;
        ctx.save_session()?;
        if !args.json {
            let styled = output::status_style(status)
                .for_stderr()
                .apply_to(status.as_str());
            output::note(format!("run {} {styled}", args.id));
        }
        return Ok(exit_for(status));
    }
    let run = ctx
        .client
        .get_run(&args.id)
        .await
        .with_context(|| format!("reading run {}", args.id))?;
    ctx.save_session()?;
    let logs = run.logs.as_ref().map_or("", |logs| logs.as_str());
    if args.json {
        output::print_json(&json!({
            "runId": run.run_id,
            "status": run.status,
            "logs": logs,
            "logsTruncated": run.logs_truncated,
        }))?;
        return Ok(Exit::Success);
    }
    print!("{}", output::printable(logs));
    if run.logs_truncated {
        output::warn(format!(
            "the log was truncated: {} were dropped",
            output::human_bytes(run.dropped_log_bytes)
        ));
    }
    if !run.status.is_terminal() {
        output::note(format!(
            "run {} is {}; `tlao logs --follow {}` streams the rest",
            run.run_id, run.status, run.run_id
        ));
    }
    Ok(Exit::Success)
}
