//! The `stream` executor: an agent CLI whose standard output is a JSON event stream,
//! one object per line (Claude Code `--output-format stream-json`, Codex `exec --json`,
//! Gemini CLI `--output-format stream-json`).
//!
//! Each format has a parser ([`claude`], [`codex`], [`gemini`]) that turns the agent's
//! events into the run's: tool calls ([`EventPayload::ToolCall`], started then completed
//! or failed under one id), the agent's text ([`EventPayload::Message`]), its plan
//! ([`EventPayload::Plan`]) and what it reports it used ([`EventPayload::Usage`], also
//! the run's usage). Lines that are not JSON objects, and stderr, stay log lines; the
//! whole output is the transcript.
//!
//! Errors the stream reports (Claude's `is_error`, Codex's `turn.failed`, Gemini's
//! `result.status: "error"`) and exit codes become [`RunError`]s that say what happened:
//! refused credentials are `executor_unavailable` (the worker's login is the fix), the
//! rest `executor_failed`. An agent that keeps retrying refused credentials (Claude
//! Code does, for minutes) is stopped at the first refusal.

pub mod claude;
pub mod codex;
pub mod gemini;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tlao_domain::{
    Cost, EventPayload, ExecutionContext, ExecutionOutcome, ExecutionStatus, Executor, LogStream,
    RunError, RunErrorCode, StreamConfig, StreamFormat, TaskSpec, ToolCall, ToolKind, ToolStatus,
    Usage,
};
use tokio::sync::Notify;

use crate::command::{substitute, templated};
use crate::confine::Confinement;
use crate::outcome::{exit_failure, failed_early, outcome, unavailable};
use crate::process::{GroupCommand, run_in_group_with};
use crate::prompt::build_prompt;

/// Runs TaskSpecs with an agent CLI that prints a JSON event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamExecutor {
    config: StreamConfig,
    confinement: Option<Arc<Confinement>>,
}

impl StreamExecutor {
    /// An executor with the registry record's configuration.
    pub fn new(config: StreamConfig) -> StreamExecutor {
        StreamExecutor {
            config,
            confinement: None,
        }
    }

    /// The same executor, running its agent in `confinement` (its run's sandbox).
    pub fn confined(mut self, confinement: Arc<Confinement>) -> StreamExecutor {
        self.confinement = Some(confinement);
        self
    }

    /// The command for `prompt`: the record's argv (or the format's default) with its
    /// placeholders substituted; the prompt on standard input unless the argv names
    /// `{prompt}`.
    pub fn command(&self, prompt: &str, workdir: &Path, outdir: &Path) -> GroupCommand {
        let workdir_text = workdir.to_string_lossy();
        let outdir_text = outdir.to_string_lossy();
        let argv: Vec<String> = self
            .config
            .argv()
            .iter()
            .map(|arg| substitute(arg, prompt, &workdir_text, &outdir_text))
            .collect();
        let mut argv = argv.into_iter();
        // The parser refuses a record whose argv has no program.
        let program = argv.next().unwrap_or_default();
        templated(
            program,
            argv,
            &self.config.env,
            workdir,
            outdir,
            self.confinement.clone(),
            (!self.config.prompt_in_argv()).then_some(prompt),
        )
    }
}

/// What to tell an operator whose worker lacks the agent.
fn install_hint(format: StreamFormat) -> &'static str {
    match format {
        StreamFormat::Claude => {
            "install Claude Code on this worker (npm install -g @anthropic-ai/claude-code), or set the executor's config.command to its full path"
        }
        StreamFormat::Codex => {
            "install Codex on this worker (npm install -g @openai/codex), or set the executor's config.command to its full path"
        }
        StreamFormat::Gemini => {
            "install Gemini CLI on this worker (npm install -g @google/gemini-cli), or set the executor's config.command to its full path"
        }
    }
}

#[async_trait]
impl Executor for StreamExecutor {
    async fn execute(&self, spec: &TaskSpec, context: ExecutionContext<'_>) -> ExecutionOutcome {
        let prompt = build_prompt(spec, context.outdir);
        let command = self.command(&prompt, context.workdir, context.outdir);
        if command.program.is_empty() {
            let error = RunError {
                code: RunErrorCode::ExecutorUnavailable,
                message: "the executor's config.command names no program".to_owned(),
                exit_code: None,
            };
            return failed_early(error, context.outdir, context.events);
        }
        let program = command.program.to_string_lossy().into_owned();
        let events = context.events;
        let mut parser = Parser::new(self.config.format, context.workdir);
        let stop = Notify::new();
        let mut observe = |stream: LogStream, line: &str| {
            if stream != LogStream::Stdout {
                return true;
            }
            let Some(parsed) = parser.line(line) else {
                return true;
            };
            for event in parsed {
                events.emit(event);
            }
            if parser.fatal {
                stop.notify_one();
            }
            false
        };
        let run = run_in_group_with(&command, events, &mut observe);
        let finished = tokio::select! {
            finished = run => Some(finished),
            () = stop.notified() => None,
        };
        let finished = match finished {
            Some(Ok(finished)) => finished,
            Some(Err(error)) => {
                let hint = install_hint(self.config.format);
                return failed_early(unavailable(&program, &error, hint), context.outdir, events);
            }
            None => {
                // Stopped at a fatal event: its error says why; the tree is gone.
                let error = parser.error.clone().unwrap_or_else(|| RunError {
                    code: RunErrorCode::ExecutorFailed,
                    message: format!("{program} was stopped"),
                    exit_code: None,
                });
                crate::outcome::system(events, format!("stopped {program}: {}", error.message));
                return outcome(
                    ExecutionStatus::Failed(error),
                    String::new(),
                    parser.usage.clone().unwrap_or_default(),
                    context.outdir,
                    events,
                );
            }
        };
        for event in parser.finish() {
            events.emit(event);
        }
        let exit_code = finished.exit_code();
        let status = match (finished.status.success(), parser.error.clone()) {
            (true, None) => ExecutionStatus::Completed,
            (_, Some(mut error)) => {
                error.exit_code = exit_code;
                ExecutionStatus::Failed(error)
            }
            (false, None) => {
                let tail = finished.stderr_text(|_| false);
                ExecutionStatus::Failed(
                    exit_error(self.config.format, exit_code, &tail).unwrap_or_else(|| {
                        exit_failure(&format!("{program} failed"), &finished, &tail)
                    }),
                )
            }
        };
        outcome(
            status,
            finished.transcript,
            parser.usage.clone().unwrap_or_default(),
            context.outdir,
            events,
        )
    }
}

/// The error a format's exit code means, when the stream said nothing more specific.
fn exit_error(format: StreamFormat, code: Option<i32>, stderr: &str) -> Option<RunError> {
    match format {
        StreamFormat::Gemini => gemini::exit_error(code?, stderr),
        StreamFormat::Claude | StreamFormat::Codex => None,
    }
}

/// Reads one agent's stream into run events, keeping what the run's outcome needs.
#[derive(Debug)]
pub struct Parser {
    format: StreamFormat,
    /// The run's working directory, as text; tool paths beneath it are shown relative.
    workdir: String,
    /// Tool calls seen started and not yet finished, by id.
    open: HashMap<String, ToolCall>,
    /// Assistant text received in pieces, not yet a message.
    pending_text: String,
    /// What the agent last reported it used (Codex: summed over turns).
    pub usage: Option<Usage>,
    /// The failure the stream reported, if any.
    pub error: Option<RunError>,
    /// Whether the agent should be stopped now (it reported an error it will only
    /// retry, such as refused credentials).
    pub fatal: bool,
}

impl Parser {
    /// A parser for `format`, for a run in `workdir`.
    pub fn new(format: StreamFormat, workdir: &Path) -> Parser {
        Parser {
            format,
            workdir: workdir.to_string_lossy().into_owned(),
            open: HashMap::new(),
            pending_text: String::new(),
            usage: None,
            error: None,
            fatal: false,
        }
    }

    /// The events of one stdout line, or `None` when it is not a JSON object (a log
    /// line).
    pub fn line(&mut self, line: &str) -> Option<Vec<EventPayload>> {
        let trimmed = line.trim();
        if !trimmed.starts_with('{') {
            return None;
        }
        let value: Value = serde_json::from_str(trimmed).ok()?;
        if !value.is_object() {
            return None;
        }
        let mut out = Vec::new();
        match self.format {
            StreamFormat::Claude => claude::event(self, &value, &mut out),
            StreamFormat::Codex => codex::event(self, &value, &mut out),
            StreamFormat::Gemini => gemini::event(self, &value, &mut out),
        }
        Some(out)
    }

    /// The events still held when the stream ended (text received in pieces).
    pub fn finish(&mut self) -> Vec<EventPayload> {
        let mut out = Vec::new();
        self.flush_text(&mut out);
        out
    }

    /// Adds assistant text received in pieces.
    fn push_text(&mut self, text: &str) {
        self.pending_text.push_str(text);
    }

    /// Turns the text received in pieces into one message.
    fn flush_text(&mut self, out: &mut Vec<EventPayload>) {
        let text = std::mem::take(&mut self.pending_text);
        message(text, out);
    }

    /// `path` relative to the run's working directory when beneath it.
    fn relative(&self, path: &str) -> String {
        let workdir = self.workdir.trim_end_matches('/');
        match path.strip_prefix(workdir) {
            Some(rest) if rest.starts_with('/') && !workdir.is_empty() => rest[1..].to_owned(),
            _ => path.to_owned(),
        }
    }

    /// Records a started tool call and emits it.
    fn started(&mut self, call: ToolCall, out: &mut Vec<EventPayload>) {
        self.open.insert(call.id.clone(), call.clone());
        out.push(EventPayload::ToolCall(call));
    }

    /// Emits the end of the tool call `id` (as it was started, with `update` applied),
    /// or of a call never seen started (`fallback`).
    fn ended(
        &mut self,
        id: &str,
        fallback: impl FnOnce() -> ToolCall,
        update: impl FnOnce(&mut ToolCall),
        out: &mut Vec<EventPayload>,
    ) {
        let mut call = self.open.remove(id).unwrap_or_else(fallback);
        update(&mut call);
        out.push(EventPayload::ToolCall(call));
    }

    /// Emits the end of the tool call `id` a tool result reports: completed, or failed;
    /// a result for a call never seen started ends an `other` call titled `tool`.
    fn result(&mut self, id: &str, failed: bool, out: &mut Vec<EventPayload>) {
        let status = if failed {
            ToolStatus::Failed
        } else {
            ToolStatus::Completed
        };
        self.ended(
            id,
            || started_call(id, "tool", None, ToolKind::Other, None, None),
            |call| call.status = status,
            out,
        );
    }

    /// Records reported usage and emits it.
    fn report_usage(&mut self, usage: Usage, out: &mut Vec<EventPayload>) {
        self.usage = Some(usage.clone());
        out.push(EventPayload::Usage { usage });
    }

    /// Records the stream's failure (the first one wins: it is the cause).
    fn fail(&mut self, error: RunError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }
}

/// A message event of `text`, when it has any.
fn message(text: String, out: &mut Vec<EventPayload>) {
    let text = text.trim().to_owned();
    if !text.is_empty() {
        out.push(EventPayload::Message { text });
    }
}

/// A system log line.
fn system(text: impl Into<String>, out: &mut Vec<EventPayload>) {
    out.push(EventPayload::Log {
        stream: LogStream::System,
        text: crate::ansi::one_line(&text.into()),
    });
}

/// Reported token usage (and cost), with its summary line.
fn token_usage(
    input: Option<u64>,
    output: Option<u64>,
    cached: Option<u64>,
    cost: Option<Cost>,
) -> Usage {
    let mut parts = Vec::new();
    match (input, output) {
        (Some(i), Some(o)) => parts.push(format!("{i} input / {o} output tokens")),
        (Some(i), None) => parts.push(format!("{i} input tokens")),
        (None, Some(o)) => parts.push(format!("{o} output tokens")),
        (None, None) => {}
    }
    if let Some(c) = cached.filter(|c| *c > 0) {
        parts.push(format!("{c} cached"));
    }
    if let Some(cost) = &cost {
        parts.push(format!("{} {}", cost.amount, cost.currency));
    }
    Usage::Reported {
        credits: None,
        summary: parts.join(", "),
        input_tokens: input,
        output_tokens: output,
        cached_tokens: cached,
        cost,
    }
}

/// A number of the JSON `value` at `key`, when it is a non-negative integer.
fn count(value: &Value, key: &str) -> Option<u64> {
    value.get(key).and_then(Value::as_u64)
}

/// The text of the JSON `value` at `key`.
fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// At most `max` characters of the first line of `text`, with `…` when cut.
fn short(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max || text.trim().lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

/// A tool call as it starts (in progress): its title is the tool's `name` and, when
/// there is one, the `detail` the agent gave (a path, a command, a query).
fn started_call(
    id: &str,
    name: &str,
    detail: Option<String>,
    kind: ToolKind,
    path: Option<String>,
    diff: Option<String>,
) -> ToolCall {
    ToolCall {
        id: id.to_owned(),
        title: match detail {
            Some(detail) => format!("{name} {detail}"),
            None => name.to_owned(),
        },
        kind,
        status: ToolStatus::InProgress,
        paths: path.into_iter().collect(),
        exit_code: None,
        diff,
    }
}

/// `+N lines` for written content; `-M +N lines` for a replacement.
fn lines_summary(old: Option<&str>, new: Option<&str>) -> Option<String> {
    let lines = |text: &str| text.lines().count();
    match (old, new) {
        (Some(old), Some(new)) => Some(format!("-{} +{} lines", lines(old), lines(new))),
        (None, Some(new)) => Some(format!("+{} lines", lines(new))),
        _ => None,
    }
}

/// The error of credentials the model API refused.
fn refused_credentials(agent: &str, detail: &str, fix: &str) -> RunError {
    RunError {
        code: RunErrorCode::ExecutorUnavailable,
        message: format!(
            "{agent} is not logged in or its credentials were refused: {detail}; {fix}"
        ),
        exit_code: None,
    }
}

/// An agent's own failure.
fn agent_failed(agent: &str, detail: &str) -> RunError {
    RunError {
        code: RunErrorCode::ExecutorFailed,
        message: format!("{agent} failed: {detail}"),
        exit_code: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every event a recorded stream yields, with the parser after it.
    pub(crate) fn parse_fixture(
        format: StreamFormat,
        workdir: &str,
        fixture: &str,
    ) -> (Vec<EventPayload>, Parser) {
        let mut parser = Parser::new(format, Path::new(workdir));
        let mut events = Vec::new();
        for line in fixture.lines() {
            match parser.line(line) {
                Some(parsed) => events.extend(parsed),
                None => events.push(EventPayload::Log {
                    stream: LogStream::Stdout,
                    text: line.to_owned(),
                }),
            }
        }
        events.extend(parser.finish());
        (events, parser)
    }

    /// The tool calls among `events`.
    pub(crate) fn tool_calls(events: &[EventPayload]) -> Vec<&ToolCall> {
        events
            .iter()
            .filter_map(|e| match e {
                EventPayload::ToolCall(call) => Some(call),
                _ => None,
            })
            .collect()
    }

    /// The messages among `events`.
    pub(crate) fn messages(events: &[EventPayload]) -> Vec<&str> {
        events
            .iter()
            .filter_map(|e| match e {
                EventPayload::Message { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lines_that_are_not_json_objects_are_logs() {
        let mut parser = Parser::new(StreamFormat::Claude, Path::new("/w"));
        assert!(parser.line("Warning: something").is_none());
        assert!(parser.line("[1, 2]").is_none());
        assert!(parser.line("{not json").is_none());
        assert!(parser.line("{}").is_some());
    }

    #[test]
    fn paths_beneath_the_workdir_are_relative() {
        let parser = Parser::new(StreamFormat::Codex, Path::new("/runs/r1/work"));
        assert_eq!(parser.relative("/runs/r1/work/a/b.txt"), "a/b.txt");
        assert_eq!(
            parser.relative("/runs/r1/workshop/x"),
            "/runs/r1/workshop/x"
        );
        assert_eq!(parser.relative("rel.txt"), "rel.txt");
    }

    #[test]
    fn the_prompt_goes_to_stdin_unless_the_argv_names_it() {
        let config = StreamConfig {
            format: StreamFormat::Codex,
            command: Vec::new(),
            env: [("A".to_owned(), "1".to_owned())].into(),
            max_run_seconds: None,
        };
        let command =
            StreamExecutor::new(config.clone()).command("do it", Path::new("/w"), Path::new("/o"));
        assert_eq!(command.program, "codex");
        assert_eq!(command.args.last().unwrap(), "-");
        assert_eq!(command.stdin.as_deref(), Some("do it"));
        assert_eq!(command.env[&std::ffi::OsString::from("A")], "1");
        let config = StreamConfig {
            command: vec![
                "gemini".into(),
                "-p".into(),
                "{prompt}".into(),
                "--out={outdir}".into(),
            ],
            ..config
        };
        let command =
            StreamExecutor::new(config).command("do it", Path::new("/w"), Path::new("/o"));
        assert_eq!(command.args, ["-p", "do it", "--out=/o"]);
        assert_eq!(command.stdin, None);
    }
}
