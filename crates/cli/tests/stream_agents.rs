//! Real agent CLIs under `tlao dev`, offline: Claude Code, Gemini CLI and Codex, installed
//! from npm at pinned versions by `scripts/lib/agents.sh`, each run as a `stream`
//! executor against the project's fake model endpoints (`tests/fake_models`) on
//! loopback, sandboxed with what its record grants and nothing more.
//!
//! Each `code.change` run must complete with a `changes.patch` adding the file the fake
//! model asked for, stream `tool_call` and `usage` events and record usage on the run; a
//! fake that refuses the key (401) must make a failed run saying so.
//!
//! Skipped, saying why, only when the npm install is absent (`scripts/test` makes it).

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{Api, DevServer, archives};
use serde_json::{Value, json};

/// The file the fake model asks each agent to write, and what it holds.
const FILE: &str = "agent-note.txt";
const CONTENT: &str = "written by the agent at the fake model's request";

/// Where `scripts/lib/agents.sh` installed the CLIs.
fn agents_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TLAO_TEST_AGENTS_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("agents")
}

/// The installed CLI `name` (`claude`, `gemini`, `codex`), or `None` after printing why
/// the test skips.
fn installed(name: &str) -> Option<PathBuf> {
    let bin = agents_dir().join("node_modules/.bin").join(name);
    if bin.exists() {
        Some(bin.canonicalize().unwrap())
    } else {
        eprintln!(
            "SKIPPED: {} is not installed (run scripts/lib/agents.sh; scripts/test does)",
            bin.display()
        );
        None
    }
}

/// The fake model endpoints, stopped when dropped.
struct FakeModels {
    child: Child,
    port: u16,
}

impl FakeModels {
    /// Starts them; `fail` answers every model call with that HTTP status.
    fn start(fail: Option<u16>) -> FakeModels {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fake_models/fake_models.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .args(["--port", "0", "--stdin-lifeline"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(status) = fail {
            command.args(["--fail", &status.to_string()]);
        }
        let mut child = command
            .spawn()
            .expect("python3 runs the fake model endpoints");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the fake models said {line:?}"));
        FakeModels { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeModels {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `tlao dev` whose HOME is `home` and whose PATH starts with the agents' `bin`.
fn dev_server(dir: &Path, env: &[(&str, &str)]) -> DevServer {
    let bin = agents_dir().join("node_modules/.bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let home = home.display().to_string();
    let mut all = vec![("PATH", path.as_str()), ("HOME", home.as_str())];
    all.extend_from_slice(env);
    DevServer::start(&dir.join("data"), &dir.join("config"), &all)
}

/// Registers `record`, runs a `code.change` task on it against a one-file archive, and
/// returns the final run and its events.
async fn run_code_change(admin: &Api, record: Value) -> (String, Value, Vec<(String, Value)>) {
    let name = record["name"].as_str().unwrap().to_owned();
    let (code, created) = admin.post("/executors", record).await;
    assert_eq!(code, 201, "{created}");
    let ws = admin.create_workspace(&format!("ws-{name}")).await;
    let archive = archives::tar_gz(&[("README.md", b"# Sample\n".as_slice())]);
    let archive_id = admin.upload_archive(&ws, archive).await;
    let run_id = admin
        .start_run(
            json!({"workspaceId": ws, "taskType": "code.change",
                   "input": {"prompt": "Write the note file the model asks for.", "archiveId": archive_id}}),
            Some(&name),
        )
        .await;
    let run = admin
        .await_run(&run_id, "end", std::time::Duration::from_secs(180), |run| {
            common::FINAL_STATUSES.contains(&run["status"].as_str().unwrap_or_default())
        })
        .await;
    let events = admin.events(&run_id).await;
    (run_id, run, events)
}

/// What a successful run must show: completed, the patch adding the file, tool calls and
/// usage streamed, usage recorded. Returns a one-line summary of the event types seen.
async fn assert_wrote_the_file(
    admin: &Api,
    run_id: &str,
    run: &Value,
    events: &[(String, Value)],
) -> String {
    let logs: Vec<&str> = events
        .iter()
        .filter(|(_, e)| e["type"] == "log")
        .filter_map(|(_, e)| e["text"].as_str())
        .collect();
    assert_eq!(
        run["status"],
        "completed",
        "{run:#}\nlog:\n{}",
        logs.join("\n")
    );
    let artifacts = admin.artifacts(run_id).await;
    assert!(
        artifacts.iter().any(|a| a["name"] == "changes.patch"),
        "no changes.patch among {artifacts:#?}\nevents: {events:#?}"
    );
    let (_, patch) = admin.artifact_bytes(run_id, "changes.patch").await;
    let patch = String::from_utf8(patch).unwrap();
    assert!(
        patch.contains(&format!("+++ b/{FILE}")) && patch.contains(&format!("+{CONTENT}")),
        "the patch does not add {FILE}:\n{patch}"
    );
    let tool_calls: Vec<&Value> = events
        .iter()
        .filter(|(_, e)| e["type"] == "tool_call")
        .map(|(_, e)| &e["call"])
        .collect();
    assert!(
        tool_calls.iter().any(|call| call["status"] == "completed"
            && call["kind"] == "edit"
            && call["paths"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p == FILE))),
        "no completed edit of {FILE} among the tool calls: {tool_calls:#?}"
    );
    let usage_events = events.iter().filter(|(_, e)| e["type"] == "usage").count();
    assert!(usage_events >= 1, "no usage event: {events:#?}");
    let usage = &run["usage"];
    assert_eq!(usage["kind"], "reported", "{run:#}");
    assert!(usage["inputTokens"].as_u64().unwrap_or(0) > 0, "{usage:#}");
    assert!(usage["outputTokens"].as_u64().unwrap_or(0) > 0, "{usage:#}");
    let mut kinds: Vec<String> = events
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap_or("?").to_owned())
        .collect();
    kinds.dedup();
    let count = |t: &str| events.iter().filter(|(_, e)| e["type"] == t).count();
    let summary = format!(
        "tool_call×{} message×{} usage×{} plan×{} log×{}; usage {}",
        count("tool_call"),
        count("message"),
        count("usage"),
        count("plan"),
        count("log"),
        usage["summary"]
    );
    eprintln!("observed: {summary}");
    summary
}

/// What a run refused by the model API must show: failed, executor_unavailable, saying
/// the credentials were refused.
fn assert_refused(run: &Value) {
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "executor_unavailable", "{run:#}");
    let message = run["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("credentials were refused") && message.contains("401"),
        "{message}"
    );
    eprintln!("observed error: {message}");
}

/// Claude Code's record: the format's default argv (on PATH), the fake's URL in its
/// env, the key from the worker's environment through `sandbox.env`, the install
/// readable, only the fake's port reachable.
fn claude_record(fake: &FakeModels, name: &str) -> Value {
    json!({
        "name": name, "kind": "stream", "taskTypes": ["code.change"],
        "config": {
            "format": "claude",
            "env": {
                "ANTHROPIC_BASE_URL": fake.url(),
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"
            }
        },
        "sandbox": {
            "env": ["ANTHROPIC_API_KEY"],
            "readPaths": [agents_dir().canonicalize().unwrap()],
            "network": {"tcpPorts": [fake.port]}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_writes_the_file_and_reports_tokens_and_cost() {
    let Some(_) = installed("claude") else { return };
    let fake = FakeModels::start(None);
    let dir = tempfile::tempdir().unwrap();
    let server = dev_server(dir.path(), &[("ANTHROPIC_API_KEY", "sk-ant-fake")]);
    let admin = server.admin().await;
    let (run_id, run, events) = run_code_change(&admin, claude_record(&fake, "claude-code")).await;
    assert_wrote_the_file(&admin, &run_id, &run, &events).await;
    let cost = &run["usage"]["cost"];
    assert_eq!(cost["currency"], "USD", "{run:#}");
    assert!(
        cost["amount"].as_str().unwrap().parse::<f64>().unwrap() > 0.0,
        "{cost}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_with_a_refused_key_fails_as_not_logged_in() {
    let Some(_) = installed("claude") else { return };
    let fake = FakeModels::start(Some(401));
    let dir = tempfile::tempdir().unwrap();
    let server = dev_server(dir.path(), &[("ANTHROPIC_API_KEY", "sk-ant-refused")]);
    let admin = server.admin().await;
    let started = std::time::Instant::now();
    let (_, run, _) = run_code_change(&admin, claude_record(&fake, "claude-code")).await;
    assert_refused(&run);
    // Claude Code retries a 401 for minutes; the executor stops it at the first.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// Gemini CLI's record: default argv, the fake's URL and workspace trust in its env, the
/// key through `sandbox.env`, the worker's `~/.gemini` (its settings select API-key
/// auth; Gemini CLI writes its state there too).
fn gemini_record(fake: &FakeModels) -> Value {
    json!({
        "name": "gemini", "kind": "stream", "taskTypes": ["code.change"],
        "config": {
            "format": "gemini",
            "env": {
                "GOOGLE_GEMINI_BASE_URL": fake.url(),
                "GEMINI_CLI_TRUST_WORKSPACE": "true"
            }
        },
        "sandbox": {
            "env": ["GEMINI_API_KEY"],
            "readPaths": [agents_dir().canonicalize().unwrap()],
            "writePaths": ["~/.gemini"],
            "network": {"tcpPorts": [fake.port]}
        }
    })
}

/// The worker's Gemini settings: API-key authentication.
fn gemini_settings(dir: &Path) {
    let gemini = dir.join("home/.gemini");
    std::fs::create_dir_all(&gemini).unwrap();
    std::fs::write(
        gemini.join("settings.json"),
        r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}}"#,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_writes_the_file_and_reports_tokens() {
    let Some(_) = installed("gemini") else { return };
    let fake = FakeModels::start(None);
    let dir = tempfile::tempdir().unwrap();
    gemini_settings(dir.path());
    let server = dev_server(dir.path(), &[("GEMINI_API_KEY", "gemini-fake")]);
    let admin = server.admin().await;
    let (run_id, run, events) = run_code_change(&admin, gemini_record(&fake)).await;
    assert_wrote_the_file(&admin, &run_id, &run, &events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_with_a_refused_key_fails_as_not_logged_in() {
    let Some(_) = installed("gemini") else { return };
    let fake = FakeModels::start(Some(401));
    let dir = tempfile::tempdir().unwrap();
    gemini_settings(dir.path());
    let server = dev_server(dir.path(), &[("GEMINI_API_KEY", "gemini-refused")]);
    let admin = server.admin().await;
    let (_, run, _) = run_code_change(&admin, gemini_record(&fake)).await;
    assert_refused(&run);
}

/// Codex's record: its argv names the fake as a Responses provider (`-c`), model
/// `gpt-5.5` (whose bundled tools include `apply_patch`); the key variable the provider
/// names through `sandbox.env`.
fn codex_record(fake: &FakeModels, codex: &Path) -> Value {
    let base_url = format!("model_providers.fake.base_url=\"{}/v1\"", fake.url());
    json!({
        "name": "codex", "kind": "stream", "taskTypes": ["code.change"],
        "config": {
            "format": "codex",
            "command": [
                codex, "exec", "--json", "--skip-git-repo-check", "-s", "danger-full-access",
                "-c", "model_provider=\"fake\"",
                "-c", "model_providers.fake.name=\"fake\"",
                "-c", base_url,
                "-c", "model_providers.fake.wire_api=\"responses\"",
                "-c", "model_providers.fake.env_key=\"FAKE_OPENAI_KEY\"",
                "-m", "gpt-5.5", "-"
            ]
        },
        "sandbox": {
            "env": ["FAKE_OPENAI_KEY"],
            "readPaths": [agents_dir().canonicalize().unwrap()],
            "network": {"tcpPorts": [fake.port]}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_writes_the_file_and_reports_tokens() {
    let Some(codex) = installed("codex") else {
        return;
    };
    let fake = FakeModels::start(None);
    let dir = tempfile::tempdir().unwrap();
    let server = dev_server(dir.path(), &[("FAKE_OPENAI_KEY", "sk-fake")]);
    let admin = server.admin().await;
    let (run_id, run, events) = run_code_change(&admin, codex_record(&fake, &codex)).await;
    assert_wrote_the_file(&admin, &run_id, &run, &events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_with_a_refused_key_fails_as_not_logged_in() {
    let Some(codex) = installed("codex") else {
        return;
    };
    let fake = FakeModels::start(Some(401));
    let dir = tempfile::tempdir().unwrap();
    let server = dev_server(dir.path(), &[("FAKE_OPENAI_KEY", "sk-refused")]);
    let admin = server.admin().await;
    let (_, run, _) = run_code_change(&admin, codex_record(&fake, &codex)).await;
    assert_refused(&run);
}

/// What a run whose model call was refused as a bad request (400) must show: failed,
/// `executor_failed`, the model API's own error text in the message (Codex does not
/// repeat the status, only the body).
fn assert_bad_request(run: &Value) {
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "executor_failed", "{run:#}");
    let message = run["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the fake model refuses this request"),
        "{message}"
    );
    eprintln!("observed error: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_fails_each_agent_saying_so() {
    let (Some(_), Some(_), Some(codex)) =
        (installed("claude"), installed("gemini"), installed("codex"))
    else {
        return;
    };
    let fake = FakeModels::start(Some(400));
    let dir = tempfile::tempdir().unwrap();
    gemini_settings(dir.path());
    let server = dev_server(
        dir.path(),
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-fake"),
            ("GEMINI_API_KEY", "gemini-fake"),
            ("FAKE_OPENAI_KEY", "sk-fake"),
        ],
    );
    let admin = server.admin().await;
    for record in [
        claude_record(&fake, "claude-code"),
        gemini_record(&fake),
        codex_record(&fake, &codex),
    ] {
        let (_, run, _) = run_code_change(&admin, record).await;
        assert_bad_request(&run);
    }
}
