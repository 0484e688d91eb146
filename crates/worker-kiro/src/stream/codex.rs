//! Codex's `codex exec --json` events.
//!
//! - `thread.started`, `turn.started`;
//! - `item.started` / `item.updated` / `item.completed` with an `item` of type
//!   `command_execution` (`command`, `exit_code`, `status` → an execute tool call),
//!   `file_change` (`changes: [{path, kind}]` → an edit tool call), `mcp_tool_call`,
//!   `web_search`, `agent_message` (→ message), `todo_list` (`items: [{text,
//!   completed}]` → plan), `reasoning`, `error`;
//! - `turn.completed {usage}`: tokens only, no cost (→ usage, summed over turns);
//! - `turn.failed {error: {message}}` (→ the run's error), `error {message}` (a
//!   reconnect or a fatal error, → a log line).

use serde_json::Value;
use tlao_domain::{EventPayload, PlanEntry, PlanStatus, ToolCall, ToolKind, ToolStatus, Usage};

use super::{
    Parser, agent_failed, count, message, refused_credentials, short, system, text, token_usage,
};

const AGENT: &str = "Codex";
const LOGIN_FIX: &str = "log in on the worker (`codex login`) or grant the executor its provider's API key variable (e.g. OPENAI_API_KEY) in sandbox.env";

/// Reads one event.
pub(crate) fn event(parser: &mut Parser, value: &Value, out: &mut Vec<EventPayload>) {
    match text(value, "type") {
        Some(kind @ ("item.started" | "item.updated" | "item.completed")) => {
            if let Some(item) = value.get("item") {
                self::item(parser, item, kind == "item.completed", out);
            }
        }
        Some("turn.completed") => {
            if let Some(usage) = value.get("usage") {
                turn_usage(parser, usage, out);
            }
        }
        Some("turn.failed") => {
            let said = value
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("the turn failed");
            parser.fail(classify(said));
        }
        Some("error") => {
            system(
                format!("{AGENT}: {}", text(value, "message").unwrap_or("error")),
                out,
            );
        }
        _ => {}
    }
}

/// A refusal of credentials, or another failure.
fn classify(said: &str) -> super::RunError {
    let refused = ["401", "403", "Unauthorized", "Forbidden", "invalid_api_key"]
        .iter()
        .any(|needle| said.contains(needle));
    if refused {
        refused_credentials(AGENT, said, LOGIN_FIX)
    } else {
        agent_failed(AGENT, said)
    }
}

fn item(parser: &mut Parser, item: &Value, completed: bool, out: &mut Vec<EventPayload>) {
    let id = text(item, "id").unwrap_or("").to_owned();
    let status = match text(item, "status") {
        Some("completed") => ToolStatus::Completed,
        Some("failed" | "declined") => ToolStatus::Failed,
        _ if completed => ToolStatus::Completed,
        _ => ToolStatus::InProgress,
    };
    let call = match text(item, "type") {
        Some("command_execution") => {
            let exit_code = item
                .get("exit_code")
                .and_then(Value::as_i64)
                .and_then(|c| i32::try_from(c).ok());
            let status = match exit_code {
                Some(code) if code != 0 && completed => ToolStatus::Failed,
                _ => status,
            };
            ToolCall {
                id,
                title: short(text(item, "command").unwrap_or("command"), 80),
                kind: ToolKind::Execute,
                status,
                paths: Vec::new(),
                exit_code,
                diff: None,
            }
        }
        Some("file_change") => {
            let changes = item
                .get("changes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let paths: Vec<String> = changes
                .iter()
                .filter_map(|c| text(c, "path"))
                .map(|p| parser.relative(p))
                .collect();
            let diff: Vec<String> = changes
                .iter()
                .filter_map(|c| {
                    Some(format!(
                        "{} {}",
                        text(c, "kind")?,
                        parser.relative(text(c, "path")?)
                    ))
                })
                .collect();
            let title = match paths.as_slice() {
                [one] => format!(
                    "{} {one}",
                    changes
                        .first()
                        .and_then(|c| text(c, "kind"))
                        .unwrap_or("edit")
                ),
                many => format!("edit {} files", many.len()),
            };
            ToolCall {
                id,
                title,
                kind: ToolKind::Edit,
                status,
                paths,
                exit_code: None,
                diff: (!diff.is_empty()).then(|| diff.join(", ")),
            }
        }
        Some("mcp_tool_call") => ToolCall {
            id,
            title: format!(
                "{}.{}",
                text(item, "server").unwrap_or("mcp"),
                text(item, "tool").unwrap_or("tool")
            ),
            kind: ToolKind::Other,
            status,
            paths: Vec::new(),
            exit_code: None,
            diff: None,
        },
        Some("web_search") => ToolCall {
            id,
            title: format!("search {}", short(text(item, "query").unwrap_or(""), 80)),
            kind: ToolKind::Fetch,
            status,
            paths: Vec::new(),
            exit_code: None,
            diff: None,
        },
        Some("agent_message") => {
            if completed {
                message(text(item, "text").unwrap_or("").to_owned(), out);
            }
            return;
        }
        Some("todo_list") => {
            let entries = item
                .get("items")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|entry| PlanEntry {
                            content: text(entry, "text").unwrap_or("").to_owned(),
                            status: if entry.get("completed").and_then(Value::as_bool) == Some(true)
                            {
                                PlanStatus::Completed
                            } else {
                                PlanStatus::Pending
                            },
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(EventPayload::Plan { entries });
            return;
        }
        Some("error") => {
            system(
                format!("{AGENT}: {}", text(item, "message").unwrap_or("error")),
                out,
            );
            return;
        }
        _ => return,
    };
    if call.status == ToolStatus::InProgress {
        parser.started(call, out);
    } else {
        let fallback = call.clone();
        parser.ended(&call.id.clone(), || fallback, |c| *c = call, out);
    }
}

/// Adds a turn's tokens to what earlier turns reported.
fn turn_usage(parser: &mut Parser, usage: &Value, out: &mut Vec<EventPayload>) {
    let add = |earlier: Option<u64>, now: Option<u64>| match (earlier, now) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    let (mut input, mut output, mut cached) = (
        count(usage, "input_tokens"),
        count(usage, "output_tokens"),
        count(usage, "cached_input_tokens"),
    );
    if let Some(Usage::Reported {
        input_tokens,
        output_tokens,
        cached_tokens,
        ..
    }) = &parser.usage
    {
        input = add(*input_tokens, input);
        output = add(*output_tokens, output);
        cached = add(*cached_tokens, cached);
    }
    parser.report_usage(token_usage(input, output, cached, None), out);
}

#[cfg(test)]
mod tests {
    use tlao_domain::{RunErrorCode, StreamFormat};

    use super::*;
    use crate::stream::tests::{messages, parse_fixture, tool_calls};

    /// Recorded from Codex 0.171.0 against tests/fake_models (apply_patch, then text).
    const WRITE: &str = include_str!("fixtures/codex-write.ndjson");
    /// Recorded likewise with the fake answering 401.
    const REFUSED: &str = include_str!("fixtures/codex-401.ndjson");
    /// Not recorded (the fake asks for no command or plan): the shapes Codex 0.171.0's
    /// exec JSON events take for them.
    const COMMAND_AND_PLAN: &str = r#"{"type":"item.started","item":{"id":"item_1","type":"todo_list","items":[{"text":"look","completed":true},{"text":"test","completed":false}]}}
{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":"bash -lc 'cargo test'","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"bash -lc 'cargo test'","aggregated_output":"error","exit_code":101,"status":"failed"}}
{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":5}}
{"type":"turn.completed","usage":{"input_tokens":20,"cached_input_tokens":4,"output_tokens":6}}"#;

    #[test]
    fn an_apply_patch_becomes_an_edit_tool_call_a_message_and_token_usage() {
        let (events, parser) = parse_fixture(StreamFormat::Codex, "/tmp/rec/cx", WRITE);
        let calls = tool_calls(&events);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].status, ToolStatus::InProgress);
        assert_eq!(calls[1].status, ToolStatus::Completed);
        assert_eq!(calls[1].id, "item_0");
        assert_eq!(calls[1].kind, ToolKind::Edit);
        assert_eq!(calls[1].paths, ["agent-note.txt"]);
        assert_eq!(calls[1].title, "add agent-note.txt");
        assert_eq!(messages(&events), ["I wrote agent-note.txt as asked."]);
        let Some(Usage::Reported {
            input_tokens,
            output_tokens,
            cached_tokens,
            cost,
            ..
        }) = parser.usage.clone()
        else {
            panic!("no usage")
        };
        assert_eq!(
            (input_tokens, output_tokens, cached_tokens),
            (Some(400), Some(80), Some(100))
        );
        assert_eq!(cost, None, "Codex reports no cost");
        assert!(parser.error.is_none());
    }

    #[test]
    fn a_refused_key_is_executor_unavailable() {
        let (events, parser) = parse_fixture(StreamFormat::Codex, "/w", REFUSED);
        let error = parser.error.unwrap();
        assert_eq!(error.code, RunErrorCode::ExecutorUnavailable);
        assert!(
            error.message.contains("401 Unauthorized"),
            "{}",
            error.message
        );
        // The reconnects are log lines.
        assert!(
            events
                .iter()
                .filter(|e| matches!(e, EventPayload::Log { .. }))
                .count()
                >= 5
        );
    }

    #[test]
    fn commands_keep_their_exit_code_todo_lists_are_plans_and_turns_add_up() {
        let (events, parser) = parse_fixture(StreamFormat::Codex, "/w", COMMAND_AND_PLAN);
        let plan = events.iter().find_map(|e| match e {
            EventPayload::Plan { entries } => Some(entries),
            _ => None,
        });
        let plan = plan.unwrap();
        assert_eq!(plan[0].status, PlanStatus::Completed);
        assert_eq!(plan[1].status, PlanStatus::Pending);
        let calls = tool_calls(&events);
        assert_eq!(calls[1].status, ToolStatus::Failed);
        assert_eq!(calls[1].exit_code, Some(101));
        assert_eq!(calls[1].kind, ToolKind::Execute);
        let Some(Usage::Reported {
            input_tokens,
            cached_tokens,
            ..
        }) = parser.usage
        else {
            panic!()
        };
        assert_eq!((input_tokens, cached_tokens), (Some(30), Some(4)));
    }
}
