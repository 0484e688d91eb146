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

use crate::common;

use std::path::Path;

use common::agents::{
    FakeModels, agents_dir, assert_refused, assert_wrote_the_file, dev_server, gemini_settings,
    installed, run_code_change,
};
use serde_json::{Value, json};

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
