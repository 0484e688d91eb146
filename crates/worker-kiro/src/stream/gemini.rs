//! Gemini CLI's `--output-format stream-json` events.
//!
//! - `init {session_id, model}`;
//! - `message {role, content, delta?}`: the user's prompt, then the assistant's text in
//!   pieces (→ one message per run of pieces);
//! - `tool_use {tool_name, tool_id, parameters}` (→ a started tool call) and
//!   `tool_result {tool_id, status: success|error, output?, error?}` (→ completed or
//!   failed);
//! - `error {severity, message}` (→ a log line);
//! - `result {status: success|error, error?, stats}`: `stats` has `input_tokens`,
//!   `output_tokens`, `cached` (→ usage, no cost).
//!
//! Exit codes: 41 authentication, 42 bad input, 52 configuration, 53 turn limit, 130
//! cancelled.

use serde_json::Value;
use tlao_domain::{EventPayload, RunError, RunErrorCode, ToolCall, ToolKind};

use super::{
    Parser, agent_failed, count, lines_summary, refused_credentials, short, started_call, system,
    text, token_usage,
};

const AGENT: &str = "Gemini CLI";
const LOGIN_FIX: &str = "log in on the worker (run `gemini`), or grant the executor GEMINI_API_KEY in sandbox.env and select \"gemini-api-key\" (security.auth.selectedType) in the worker's ~/.gemini/settings.json, with ~/.gemini in sandbox.writePaths";

/// Reads one event.
pub(crate) fn event(parser: &mut Parser, value: &Value, out: &mut Vec<EventPayload>) {
    let kind = text(value, "type");
    if kind != Some("message") {
        parser.flush_text(out);
    }
    match kind {
        Some("init") => system(
            format!(
                "{AGENT} started: model {}",
                text(value, "model").unwrap_or("?")
            ),
            out,
        ),
        Some("message") if text(value, "role") == Some("assistant") => {
            let content = text(value, "content").unwrap_or("");
            parser.push_text(content);
            if value.get("delta").and_then(Value::as_bool) != Some(true) {
                parser.flush_text(out);
            }
        }
        Some("tool_use") => {
            let call = tool_use(parser, value);
            parser.started(call, out);
        }
        Some("tool_result") => {
            let id = text(value, "tool_id").unwrap_or("");
            let failed = text(value, "status") != Some("success");
            parser.result(id, failed, out);
        }
        Some("error") => system(
            format!("{AGENT}: {}", text(value, "message").unwrap_or("error")),
            out,
        ),
        Some("result") => result(parser, value, out),
        _ => {}
    }
}

fn result(parser: &mut Parser, value: &Value, out: &mut Vec<EventPayload>) {
    if let Some(stats) = value.get("stats") {
        let input = count(stats, "input_tokens");
        let output = count(stats, "output_tokens");
        let cached = count(stats, "cached");
        if input.is_some() || output.is_some() {
            parser.report_usage(token_usage(input, output, cached, None), out);
        }
    }
    if text(value, "status") != Some("error") {
        return;
    }
    let said = value
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("it reported an error");
    let refused = [
        "401",
        "403",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "API key not valid",
    ]
    .iter()
    .any(|needle| said.contains(needle));
    parser.fail(if refused {
        refused_credentials(AGENT, said, LOGIN_FIX)
    } else {
        agent_failed(AGENT, said)
    });
}

/// The error of Gemini CLI's exit `code`, when it has a documented meaning.
pub(crate) fn exit_error(code: i32, stderr: &str) -> Option<RunError> {
    let tail = if stderr.is_empty() {
        String::new()
    } else {
        format!(":\n{stderr}")
    };
    let (code_kind, what) = match code {
        41 => (
            RunErrorCode::ExecutorUnavailable,
            format!("{AGENT} could not authenticate (exit code 41); {LOGIN_FIX}"),
        ),
        42 => (
            RunErrorCode::ExecutorFailed,
            format!("{AGENT} refused its input (exit code 42)"),
        ),
        52 => (
            RunErrorCode::ExecutorUnavailable,
            format!(
                "{AGENT}'s configuration is invalid (exit code 52): check the worker's ~/.gemini/settings.json"
            ),
        ),
        53 => (
            RunErrorCode::ExecutorFailed,
            format!("{AGENT} reached its turn limit (exit code 53)"),
        ),
        130 => (
            RunErrorCode::ExecutorFailed,
            format!("{AGENT} was cancelled (exit code 130)"),
        ),
        _ => return None,
    };
    Some(RunError {
        code: code_kind,
        message: format!("{what}{tail}"),
        exit_code: Some(code),
    })
}

/// A started tool call of a `tool_use` event.
fn tool_use(parser: &Parser, value: &Value) -> ToolCall {
    let name = text(value, "tool_name").unwrap_or("tool");
    let params = value.get("parameters").unwrap_or(&Value::Null);
    let path = ["file_path", "absolute_path", "path", "dir_path"]
        .iter()
        .find_map(|key| text(params, key))
        .map(|p| parser.relative(p));
    let kind = match name {
        "write_file" | "replace" | "edit" | "smart_edit" => ToolKind::Edit,
        "read_file" | "read_many_files" => ToolKind::Read,
        "run_shell_command" => ToolKind::Execute,
        "glob" | "search_file_content" | "grep" | "list_directory" => ToolKind::Search,
        "web_fetch" | "google_web_search" => ToolKind::Fetch,
        _ => ToolKind::Other,
    };
    let detail = match name {
        "run_shell_command" => text(params, "command").map(|c| short(c, 80)),
        "glob" | "search_file_content" | "grep" => text(params, "pattern").map(|p| short(p, 80)),
        "google_web_search" => text(params, "query").map(|q| short(q, 80)),
        _ => path.clone(),
    };
    let diff = match name {
        "write_file" => lines_summary(None, text(params, "content")),
        "replace" | "edit" => lines_summary(text(params, "old_string"), text(params, "new_string")),
        _ => None,
    };
    started_call(
        text(value, "tool_id").unwrap_or(""),
        name,
        detail,
        kind,
        path,
        diff,
    )
}

#[cfg(test)]
mod tests {
    use tlao_domain::{StreamFormat, ToolStatus, Usage};

    use super::*;
    use crate::stream::tests::{messages, parse_fixture, tool_calls};

    /// Recorded from Gemini CLI 0.61.0 against tests/fake_models (write_file, then text).
    const WRITE: &str = include_str!("fixtures/gemini-write.ndjson");
    /// Recorded likewise with the fake answering 401.
    const REFUSED: &str = include_str!("fixtures/gemini-401.ndjson");

    #[test]
    fn a_write_file_becomes_a_tool_call_a_message_and_token_usage() {
        let (events, parser) = parse_fixture(StreamFormat::Gemini, "/tmp/rec/gem", WRITE);
        let calls = tool_calls(&events);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].title, "write_file agent-note.txt");
        assert_eq!(calls[0].kind, ToolKind::Edit);
        assert_eq!(calls[0].paths, ["agent-note.txt"]);
        assert_eq!(calls[0].diff.as_deref(), Some("+1 lines"));
        assert_eq!(calls[1].id, calls[0].id);
        assert_eq!(calls[1].status, ToolStatus::Completed);
        assert_eq!(messages(&events), ["I wrote agent-note.txt as asked."]);
        let Some(Usage::Reported {
            input_tokens,
            output_tokens,
            cost,
            ..
        }) = parser.usage.clone()
        else {
            panic!("no usage")
        };
        assert_eq!(
            (input_tokens, output_tokens, cost),
            (Some(450), Some(75), None)
        );
        assert!(parser.error.is_none());
    }

    #[test]
    fn a_refused_key_is_executor_unavailable() {
        let (_, parser) = parse_fixture(StreamFormat::Gemini, "/w", REFUSED);
        let error = parser.error.unwrap();
        assert_eq!(error.code, RunErrorCode::ExecutorUnavailable);
        assert!(
            error.message.contains("API key not valid"),
            "{}",
            error.message
        );
    }

    #[test]
    fn documented_exit_codes_say_what_happened() {
        assert_eq!(
            exit_error(41, "").unwrap().code,
            RunErrorCode::ExecutorUnavailable
        );
        assert!(exit_error(53, "x").unwrap().message.contains("turn limit"));
        assert!(exit_error(130, "").unwrap().message.contains("cancelled"));
        assert_eq!(exit_error(52, "").unwrap().exit_code, Some(52));
        assert!(exit_error(1, "").is_none());
    }

    #[test]
    fn text_in_pieces_is_one_message() {
        let stream = r#"{"type":"message","role":"assistant","content":"Hello ","delta":true}
{"type":"message","role":"assistant","content":"world.","delta":true}
{"type":"tool_use","tool_name":"run_shell_command","tool_id":"t1","parameters":{"command":"ls"}}
{"type":"message","role":"assistant","content":"Done.","delta":true}"#;
        let (events, _) = parse_fixture(StreamFormat::Gemini, "/w", stream);
        assert_eq!(messages(&events), ["Hello world.", "Done."]);
        assert_eq!(tool_calls(&events)[0].kind, ToolKind::Execute);
    }
}
