//! The real agent CLIs of the real-agent tests (`stream_agents.rs`, `acp_agents.rs`):
//! where `scripts/lib/agents.sh` installed them, the project's fake model endpoints
//! (`tests/fake_models`), a `tlao dev` that finds the agents on its `PATH`, and what a
//! run that wrote the fake model's file must show.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use super::{Api, DevServer};

/// The file the fake model asks each agent to write, and what it holds.
pub const FILE: &str = "agent-note.txt";
pub const CONTENT: &str = "written by the agent at the fake model's request";

/// Where `scripts/lib/agents.sh` installed the CLIs.
pub fn agents_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TLAO_TEST_AGENTS_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("agents")
}

/// The `bin` of the headless CLIs, run on the machine's own Node.js.
pub fn cli_bin() -> PathBuf {
    agents_dir().join("node_modules/.bin")
}

/// The `bin` of the ACP adapters of Claude Code and Codex, with the Node.js 22 they need
/// (`node` is in it too, so it must come first on the `PATH` of their runs only).
pub fn acp_bin() -> PathBuf {
    agents_dir().join("acp/node_modules/.bin")
}

/// The installed CLI `name` (`claude`, `gemini`, `codex`), or `None` after printing why
/// the test skips.
pub fn installed(name: &str) -> Option<PathBuf> {
    installed_in(&cli_bin(), name)
}

/// The program `name` in `bin` (see [`cli_bin`], [`acp_bin`]), or `None` after printing
/// why the test skips.
pub fn installed_in(bin: &Path, name: &str) -> Option<PathBuf> {
    let bin = bin.join(name);
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
pub struct FakeModels {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

impl FakeModels {
    /// Starts them; `fail` answers every model call with that HTTP status.
    pub fn start(fail: Option<u16>) -> FakeModels {
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

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeModels {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `tlao dev` whose HOME is `dir/home` and whose PATH starts with the CLIs' `bin`.
pub fn dev_server(dir: &Path, env: &[(&str, &str)]) -> DevServer {
    dev_server_on(dir, &[cli_bin()], env)
}

/// A `tlao dev` whose HOME is `dir/home` and whose PATH starts with `bins`, in order.
pub fn dev_server_on(dir: &Path, bins: &[PathBuf], env: &[(&str, &str)]) -> DevServer {
    let mut path: Vec<String> = bins.iter().map(|b| b.display().to_string()).collect();
    path.push(std::env::var("PATH").unwrap_or_default());
    let path = path.join(":");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let home = home.display().to_string();
    let mut all = vec![("PATH", path.as_str()), ("HOME", home.as_str())];
    all.extend_from_slice(env);
    DevServer::start(&dir.join("data"), &dir.join("config"), &all)
}

/// Registers `record`, runs a `code.change` task on it against a one-file archive, and
/// returns the final run and its events.
pub async fn run_code_change(admin: &Api, record: Value) -> (String, Value, Vec<(String, Value)>) {
    let name = record["name"].as_str().unwrap().to_owned();
    let (code, created) = admin.post("/executors", record).await;
    assert_eq!(code, 201, "{created}");
    let ws = admin.create_workspace(&format!("ws-{name}")).await;
    let archive = super::archives::tar_gz(&[("README.md", b"# Sample\n".as_slice())]);
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
            super::FINAL_STATUSES.contains(&run["status"].as_str().unwrap_or_default())
        })
        .await;
    let events = admin.events(&run_id).await;
    (run_id, run, events)
}

/// What a successful run must show: completed, the patch adding the file, tool calls and
/// usage streamed, usage recorded. Returns a one-line summary of the event types seen.
pub async fn assert_wrote_the_file(
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
pub fn assert_refused(run: &Value) {
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "executor_unavailable", "{run:#}");
    let message = run["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("credentials were refused") && message.contains("401"),
        "{message}"
    );
    eprintln!("observed error: {message}");
}

/// The worker's Gemini settings: API-key authentication.
pub fn gemini_settings(dir: &Path) {
    let gemini = dir.join("home/.gemini");
    std::fs::create_dir_all(&gemini).unwrap();
    std::fs::write(
        gemini.join("settings.json"),
        r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}}"#,
    )
    .unwrap();
}
