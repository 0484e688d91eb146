//! Claude Code's `--output-format stream-json --verbose` events.
//!
//! - `system` (`init`; `api_retry` with the HTTP status of a failed model call: a 401 or
//!   403 is fatal — Claude Code would retry it for minutes);
//! - `assistant`: a message whose `content` holds `text` (→ message), `tool_use` (→ a
//!   started tool call; `TodoWrite`'s todos are also the plan) and `thinking` blocks; with `is_api_error_message` it is the
//!   model API's error, not the agent's text;
//! - `user`: `tool_result` blocks (→ the tool call completed, or failed with `is_error`);
//! - `result`: the end — `usage` tokens and `total_cost_usd` (→ usage), `is_error` with
//!   `api_error_status`, `subtype` (`error_max_turns`, ...) and the `result` text.

use serde_json::Value;
use tlao_domain::{Cost, EventPayload, PlanEntry, PlanStatus, ToolCall, ToolKind};

use super::{
    Parser, agent_failed, count, lines_summary, message, refused_credentials, short, started_call,
    system, text, token_usage,
};

const AGENT: &str = "Claude Code";
const LOGIN_FIX: &str = "log in on the worker (run `claude` and /login) or grant the executor ANTHROPIC_API_KEY in sandbox.env";

/// Reads one event.
pub(crate) fn event(parser: &mut Parser, value: &Value, out: &mut Vec<EventPayload>) {
    match text(value, "type") {
        Some("system") => system_event(parser, value, out),
        Some("assistant") => assistant(parser, value, out),
        Some("user") => user(parser, value, out),
        Some("result") => result(parser, value, out),
        _ => {}
    }
}

fn system_event(parser: &mut Parser, value: &Value, out: &mut Vec<EventPayload>) {
    match text(value, "subtype") {
        Some("init") => {
            let model = text(value, "model").unwrap_or("?");
            let mode = text(value, "permissionMode").unwrap_or("?");
            system(
                format!("{AGENT} started: model {model}, permission mode {mode}"),
                out,
            );
        }
        Some("api_retry") => {
            let status = value.get("error_status").and_then(Value::as_u64);
            let error = text(value, "error").unwrap_or("unknown");
            let attempt = count(value, "attempt").unwrap_or(0);
            let max = count(value, "max_retries").unwrap_or(0);
            let status_text = status.map_or("no status".to_owned(), |s| format!("HTTP {s}"));
            system(
                format!(
                    "{AGENT}: model call failed ({status_text}, {error}); retry {attempt} of {max}"
                ),
                out,
            );
            if matches!(status, Some(401 | 403)) {
                parser.fail(refused_credentials(
                    AGENT,
                    &format!("the model API answered {status_text} ({error})"),
                    LOGIN_FIX,
                ));
                parser.fatal = true;
            }
        }
        _ => {}
    }
}

fn assistant(parser: &mut Parser, value: &Value, out: &mut Vec<EventPayload>) {
    if value.get("is_api_error_message").and_then(Value::as_bool) == Some(true) {
        // The model API's error, dressed as a message; the result says it again.
        return;
    }
    let Some(blocks) = value.pointer("/message/content").and_then(Value::as_array) else {
        return;
    };
    for block in blocks {
        match text(block, "type") {
            Some("text") => message(text(block, "text").unwrap_or("").to_owned(), out),
            Some("tool_use") => {
                let call = tool_use(parser, block);
                parser.started(call, out);
                if text(block, "name") == Some("TodoWrite") {
                    todo_plan(block, out);
                }
            }
            _ => {}
        }
    }
}

fn user(parser: &mut Parser, value: &Value, out: &mut Vec<EventPayload>) {
    let Some(blocks) = value.pointer("/message/content").and_then(Value::as_array) else {
        return;
    };
    for block in blocks {
        if text(block, "type") != Some("tool_result") {
            continue;
        }
        let id = text(block, "tool_use_id").unwrap_or("");
        let failed = block.get("is_error").and_then(Value::as_bool) == Some(true);
        parser.result(id, failed, out);
    }
}

fn result(parser: &mut Parser, value: &Value, out: &mut Vec<EventPayload>) {
    let usage = value.get("usage").unwrap_or(&Value::Null);
    let cost = value
        .get("total_cost_usd")
        .and_then(Value::as_number)
        .map(|amount| Cost {
            amount: amount.to_string(),
            currency: "USD".to_owned(),
        });
    let input = count(usage, "input_tokens");
    let output = count(usage, "output_tokens");
    let cached = count(usage, "cache_read_input_tokens");
    if input.is_some() || output.is_some() || cost.is_some() {
        parser.report_usage(token_usage(input, output, cached, cost), out);
    }
    if value.get("is_error").and_then(Value::as_bool) != Some(true) {
        return;
    }
    let said = text(value, "result")
        .map(str::to_owned)
        .or_else(|| {
            value.get("errors").and_then(Value::as_array).map(|errors| {
                errors
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .unwrap_or_default();
    let status = value.get("api_error_status").and_then(Value::as_u64);
    let subtype = text(value, "subtype").unwrap_or("");
    let error = match (status, subtype) {
        (Some(401 | 403), _) => refused_credentials(
            AGENT,
            &format!(
                "the model API answered HTTP {} ({said})",
                status.unwrap_or(0)
            ),
            LOGIN_FIX,
        ),
        (_, "error_max_turns") => {
            agent_failed(AGENT, &format!("it reached its turn limit ({said})"))
        }
        (Some(status), _) => agent_failed(
            AGENT,
            &format!("the model API answered HTTP {status}: {said}"),
        ),
        (None, _) if said.is_empty() => {
            agent_failed(AGENT, &format!("it reported an error ({subtype})"))
        }
        (None, _) => agent_failed(AGENT, &said),
    };
    parser.fail(error);
}

/// The plan a `TodoWrite` tool call sets: `input.todos[] {content, status}`.
fn todo_plan(block: &Value, out: &mut Vec<EventPayload>) {
    let Some(todos) = block.pointer("/input/todos").and_then(Value::as_array) else {
        return;
    };
    let entries = todos
        .iter()
        .map(|todo| PlanEntry {
            content: text(todo, "content").unwrap_or("").to_owned(),
            status: match text(todo, "status") {
                Some("completed") => PlanStatus::Completed,
                Some("in_progress") => PlanStatus::InProgress,
                _ => PlanStatus::Pending,
            },
        })
        .collect();
    out.push(EventPayload::Plan { entries });
}

/// A started tool call of a `tool_use` block.
fn tool_use(parser: &Parser, block: &Value) -> ToolCall {
    let name = text(block, "name").unwrap_or("tool");
    let input = block.get("input").unwrap_or(&Value::Null);
    let path = ["file_path", "notebook_path", "path"]
        .iter()
        .find_map(|key| text(input, key))
        .map(|p| parser.relative(p));
    let kind = match name {
        "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => ToolKind::Edit,
        "Read" => ToolKind::Read,
        "Bash" | "BashOutput" | "KillShell" => ToolKind::Execute,
        "Grep" | "Glob" | "LS" | "ToolSearch" => ToolKind::Search,
        "WebFetch" | "WebSearch" => ToolKind::Fetch,
        _ => ToolKind::Other,
    };
    let detail = match name {
        "Bash" => text(input, "command").map(|c| short(c, 80)),
        "Grep" | "Glob" => text(input, "pattern").map(|p| short(p, 80)),
        "WebFetch" => text(input, "url").map(|u| short(u, 80)),
        "WebSearch" => text(input, "query").map(|q| short(q, 80)),
        "Task" => text(input, "description").map(|d| short(d, 80)),
        _ => path.clone(),
    };
    let diff = match name {
        "Write" => lines_summary(None, text(input, "content")),
        "Edit" => lines_summary(text(input, "old_string"), text(input, "new_string")),
        _ => None,
    };
    started_call(
        text(block, "id").unwrap_or(""),
        name,
        detail,
        kind,
        path,
        diff,
    )
}

#[cfg(test)]
mod tests {
    use tlao_domain::{RunErrorCode, StreamFormat, ToolStatus, Usage};

    use super::*;
    use crate::stream::tests::{messages, parse_fixture, tool_calls};

    /// Recorded from Claude Code 2.1.332 against tests/fake_models (a Write, then text).
    const WRITE: &str = include_str!("fixtures/claude-write.ndjson");
    /// Recorded likewise with the fake answering 401 (CLAUDE_CODE_MAX_RETRIES=0).
    const REFUSED: &str = include_str!("fixtures/claude-401.ndjson");
    /// Recorded likewise, the fake answering 401, default retries (stopped by hand).
    const RETRYING: &str = r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":570,"error_status":401,"error":"authentication_failed","session_id":"7963d1a9-2622-4811-82bc-f2cb4b0170ce","uuid":"fb17c440-e0e0-41ce-8487-a3db5104388d"}"#;

    #[test]
    fn a_write_becomes_a_tool_call_messages_and_usage_with_cost() {
        let (events, parser) = parse_fixture(StreamFormat::Claude, "/tmp/rec/claude", WRITE);
        let calls = tool_calls(&events);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].id, "toolu_fake_0001");
        assert_eq!(calls[0].status, ToolStatus::InProgress);
        assert_eq!(calls[0].kind, ToolKind::Edit);
        assert_eq!(calls[0].title, "Write agent-note.txt");
        assert_eq!(calls[0].paths, ["agent-note.txt"]);
        assert_eq!(calls[0].diff.as_deref(), Some("+1 lines"));
        assert_eq!(calls[1].id, calls[0].id);
        assert_eq!(calls[1].status, ToolStatus::Completed);
        assert_eq!(
            messages(&events),
            ["I will write the file.", "I wrote agent-note.txt as asked."]
        );
        let Some(Usage::Reported {
            input_tokens,
            output_tokens,
            cached_tokens,
            cost,
            summary,
            ..
        }) = parser.usage.clone()
        else {
            panic!("no usage: {:?}", parser.usage)
        };
        assert_eq!(
            (input_tokens, output_tokens, cached_tokens),
            (Some(240), Some(60), Some(20))
        );
        let cost = cost.unwrap();
        assert_eq!(
            (cost.amount.as_str(), cost.currency.as_str()),
            ("0.002164", "USD")
        );
        assert_eq!(
            summary,
            "240 input / 60 output tokens, 20 cached, 0.002164 USD"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, EventPayload::Usage { .. }))
        );
        assert!(parser.error.is_none());
        assert!(!parser.fatal);
        // No raw JSON reached the log: only the worker's own summary of `init`.
        let logs: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, EventPayload::Log { .. }))
            .collect();
        assert_eq!(logs.len(), 1, "{logs:?}");
    }

    #[test]
    fn a_refused_key_is_executor_unavailable_and_no_message() {
        let (events, parser) = parse_fixture(StreamFormat::Claude, "/tmp/rec/c2", REFUSED);
        let error = parser.error.clone().unwrap();
        assert_eq!(error.code, RunErrorCode::ExecutorUnavailable);
        assert!(error.message.contains("HTTP 401"), "{}", error.message);
        assert!(
            error.message.contains("Invalid API key"),
            "{}",
            error.message
        );
        assert!(messages(&events).is_empty(), "{events:?}");
    }

    #[test]
    fn a_retried_401_stops_the_agent_at_once() {
        let (events, parser) = parse_fixture(StreamFormat::Claude, "/w", RETRYING);
        assert!(parser.fatal);
        assert_eq!(
            parser.error.unwrap().code,
            RunErrorCode::ExecutorUnavailable
        );
        assert!(matches!(&events[0], EventPayload::Log { text, .. } if text.contains("HTTP 401")));
    }

    #[test]
    fn todo_write_is_also_the_plan() {
        // Not recorded (the fake asks for no plan): TodoWrite's input as Claude Code sends it.
        let line = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"TodoWrite","input":{"todos":[{"content":"read","status":"completed","activeForm":"reading"},{"content":"edit","status":"in_progress","activeForm":"editing"},{"content":"test","status":"pending","activeForm":"testing"}]}}]}}"#;
        let (events, _) = parse_fixture(StreamFormat::Claude, "/w", line);
        let plan = events
            .iter()
            .find_map(|e| match e {
                EventPayload::Plan { entries } => Some(entries.clone()),
                _ => None,
            })
            .unwrap();
        let statuses: Vec<_> = plan.iter().map(|e| e.status).collect();
        assert_eq!(
            statuses,
            [
                PlanStatus::Completed,
                PlanStatus::InProgress,
                PlanStatus::Pending
            ]
        );
        assert_eq!(plan[1].content, "edit");
        assert_eq!(tool_calls(&events).len(), 1);
    }

    #[test]
    fn a_turn_limit_is_a_clear_failure() {
        let line = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":3,"total_cost_usd":0.5,"usage":{"input_tokens":1,"output_tokens":2}}"#;
        let (_, parser) = parse_fixture(StreamFormat::Claude, "/w", line);
        let error = parser.error.unwrap();
        assert_eq!(error.code, RunErrorCode::ExecutorFailed);
        assert!(error.message.contains("turn limit"), "{}", error.message);
        assert!(parser.usage.is_some());
    }
}
