//! Following a run live (`tlao run`, `tlao logs --follow`): the SDK's resumable event
//! stream ([`tlao_sdk::EventStream`]), which reconnects after drops and server restarts
//! and yields every event once, printed as it arrives. Log lines go to stdout exactly as
//! the run stores them; status changes, progress and artifacts go to stderr as notes.
//! A token that expires mid-stream is renewed (when a key is stored) and the stream
//! resumes where it was.

use anyhow::Context as _;
use serde_json::json;
use tlao_domain::RunId;
use tlao_sdk::wire::{RunEventMessage, RunStatusName};
use tlao_sdk::{EventStreamError, EventStreamItem};

use crate::context::Context;
use crate::output::{self, status_style};

/// How often a stream is reopened with a renewed token before giving up.
const MAX_RENEWALS: u32 = 3;

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Log lines on stdout, the rest as notes on stderr.
    Human,
    /// Every event as one line of JSON on stdout, then the end.
    JsonLines,
    /// Nothing: only the final status matters.
    Quiet,
}

/// Follows `run_id` from after sequence number `after` to its end; returns the final
/// status.
pub async fn follow(
    ctx: &Context,
    run_id: &RunId,
    after: u64,
    display: Display,
) -> anyhow::Result<RunStatusName> {
    let mut stream = ctx
        .client
        .run_events(run_id, after)
        .await
        .context("opening the run's event stream")?;
    let mut renewals = 0;
    loop {
        match stream.next().await {
            Some(Ok(EventStreamItem::Event(event))) => show(&event, display)?,
            Some(Ok(EventStreamItem::End(end))) => {
                if display == Display::JsonLines {
                    output::print_json_line(
                        &json!({"type": "end", "status": end.status, "lastSeq": end.last_seq}),
                    )?;
                }
                return Ok(end.status);
            }
            Some(Err(EventStreamError::Api { status: 401, .. }))
                if renewals < MAX_RENEWALS && ctx.client.can_renew() =>
            {
                renewals += 1;
                ctx.client
                    .renew()
                    .await
                    .context("renewing the session token")?;
                let resume = stream.last_seq();
                stream = ctx
                    .client
                    .run_events(run_id, resume)
                    .await
                    .context("reopening the run's event stream")?;
            }
            Some(Err(error)) => {
                return Err(anyhow::Error::new(error).context(format!("following run {run_id}")));
            }
            None => anyhow::bail!("the event stream of run {run_id} ended before the run did"),
        }
    }
}

/// One compact line per tool call, when it is over (`✓ edit Write a.md (a.md) +3 -0`);
/// `None` for the updates before (pending, in progress).
fn tool_call_line(call: &tlao_sdk::wire::ToolCallView) -> Option<String> {
    use tlao_sdk::wire::ToolStatusName;
    let mark = match call.status {
        ToolStatusName::Completed => "✓",
        ToolStatusName::Failed => "✗",
        ToolStatusName::Pending | ToolStatusName::InProgress => return None,
    };
    let mut line = format!("{mark} {} {}", call.kind, output::printable(&call.title));
    if !call.paths.is_empty() {
        line.push_str(&format!(" ({})", output::printable(&call.paths.join(", "))));
    }
    if let Some(code) = call.exit_code {
        line.push_str(&format!(" exit {code}"));
    }
    if let Some(diff) = &call.diff {
        line.push_str(&format!(" {}", output::printable(diff)));
    }
    Some(line)
}

fn show(event: &RunEventMessage, display: Display) -> anyhow::Result<()> {
    match display {
        Display::Quiet => Ok(()),
        Display::JsonLines => output::print_json_line(event),
        Display::Human => {
            match event {
                RunEventMessage::Log { text, .. } => {
                    use std::io::Write;
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "{}", output::printable(text))?;
                    stdout.flush()?;
                }
                RunEventMessage::Status { status, .. } => {
                    let styled = status_style(*status).for_stderr().apply_to(status.as_str());
                    output::note(format!("● {styled}"));
                }
                RunEventMessage::Progress {
                    message, percent, ..
                } => match percent {
                    Some(p) => output::note(format!("… {message} ({p}%)")),
                    None => output::note(format!("… {message}")),
                },
                RunEventMessage::Artifact {
                    artifact_id,
                    name,
                    artifact_type,
                    ..
                } => output::note(format!("artifact {name} ({artifact_type}) {artifact_id}")),
                RunEventMessage::Truncated { max_log_bytes, .. } => output::warn(format!(
                    "the log reached its cap of {}; later lines are counted, not kept",
                    output::human_bytes(*max_log_bytes)
                )),
                RunEventMessage::ToolCall { call, .. } => {
                    if let Some(line) = tool_call_line(call) {
                        output::note(line);
                    }
                }
                RunEventMessage::Plan { entries, .. } => {
                    for entry in entries {
                        let mark = match entry.status {
                            tlao_sdk::wire::PlanStatusName::Completed => "[x]",
                            tlao_sdk::wire::PlanStatusName::InProgress => "[~]",
                            tlao_sdk::wire::PlanStatusName::Pending => "[ ]",
                        };
                        output::note(format!("{mark} {}", output::printable(&entry.content)));
                    }
                }
                RunEventMessage::Message { text, .. } => {
                    use std::io::Write;
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "{}", output::printable(text))?;
                    stdout.flush()?;
                }
                RunEventMessage::Usage { usage, .. } => match usage {
                    tlao_sdk::wire::UsageView::Unmeasured => {}
                    tlao_sdk::wire::UsageView::Reported { summary, .. } => {
                        output::note(format!("usage: {}", output::printable(summary)))
                    }
                },
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlao_sdk::wire::{ToolCallView, ToolKindName, ToolStatusName};

    #[test]
    fn a_tool_call_is_one_line_when_it_is_over() {
        let mut call = ToolCallView {
            id: "c1".into(),
            title: "Write NEW_FILE.md".into(),
            kind: ToolKindName::Edit,
            status: ToolStatusName::InProgress,
            paths: vec!["NEW_FILE.md".into()],
            exit_code: None,
            diff: Some("+3 -0".into()),
        };
        assert_eq!(tool_call_line(&call), None);
        call.status = ToolStatusName::Completed;
        assert_eq!(
            tool_call_line(&call).as_deref(),
            Some("✓ edit Write NEW_FILE.md (NEW_FILE.md) +3 -0")
        );
        call.status = ToolStatusName::Failed;
        call.kind = ToolKindName::Execute;
        call.paths.clear();
        call.diff = None;
        call.exit_code = Some(2);
        call.title = "cargo test".into();
        assert_eq!(
            tool_call_line(&call).as_deref(),
            Some("✗ execute cargo test exit 2")
        );
    }
}
