//! The `acp` executor: any agent speaking the Agent Client Protocol (JSON-RPC 2.0, one
//! message a line, over the agent's standard input and output), as a headless client.
//!
//! The worker starts the record's command in its run's process tree and sandbox, then:
//! `initialize` (protocol version 1, declining the `fs` and `terminal` capabilities, so
//! the agent uses its own tools) → `session/new {cwd, mcpServers: []}` → the configured
//! `session/set_mode` / `session/set_model` → `session/prompt` with the TaskSpec's
//! prompt. While the prompt runs, the agent's `session/update` notifications become run
//! events: message chunks merged into whole lines ([`EventPayload::Message`]), tool
//! calls and their updates ([`EventPayload::ToolCall`]), the plan, usage; thoughts and
//! stderr become log lines. Permission requests are answered by the record's policy,
//! choosing an option by its `kind`, never its position, and each decision is a log
//! line. Requests the client does not serve are answered `-32601`; unknown
//! notifications are ignored, except Kiro's `_kiro.dev/metadata`, whose
//! `meteringUsage` credits are summed into the run's usage.
//!
//! The prompt's `stopReason` decides the outcome (`end_turn` completes; `refusal`,
//! `max_tokens`, `max_turn_requests`, `cancelled` fail with a clear error), as does an
//! agent that exits or answers with a JSON-RPC error. A dropped execution (cancel,
//! deadline) sends `session/cancel`, answers the permission requests it had read but not
//! answered with `cancelled`, and ends the process tree after [`CANCEL_GRACE`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tlao_domain::{
    AcpConfig, AcpPermission, Cost, EventPayload, EventSink, ExecutionContext, ExecutionOutcome,
    ExecutionStatus, Executor, LogStream, PlanEntry, PlanStatus, RunError, RunErrorCode, TaskSpec,
    ToolCall, ToolKind, ToolStatus, Usage,
};
use tlao_process::ProcessTree;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;

use crate::confine::Confinement;
use crate::outcome::{failed_early, outcome, system, unavailable};
use crate::process::{GroupCommand, MAX_TRANSCRIPT_BYTES, STDERR_TAIL_BYTES, spawn_piped, tail_of};
use crate::prompt::build_prompt;

/// The ACP protocol version this client speaks.
pub const PROTOCOL_VERSION: u64 = 1;
/// How long an agent has to answer `initialize` (a program that is not an ACP agent
/// says nothing).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a cancelled agent has to stop before its process tree is killed.
pub const CANCEL_GRACE: Duration = Duration::from_secs(3);
/// How long an agent that finished its turn has to exit once its input is closed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The largest message read from an agent; a longer line is skipped (and logged).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// What to tell an operator whose worker lacks the agent.
const INSTALL_HINT: &str =
    "install the agent on this worker, or set the executor's config.command to its full path";
/// JSON-RPC: the method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// ACP: authentication is required.
const AUTH_REQUIRED: i64 = -32000;

/// Runs TaskSpecs with an ACP agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpExecutor {
    config: AcpConfig,
    confinement: Option<Arc<Confinement>>,
    startup_timeout: Duration,
}

impl AcpExecutor {
    /// An executor with the registry record's configuration.
    pub fn new(config: AcpConfig) -> AcpExecutor {
        AcpExecutor {
            config,
            confinement: None,
            startup_timeout: STARTUP_TIMEOUT,
        }
    }

    /// The same executor, giving the agent `timeout` to answer `initialize`.
    pub fn with_startup_timeout(mut self, timeout: Duration) -> AcpExecutor {
        self.startup_timeout = timeout;
        self
    }

    /// The same executor, running the agent in `confinement` (its run's sandbox).
    pub fn confined(mut self, confinement: Arc<Confinement>) -> AcpExecutor {
        self.confinement = Some(confinement);
        self
    }

    fn program(&self) -> &str {
        self.config.command.first().map_or("", String::as_str)
    }

    /// The agent's command, in `workdir`.
    pub fn agent_command(&self, context: &ExecutionContext<'_>) -> GroupCommand {
        let mut command = GroupCommand::new(self.program(), context.workdir);
        command.args = self.config.command[1..]
            .iter()
            .map(OsString::from)
            .collect();
        let mut env: BTreeMap<OsString, OsString> = self
            .config
            .env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        env.insert(
            "TLAO_OUTPUT_DIR".into(),
            context.outdir.as_os_str().to_owned(),
        );
        command.env = env;
        command.confinement = self.confinement.clone();
        command
    }
}

#[async_trait]
impl Executor for AcpExecutor {
    async fn execute(&self, spec: &TaskSpec, context: ExecutionContext<'_>) -> ExecutionOutcome {
        let workdir = match std::path::absolute(context.workdir) {
            Ok(path) => path,
            Err(error) => {
                let error = RunError {
                    code: RunErrorCode::Internal,
                    message: format!("cannot make the working directory absolute: {error}"),
                    exit_code: None,
                };
                return failed_early(error, context.outdir, context.events);
            }
        };
        let command = self.agent_command(&context);
        let (tree, mut child) = match spawn_piped(&command) {
            Ok(spawned) => spawned,
            Err(error) => {
                return failed_early(
                    unavailable(self.program(), &error, INSTALL_HINT),
                    context.outdir,
                    context.events,
                );
            }
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let error = RunError {
                code: RunErrorCode::Internal,
                message: "the agent's standard streams were not piped".to_owned(),
                exit_code: None,
            };
            return failed_early(error, context.outdir, context.events);
        };
        let (message_tx, messages) = mpsc::channel(256);
        tokio::spawn(read_messages(stdout, message_tx));
        let (stderr_tx, stderr_lines) = mpsc::channel(256);
        tokio::spawn(crate::process::read_lines(
            stderr,
            LogStream::Stderr,
            stderr_tx,
        ));
        system(
            context.events,
            format!(
                "starting the ACP agent `{}` (permission policy {})",
                self.config.command.join(" "),
                self.config.permission
            ),
        );
        let mut session = Session {
            link: Link {
                writer: Some(stdin),
                child: Some(child),
                tree: Some(tree),
                messages,
                session_id: None,
                finished: false,
                writing: false,
            },
            stderr_lines: Some(stderr_lines),
            events: context.events,
            program: self.program().to_owned(),
            policy: self.config.permission,
            workdir,
            next_id: 0,
            translator: Translator::default(),
            stderr_tail: VecDeque::new(),
            stdout_closed: false,
            exit_status: None,
        };
        let prompt = build_prompt(spec, context.outdir);
        let status = match session
            .converse(&self.config, &prompt, self.startup_timeout)
            .await
        {
            Ok(()) => ExecutionStatus::Completed,
            Err(error) => {
                system(context.events, error.message.clone());
                ExecutionStatus::Failed(error)
            }
        };
        session.translator.flush(context.events);
        session.finish().await;
        let usage = session.translator.usage();
        outcome(
            status,
            std::mem::take(&mut session.translator.transcript),
            usage,
            context.outdir,
            context.events,
        )
    }
}

/// What the stdout reader hands over.
enum FromAgent {
    /// A JSON message.
    Message(Value),
    /// A line that is not JSON (shown as a stdout log line).
    Text(String),
    /// A line longer than [`MAX_MESSAGE_BYTES`], skipped.
    Oversized(usize),
}

/// Reads the agent's standard output as NDJSON until it closes.
async fn read_messages(stdout: ChildStdout, tx: mpsc::Sender<FromAgent>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line: Vec<u8> = Vec::new();
    let mut skipped = 0usize;
    loop {
        let buffer = match reader.fill_buf().await {
            Ok(buffer) if !buffer.is_empty() => buffer,
            _ => break,
        };
        let (taken, complete) = match buffer.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buffer.len(), false),
        };
        if skipped > 0 || line.len() + taken > MAX_MESSAGE_BYTES {
            skipped += taken;
            line.clear();
        } else {
            line.extend_from_slice(&buffer[..taken]);
        }
        reader.consume(taken);
        if complete {
            let item = if skipped > 0 {
                FromAgent::Oversized(std::mem::take(&mut skipped))
            } else {
                parse_line(&line)
            };
            line.clear();
            if let Some(item) = item_if_any(item)
                && tx.send(item).await.is_err()
            {
                return;
            }
        }
    }
    if !line.is_empty()
        && let Some(item) = item_if_any(parse_line(&line))
    {
        let _ = tx.send(item).await;
    }
}

fn parse_line(line: &[u8]) -> FromAgent {
    match serde_json::from_slice::<Value>(line) {
        Ok(value) => FromAgent::Message(value),
        Err(_) => FromAgent::Text(crate::process::clean_line(line)),
    }
}

fn item_if_any(item: FromAgent) -> Option<FromAgent> {
    match &item {
        FromAgent::Text(text) if text.trim().is_empty() => None,
        _ => Some(item),
    }
}

/// The agent's process and the pipe to it; on drop before the conversation finished
/// (the execution was cancelled), the agent is told to cancel and given a grace period.
struct Link {
    writer: Option<ChildStdin>,
    child: Option<Child>,
    tree: Option<ProcessTree>,
    messages: mpsc::Receiver<FromAgent>,
    session_id: Option<String>,
    finished: bool,
    writing: bool,
}

impl Link {
    async fn send(&mut self, message: &Value) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
        line.push(b'\n');
        match self.writer.as_mut() {
            Some(writer) => {
                // Set until the line is written: a drop in between leaves half a line.
                self.writing = true;
                writer.write_all(&line).await?;
                writer.flush().await?;
                self.writing = false;
                Ok(())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the agent's input is closed",
            )),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Cancelled: session/cancel, `cancelled` to every permission request read but
        // not answered, then the tree ends after a grace period (at once without a
        // runtime to wait in).
        let mut lines = Vec::new();
        if let Some(session_id) = &self.session_id {
            lines.push(json!({"jsonrpc": "2.0", "method": "session/cancel",
                              "params": {"sessionId": session_id}}));
        }
        while let Ok(item) = self.messages.try_recv() {
            if let FromAgent::Message(message) = item
                && let (Some(id), Some(method)) = (
                    message.get("id"),
                    message.get("method").and_then(Value::as_str),
                )
            {
                lines.push(cancelled_answer(id, method));
            }
        }
        let (Some(mut writer), Some(mut child), Some(tree)) =
            (self.writer.take(), self.child.take(), self.tree.take())
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut messages = std::mem::replace(&mut self.messages, mpsc::channel(1).1);
        let cut_off = self.writing;
        runtime.spawn(async move {
            // A write cut off by the drop left half a line: end it first.
            let mut bytes = if cut_off { b"\n".to_vec() } else { Vec::new() };
            for line in &lines {
                if let Ok(text) = serde_json::to_vec(line) {
                    bytes.extend_from_slice(&text);
                    bytes.push(b'\n');
                }
            }
            let stop = async {
                let _ = writer.write_all(&bytes).await;
                let _ = writer.flush().await;
                // The prompt's answer (`cancelled`) ends the turn; then the agent's
                // input closes, which ends an ACP agent.
                while let Some(item) = messages.recv().await {
                    let FromAgent::Message(message) = item else {
                        continue;
                    };
                    if message.get("method").is_none()
                        && message.pointer("/result/stopReason").is_some()
                    {
                        break;
                    }
                    // A request made while the turn winds down: a permission is
                    // `cancelled`, anything else unknown.
                    if let (Some(id), Some(method)) = (
                        message.get("id"),
                        message.get("method").and_then(Value::as_str),
                    ) && let Ok(mut line) = serde_json::to_vec(&cancelled_answer(id, method))
                    {
                        line.push(b'\n');
                        let _ = writer.write_all(&line).await;
                        let _ = writer.flush().await;
                    }
                }
                drop(writer);
                let _ = child.wait().await;
            };
            let _ = tokio::time::timeout(CANCEL_GRACE, stop).await;
            drop(tree);
            drop(child);
        });
    }
}

/// The answer to a request of the agent once the run is cancelled: `cancelled` for a
/// permission, `-32601` for anything else.
fn cancelled_answer(id: &Value, method: &str) -> Value {
    if method == "session/request_permission" {
        json!({"jsonrpc": "2.0", "id": id, "result": {"outcome": {"outcome": "cancelled"}}})
    } else {
        json!({"jsonrpc": "2.0", "id": id,
               "error": {"code": METHOD_NOT_FOUND, "message": format!("method not found: {method}")}})
    }
}

/// Why the conversation stopped early.
type Failure = RunError;

/// One conversation with the agent.
struct Session<'a> {
    link: Link,
    stderr_lines: Option<mpsc::Receiver<(LogStream, String)>>,
    events: &'a dyn EventSink,
    program: String,
    policy: AcpPermission,
    workdir: PathBuf,
    next_id: u64,
    translator: Translator,
    stderr_tail: VecDeque<String>,
    stdout_closed: bool,
    exit_status: Option<Option<std::process::ExitStatus>>,
}

impl Session<'_> {
    async fn converse(
        &mut self,
        config: &AcpConfig,
        prompt: &str,
        startup_timeout: Duration,
    ) -> Result<(), Failure> {
        let initialize = self.call(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "clientCapabilities": {
                    "fs": {"readTextFile": false, "writeTextFile": false},
                    "terminal": false
                },
                "clientInfo": {"name": "tlao-worker", "version": env!("CARGO_PKG_VERSION")}
            }),
        );
        let init = match tokio::time::timeout(startup_timeout, initialize).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(RunError {
                    code: RunErrorCode::ExecutorUnavailable,
                    message: format!(
                        "the agent `{}` did not answer ACP's initialize within {} s: is it an ACP agent (such as `kiro-cli acp` or `gemini --acp`)?",
                        config.command.join(" "),
                        startup_timeout.as_secs_f64()
                    ),
                    exit_code: None,
                });
            }
        };
        if let Some(agent) = init.get("agentInfo") {
            let name = agent.get("name").and_then(Value::as_str).unwrap_or("?");
            let version = agent.get("version").and_then(Value::as_str).unwrap_or("?");
            system(self.events, format!("ACP agent {name} {version}"));
        }
        let new = self
            .call(
                "session/new",
                json!({"cwd": self.workdir.to_string_lossy(), "mcpServers": []}),
            )
            .await?;
        let session_id = new
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("the agent's session/new answer has no sessionId"))?
            .to_owned();
        self.link.session_id = Some(session_id.clone());
        if let Some(mode) = &config.mode {
            self.call(
                "session/set_mode",
                json!({"sessionId": session_id, "modeId": mode}),
            )
            .await?;
            system(self.events, format!("session mode {mode:?} selected"));
        }
        if let Some(model) = &config.model {
            self.call(
                "session/set_model",
                json!({"sessionId": session_id, "modelId": model}),
            )
            .await?;
            system(self.events, format!("model {model:?} selected"));
        }
        let answer = self
            .call(
                "session/prompt",
                json!({"sessionId": session_id, "prompt": [{"type": "text", "text": prompt}]}),
            )
            .await?;
        self.translator.flush(self.events);
        if let Some(usage) = answer.get("usage") {
            self.translator.prompt_usage(usage);
            self.translator.emit_usage(self.events);
        } else if let Some(tokens) = answer.pointer("/_meta/quota/token_count") {
            // Gemini CLI's ACP mode (0.61) reports the turn's tokens here, not in `usage`.
            self.translator.quota_usage(tokens);
            self.translator.emit_usage(self.events);
        }
        let reason = answer
            .get("stopReason")
            .and_then(Value::as_str)
            .unwrap_or("");
        match reason {
            "end_turn" => Ok(()),
            "refusal" => Err(failed("the agent refused the task (stopReason refusal)")),
            "max_tokens" => Err(failed(
                "the agent stopped: it reached its maximum number of tokens (stopReason max_tokens)",
            )),
            "max_turn_requests" => Err(failed(
                "the agent stopped: it reached its maximum number of model requests in one turn (stopReason max_turn_requests)",
            )),
            "cancelled" => Err(failed(
                "the agent cancelled the turn itself (stopReason cancelled)",
            )),
            other => Err(failed(format!(
                "the agent ended its turn with an unknown stopReason {other:?}"
            ))),
        }
    }

    /// Sends a request and handles what the agent says until its answer comes.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, Failure> {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if let Err(error) = self.link.send(&request).await {
            return Err(self
                .agent_gone(method, &format!("cannot write to it: {error}"))
                .await);
        }
        loop {
            let item = tokio::select! {
                item = self.link.messages.recv(), if !self.stdout_closed => item,
                // The agent exited: what it left running (holding its output open)
                // ends with it, then its output is read to the end.
                status = wait_child(&mut self.link.child), if self.exit_status.is_none() => {
                    self.exit_status = Some(status);
                    if let Some(tree) = self.link.tree.as_mut() {
                        tree.kill();
                    }
                    continue;
                }
                line = recv_stderr(&mut self.stderr_lines) => {
                    self.stderr_line(line);
                    continue;
                }
            };
            let Some(item) = item else {
                self.stdout_closed = true;
                return Err(self.agent_gone(method, "it closed its output").await);
            };
            let message = match item {
                FromAgent::Message(message) => message,
                FromAgent::Text(text) => {
                    self.translator.record(&text);
                    self.events.emit(EventPayload::Log {
                        stream: LogStream::Stdout,
                        text,
                    });
                    continue;
                }
                FromAgent::Oversized(bytes) => {
                    system(
                        self.events,
                        format!(
                            "skipped a message of {bytes} bytes from the agent (over {MAX_MESSAGE_BYTES})"
                        ),
                    );
                    continue;
                }
            };
            let is_answer = message.get("method").is_none()
                && (message.get("result").is_some() || message.get("error").is_some());
            if is_answer {
                if message.get("id").and_then(Value::as_u64) != Some(id) {
                    continue;
                }
                if let Some(error) = message.get("error") {
                    return Err(rpc_failure(method, error));
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            self.handle(message).await;
        }
    }

    /// A request or notification from the agent.
    async fn handle(&mut self, message: Value) {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        match message.get("id").cloned() {
            None => {
                if method == "session/update" {
                    if let Some(update) = params.get("update") {
                        self.translator.update(update, &self.workdir, self.events);
                    }
                } else if method == "_kiro.dev/metadata" && self.translator.kiro_metadata(&params) {
                    self.translator.emit_usage(self.events);
                }
                // Other notifications (`_kiro.dev/*`, extensions) are ignored.
            }
            Some(id) => {
                let answer = if method == "session/request_permission" {
                    json!({"jsonrpc": "2.0", "id": id, "result": self.permission(&params)})
                } else {
                    system(
                        self.events,
                        format!(
                            "the agent asked for {method:?}, which this client does not serve; answered -32601"
                        ),
                    );
                    json!({"jsonrpc": "2.0", "id": id,
                           "error": {"code": METHOD_NOT_FOUND, "message": format!("method not found: {method}")}})
                };
                if let Err(error) = self.link.send(&answer).await {
                    system(
                        self.events,
                        format!("cannot answer the agent's {method}: {error}"),
                    );
                }
            }
        }
    }

    /// The answer to a permission request, by policy, and a log line saying it.
    fn permission(&mut self, params: &Value) -> Value {
        let call = params.get("toolCall").cloned().unwrap_or(Value::Null);
        let id = call.get("toolCallId").and_then(Value::as_str).unwrap_or("");
        self.translator
            .tool_update(&call, &self.workdir, self.events, true);
        let known = self.translator.tool_calls.get(id);
        let title = known.map_or(id.to_owned(), |c| c.title.clone());
        let kind_text = call
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.translator.raw_kinds.get(id).cloned())
            .unwrap_or_else(|| "unknown".to_owned());
        let allow = match self.policy {
            AcpPermission::AllowAll => true,
            AcpPermission::Deny => false,
            AcpPermission::AllowEdits => matches!(
                kind_text.as_str(),
                "edit" | "delete" | "move" | "read" | "search" | "fetch" | "think" | "switch_mode"
            ),
        };
        let options: Vec<&Value> = params
            .get("options")
            .and_then(Value::as_array)
            .map(|o| o.iter().collect())
            .unwrap_or_default();
        let wanted: &[&str] = if allow {
            &["allow_once", "allow_always"]
        } else {
            &["reject_once", "reject_always"]
        };
        let chosen = wanted.iter().find_map(|kind| {
            options
                .iter()
                .find(|o| o.get("kind").and_then(Value::as_str) == Some(kind))
        });
        let verdict = if allow { "allowed" } else { "refused" };
        match chosen.and_then(|o| Some((o.get("optionId")?.clone(), o))) {
            Some((option_id, option)) => {
                let kind = option.get("kind").and_then(Value::as_str).unwrap_or("");
                let name = option.get("name").and_then(Value::as_str).unwrap_or("");
                system(
                    self.events,
                    format!(
                        "permission: {verdict} {title:?} ({kind_text}) by policy {}: option {kind} {name:?}",
                        self.policy
                    ),
                );
                json!({"outcome": {"outcome": "selected", "optionId": option_id}})
            }
            None => {
                system(
                    self.events,
                    format!(
                        "permission: {verdict} {title:?} ({kind_text}) by policy {}, but the agent offered no {} option; answered cancelled",
                        self.policy,
                        wanted.join("/")
                    ),
                );
                json!({"outcome": {"outcome": "cancelled"}})
            }
        }
    }

    fn stderr_line(&mut self, line: Option<(LogStream, String)>) {
        let Some((stream, text)) = line else {
            self.stderr_lines = None;
            return;
        };
        self.translator.record(&text);
        let kept = tail_of(&text, STDERR_TAIL_BYTES).to_owned();
        self.stderr_tail.push_back(kept);
        while self.stderr_tail.iter().map(|l| l.len() + 1).sum::<usize>() > STDERR_TAIL_BYTES {
            self.stderr_tail.pop_front();
        }
        self.events.emit(EventPayload::Log { stream, text });
    }

    /// The error for an agent that stopped talking during `method`: waits briefly for
    /// it to exit and for the rest of its stderr.
    async fn agent_gone(&mut self, method: &str, how: &str) -> Failure {
        let status = match (self.exit_status, self.link.child.as_mut()) {
            (Some(status), _) => status,
            (None, Some(child)) => tokio::time::timeout(EXIT_GRACE, child.wait())
                .await
                .ok()
                .and_then(Result::ok),
            (None, None) => None,
        };
        let drain = async {
            while self.stderr_lines.is_some() {
                let line = recv_stderr(&mut self.stderr_lines).await;
                self.stderr_line(line);
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        let exit = match status {
            Some(status) => match (
                status.code(),
                std::os::unix::process::ExitStatusExt::signal(&status),
            ) {
                (Some(code), _) => format!("exited with code {code}"),
                (None, Some(signal)) => format!("was killed by signal {signal}"),
                _ => "ended".to_owned(),
            },
            None => format!("stopped answering ({how})"),
        };
        let tail: Vec<&str> = self
            .stderr_tail
            .iter()
            .map(String::as_str)
            .filter(|l| !l.trim().is_empty())
            .collect();
        let message = if tail.is_empty() {
            format!(
                "the ACP agent {:?} {exit} during {method}; it printed nothing on stderr",
                self.program
            )
        } else {
            format!(
                "the ACP agent {:?} {exit} during {method}:\n{}",
                self.program,
                tail.join("\n")
            )
        };
        RunError {
            code: RunErrorCode::ExecutorFailed,
            message,
            exit_code: status.and_then(|s| s.code()),
        }
    }

    /// Ends the conversation: closes the agent's input, gives it a moment to exit,
    /// then ends its tree.
    async fn finish(&mut self) {
        self.link.finished = true;
        drop(self.link.writer.take());
        if let Some(child) = self.link.child.as_mut() {
            let _ = tokio::time::timeout(EXIT_GRACE, child.wait()).await;
        }
        if let Some(mut tree) = self.link.tree.take() {
            tree.kill();
        }
        // What it printed on stderr before it ended.
        let drain = async {
            while self.stderr_lines.is_some() {
                let line = recv_stderr(&mut self.stderr_lines).await;
                self.stderr_line(line);
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
    }
}

/// The agent's exit status once it exits (`None` when it cannot be read).
async fn wait_child(child: &mut Option<Child>) -> Option<std::process::ExitStatus> {
    match child {
        Some(child) => child.wait().await.ok(),
        None => std::future::pending().await,
    }
}

async fn recv_stderr(
    lines: &mut Option<mpsc::Receiver<(LogStream, String)>>,
) -> Option<(LogStream, String)> {
    match lines {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn failed(message: impl Into<String>) -> RunError {
    RunError {
        code: RunErrorCode::ExecutorFailed,
        message: message.into(),
        exit_code: None,
    }
}

/// The run error for a JSON-RPC error answer to `method`.
fn rpc_failure(method: &str, error: &Value) -> RunError {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
    let text = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let detail = error
        .get("data")
        .filter(|d| !d.is_null())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    let lower = text.to_lowercase();
    let unavailable = code == AUTH_REQUIRED
        || [
            "auth",
            "login",
            "log in",
            "credential",
            "api key",
            "not found",
        ]
        .iter()
        .any(|w| lower.contains(w));
    let message = if unavailable {
        format!(
            "the ACP agent is not set up on this worker: it answered {method} with error {code}: {text}{detail} (log the agent in on the worker, or grant it its credentials in the executor's sandbox)"
        )
    } else {
        format!("the ACP agent answered {method} with error {code}: {text}{detail}")
    };
    RunError {
        code: if unavailable {
            RunErrorCode::ExecutorUnavailable
        } else {
            RunErrorCode::ExecutorFailed
        },
        message,
        exit_code: None,
    }
}

/// Turns session updates into run events, and keeps the transcript and usage.
#[derive(Default)]
struct Translator {
    message: String,
    thought: String,
    transcript: String,
    transcript_full: bool,
    tool_calls: HashMap<String, ToolCall>,
    raw_kinds: HashMap<String, String>,
    credits: Option<f64>,
    context: Option<(u64, u64)>,
    context_percent: Option<String>,
    cost: Option<Cost>,
    tokens: Option<(Option<u64>, Option<u64>, Option<u64>)>,
}

impl Translator {
    fn record(&mut self, line: &str) {
        if self.transcript.len() + line.len() < MAX_TRANSCRIPT_BYTES {
            self.transcript.push_str(line);
            self.transcript.push('\n');
        } else if !self.transcript_full {
            self.transcript_full = true;
            self.transcript
                .push_str("[transcript truncated; the rest is in the run's events]\n");
        }
    }

    fn update(&mut self, update: &Value, workdir: &Path, events: &dyn EventSink) {
        let kind = update
            .get("sessionUpdate")
            .and_then(Value::as_str)
            .unwrap_or("");
        if kind != "agent_message_chunk" {
            self.flush_message(events);
        }
        if kind != "agent_thought_chunk" {
            self.flush_thought(events);
        }
        match kind {
            "agent_message_chunk" => {
                if let Some(text) = chunk_text(update) {
                    self.message.push_str(text);
                    self.emit_message_lines(events, false);
                }
            }
            "agent_thought_chunk" => {
                if let Some(text) = chunk_text(update) {
                    self.thought.push_str(text);
                    while let Some(i) = self.thought.find('\n') {
                        let line: String = self.thought.drain(..=i).collect();
                        thought_line(events, line.trim_end());
                    }
                }
            }
            "tool_call" => self.tool_update(update, workdir, events, false),
            "tool_call_update" => self.tool_update(update, workdir, events, true),
            "plan" => {
                let entries = update
                    .get("entries")
                    .and_then(Value::as_array)
                    .map(|entries| {
                        entries
                            .iter()
                            .map(|e| PlanEntry {
                                content: e
                                    .get("content")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_owned(),
                                status: match e.get("status").and_then(Value::as_str) {
                                    Some("in_progress") => PlanStatus::InProgress,
                                    Some("completed") => PlanStatus::Completed,
                                    _ => PlanStatus::Pending,
                                },
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                events.emit(EventPayload::Plan { entries });
            }
            "usage_update" => {
                let used = update.get("used").and_then(Value::as_u64);
                let size = update.get("size").and_then(Value::as_u64);
                if let (Some(used), Some(size)) = (used, size) {
                    self.context = Some((used, size));
                }
                if let Some(cost) = update.get("cost").and_then(cost_of) {
                    self.cost = Some(cost);
                }
                self.emit_usage(events);
            }
            // Mode, command, config and session-info updates, user message echoes.
            _ => {}
        }
    }

    fn emit_message_lines(&mut self, events: &dyn EventSink, all: bool) {
        while let Some(i) = self.message.find('\n') {
            let line: String = self.message.drain(..=i).collect();
            self.message_line(events, line.trim_end_matches(['\n', '\r']));
        }
        if all && !self.message.is_empty() {
            let line = std::mem::take(&mut self.message);
            self.message_line(events, &line);
        }
    }

    fn message_line(&mut self, events: &dyn EventSink, line: &str) {
        self.record(line);
        if !line.trim().is_empty() {
            events.emit(EventPayload::Message {
                text: line.to_owned(),
            });
        }
    }

    fn flush_message(&mut self, events: &dyn EventSink) {
        self.emit_message_lines(events, true);
    }

    fn flush_thought(&mut self, events: &dyn EventSink) {
        if !self.thought.trim().is_empty() {
            thought_line(events, self.thought.trim_end());
        }
        self.thought.clear();
    }

    fn flush(&mut self, events: &dyn EventSink) {
        self.flush_message(events);
        self.flush_thought(events);
    }

    /// A `tool_call` (or, with `partial`, a `tool_call_update`, whose absent fields keep
    /// their values) as a [`EventPayload::ToolCall`] carrying the call's whole state.
    fn tool_update(
        &mut self,
        update: &Value,
        workdir: &Path,
        events: &dyn EventSink,
        partial: bool,
    ) {
        let Some(id) = update.get("toolCallId").and_then(Value::as_str) else {
            return;
        };
        let known = self.tool_calls.get(id).cloned();
        let mut call = match (known, partial) {
            (Some(call), true) => call,
            _ => ToolCall {
                id: id.to_owned(),
                title: String::new(),
                kind: ToolKind::Other,
                status: ToolStatus::Pending,
                paths: Vec::new(),
                exit_code: None,
                diff: None,
            },
        };
        if let Some(title) = update.get("title").and_then(Value::as_str) {
            call.title = title.to_owned();
        }
        if let Some(kind) = update.get("kind").and_then(Value::as_str) {
            self.raw_kinds.insert(id.to_owned(), kind.to_owned());
            call.kind = tool_kind(kind);
        }
        if let Some(status) = update.get("status").and_then(Value::as_str) {
            call.status = match status {
                "in_progress" => ToolStatus::InProgress,
                "completed" => ToolStatus::Completed,
                "failed" => ToolStatus::Failed,
                _ => ToolStatus::Pending,
            };
        }
        let mut paths: Vec<String> = Vec::new();
        if let Some(locations) = update.get("locations").and_then(Value::as_array) {
            for location in locations {
                if let Some(path) = location.get("path").and_then(Value::as_str) {
                    paths.push(relative(path, workdir));
                }
            }
        }
        let mut added = 0usize;
        let mut removed = 0usize;
        let mut diffs = 0usize;
        if let Some(content) = update.get("content").and_then(Value::as_array) {
            for item in content {
                if item.get("type").and_then(Value::as_str) == Some("diff") {
                    diffs += 1;
                    if let Some(path) = item.get("path").and_then(Value::as_str) {
                        paths.push(relative(path, workdir));
                    }
                    let old = item.get("oldText").and_then(Value::as_str).unwrap_or("");
                    let new = item.get("newText").and_then(Value::as_str).unwrap_or("");
                    let (a, r) = diff_counts(old, new);
                    added += a;
                    removed += r;
                }
            }
        }
        if diffs > 0 {
            call.diff = Some(format!("+{added} -{removed}"));
        }
        for path in paths {
            if !call.paths.contains(&path) {
                call.paths.push(path);
            }
        }
        if let Some(code) = update.get("rawOutput").and_then(exit_code_of) {
            call.exit_code = Some(code);
        }
        if self.tool_calls.get(id) == Some(&call) {
            // Nothing new to say.
            return;
        }
        if matches!(call.status, ToolStatus::Completed | ToolStatus::Failed) {
            let status = if call.status == ToolStatus::Completed {
                "done"
            } else {
                "failed"
            };
            self.record(&format!("[tool {status}] {}", call.title));
        }
        self.tool_calls.insert(id.to_owned(), call.clone());
        events.emit(EventPayload::ToolCall(call));
    }

    /// Sums Kiro's per-turn credits; whether it carried any.
    fn kiro_metadata(&mut self, params: &Value) -> bool {
        let percent = params
            .get("contextUsagePercentage")
            .filter(|p| p.is_number())
            .map(Value::to_string);
        let new_percent = percent.is_some() && percent != self.context_percent;
        if percent.is_some() {
            self.context_percent = percent;
        }
        let Some(metering) = params.get("meteringUsage") else {
            return new_percent;
        };
        let items: Vec<&Value> = match metering {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        let mut found = false;
        for item in items {
            let value = match item {
                Value::Number(n) => n.as_f64(),
                Value::Object(map) => {
                    let unit = map.get("unit").and_then(Value::as_str).unwrap_or("credit");
                    if unit.to_lowercase().contains("credit") {
                        map.get("value").and_then(Value::as_f64)
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let Some(value) = value {
                *self.credits.get_or_insert(0.0) += value;
                found = true;
            }
        }
        found || new_percent
    }

    /// The prompt answer's `usage` (tokens).
    fn prompt_usage(&mut self, usage: &Value) {
        let number = |key: &str| usage.get(key).and_then(Value::as_u64);
        self.tokens = Some((
            number("inputTokens"),
            number("outputTokens"),
            number("cachedReadTokens"),
        ));
    }

    /// Gemini CLI's `_meta.quota.token_count` (`input_tokens`, `output_tokens`).
    fn quota_usage(&mut self, tokens: &Value) {
        let number = |key: &str| tokens.get(key).and_then(Value::as_u64);
        self.tokens = Some((number("input_tokens"), number("output_tokens"), None));
    }

    fn emit_usage(&self, events: &dyn EventSink) {
        let usage = self.usage();
        if usage != Usage::Unmeasured {
            events.emit(EventPayload::Usage { usage });
        }
    }

    fn usage(&self) -> Usage {
        let credits = self.credits.map(credits_text);
        let (input, output, cached) = self.tokens.unwrap_or((None, None, None));
        let mut parts = Vec::new();
        if let Some(credits) = &credits {
            parts.push(format!("{credits} credits"));
        }
        if let Some(input) = input {
            parts.push(format!("{input} input"));
        }
        if let Some(output) = output {
            parts.push(format!("{output} output"));
        }
        if let Some(cached) = cached {
            parts.push(format!("{cached} cached"));
        }
        if (input.is_some() || output.is_some() || cached.is_some())
            && let Some(last) = parts.last_mut()
        {
            last.push_str(" tokens");
        }
        if let Some(cost) = &self.cost {
            parts.push(format!("{} {}", cost.amount, cost.currency));
        }
        if let Some((used, size)) = self.context {
            parts.push(format!("context {used}/{size} tokens"));
        } else if let Some(percent) = &self.context_percent {
            parts.push(format!("context {percent}% used"));
        }
        if parts.is_empty() {
            return Usage::Unmeasured;
        }
        Usage::Reported {
            credits,
            summary: parts.join(", "),
            input_tokens: input,
            output_tokens: output,
            cached_tokens: cached,
            cost: self.cost.clone(),
        }
    }
}

fn thought_line(events: &dyn EventSink, line: &str) {
    if !line.trim().is_empty() {
        events.emit(EventPayload::Log {
            stream: LogStream::System,
            text: format!("thought: {line}"),
        });
    }
}

fn chunk_text(update: &Value) -> Option<&str> {
    let content = update.get("content")?;
    (content.get("type").and_then(Value::as_str) == Some("text"))
        .then(|| content.get("text").and_then(Value::as_str))
        .flatten()
}

/// ACP's tool kinds, the rare ones folded into `other`.
pub fn tool_kind(kind: &str) -> ToolKind {
    match kind {
        "edit" => ToolKind::Edit,
        "read" => ToolKind::Read,
        "execute" => ToolKind::Execute,
        "search" => ToolKind::Search,
        "fetch" => ToolKind::Fetch,
        _ => ToolKind::Other,
    }
}

/// `path` relative to `workdir` when it is in it.
fn relative(path: &str, workdir: &Path) -> String {
    let candidate = Path::new(path);
    let bases = [Some(workdir.to_path_buf()), workdir.canonicalize().ok()];
    for base in bases.into_iter().flatten() {
        if let Ok(rest) = candidate.strip_prefix(&base)
            && !rest.as_os_str().is_empty()
        {
            return rest.to_string_lossy().into_owned();
        }
    }
    path.to_owned()
}

/// Lines added and removed from `old` to `new`.
pub fn diff_counts(old: &str, new: &str) -> (usize, usize) {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut added = 0;
    let mut removed = 0;
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

/// A command's exit code in a tool call's raw output, under the names agents use.
fn exit_code_of(raw: &Value) -> Option<i32> {
    [
        "exitCode",
        "exit_code",
        "exitStatus",
        "exit_status",
        "status",
    ]
    .iter()
    .find_map(|key| raw.get(key).and_then(Value::as_i64))
    .and_then(|code| i32::try_from(code).ok())
}

/// A `cost {amount, currency}` as the domain's [`Cost`], the amount as written.
fn cost_of(cost: &Value) -> Option<Cost> {
    let amount = match cost.get("amount")? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let currency = cost.get("currency").and_then(Value::as_str)?.to_owned();
    Some(Cost { amount, currency })
}

/// A credits sum as text: at most six decimals, no trailing zeros.
fn credits_text(credits: f64) -> String {
    let text = format!("{credits:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_are_counted_by_line() {
        assert_eq!(diff_counts("", "a\nb\n"), (2, 0));
        assert_eq!(diff_counts("a\nb\nc\n", "a\nB\nc\nd\n"), (2, 1));
    }

    #[test]
    fn credits_keep_their_decimals() {
        assert_eq!(credits_text(0.42 + 0.08), "0.5");
        assert_eq!(credits_text(1.0), "1");
        assert_eq!(credits_text(0.0123), "0.0123");
    }

    #[test]
    fn paths_in_the_workdir_become_relative() {
        let work = Path::new("/srv/run/work");
        assert_eq!(relative("/srv/run/work/src/a.rs", work), "src/a.rs");
        assert_eq!(relative("/etc/passwd", work), "/etc/passwd");
    }

    #[test]
    fn kiro_metadata_sums_credits_and_keeps_the_context_fill() {
        let mut translator = Translator::default();
        assert!(
            translator.kiro_metadata(&json!({"sessionId": "s", "contextUsagePercentage": 12.5}))
        );
        assert!(translator.kiro_metadata(&json!({"sessionId": "s",
            "meteringUsage": [{"unit": "credit", "unitPlural": "credits", "value": 0.25}]})));
        assert!(translator.kiro_metadata(&json!({"sessionId": "s",
            "meteringUsage": [{"value": 0.5}, {"unit": "second", "value": 7}]})));
        assert!(!translator.kiro_metadata(&json!({"sessionId": "s", "turnDurationMs": 5})));
        match translator.usage() {
            Usage::Reported {
                credits, summary, ..
            } => {
                assert_eq!(credits.as_deref(), Some("0.75"));
                assert_eq!(summary, "0.75 credits, context 12.5% used");
            }
            Usage::Unmeasured => panic!("no usage"),
        }
    }

    #[test]
    fn geminis_quota_tokens_are_the_turns_usage() {
        let mut translator = Translator::default();
        translator.quota_usage(&json!({"input_tokens": 300, "output_tokens": 50}));
        match translator.usage() {
            Usage::Reported {
                summary,
                input_tokens,
                output_tokens,
                cached_tokens,
                ..
            } => {
                assert_eq!(summary, "300 input, 50 output tokens");
                assert_eq!(
                    (input_tokens, output_tokens, cached_tokens),
                    (Some(300), Some(50), None)
                );
            }
            Usage::Unmeasured => panic!("no usage"),
        }
    }

    #[test]
    fn rare_tool_kinds_are_other() {
        assert_eq!(tool_kind("edit"), ToolKind::Edit);
        assert_eq!(tool_kind("delete"), ToolKind::Other);
        assert_eq!(tool_kind("switch_mode"), ToolKind::Other);
    }

    #[test]
    fn an_auth_error_is_unavailable_and_others_failed() {
        let auth = rpc_failure(
            "session/new",
            &json!({"code": -32000, "message": "Authentication required"}),
        );
        assert_eq!(auth.code, RunErrorCode::ExecutorUnavailable);
        let other = rpc_failure(
            "session/prompt",
            &json!({"code": -32603, "message": "Internal error"}),
        );
        assert_eq!(other.code, RunErrorCode::ExecutorFailed);
        assert!(other.message.contains("session/prompt with error -32603"));
    }
}
