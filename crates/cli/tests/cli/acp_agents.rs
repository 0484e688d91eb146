//! Real agents over the Agent Client Protocol under `tlao dev`, offline: Gemini CLI
//! (`gemini --acp`), Claude Code through `@agentclientprotocol/claude-agent-acp` and Codex
//! through `@agentclientprotocol/codex-acp`, installed from npm at pinned versions by
//! `scripts/lib/agents.sh` (the two adapters with the Node.js 22 they need, also from
//! npm), each run as an `acp` executor made from its preset against the project's fake
//! model endpoints on loopback, sandboxed with what the record grants.
//!
//! Each `code.change` run must complete with a `changes.patch` adding the file the fake
//! model asked for, stream `tool_call` and `usage` events and record usage; a fake that
//! refuses the key must make a failed run saying so.
//!
//! Skipped, saying why, only when the npm install is absent (`scripts/test` makes it).

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::agents::{
    FakeModels, acp_bin, agents_dir, assert_wrote_the_file, cli_bin, dev_server_on,
    gemini_settings, installed_in, run_code_change,
};
use serde_json::{Value, json};

/// The preset `name` from `crates/wire/presets/presets.json` (what `tlao executors add
/// --preset` posts), with `env` added to its config and its sandbox opened to the agents'
/// install (read) and the fake's port; the keys named in `keys` pass through.
fn preset(name: &str, fake: &FakeModels, env: Value, keys: &[&str]) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wire/presets/presets.json");
    let presets: Vec<Value> = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let mut record = presets
        .into_iter()
        .find(|p| p["preset"] == name)
        .unwrap_or_else(|| panic!("no preset {name}"))["record"]
        .clone();
    assert_eq!(record["kind"], "acp", "{record:#}");
    record["config"]["env"] = env;
    let sandbox = &mut record["sandbox"];
    let env = sandbox["env"].as_array_mut().unwrap();
    env.extend(keys.iter().map(|k| json!(k)));
    sandbox["readPaths"] = json!([agents_dir().canonicalize().unwrap()]);
    sandbox["network"] = json!({"tcpPorts": [fake.port]});
    record
}

fn gemini_acp(fake: &FakeModels) -> Value {
    preset(
        "gemini-acp",
        fake,
        json!({"GOOGLE_GEMINI_BASE_URL": fake.url(), "GEMINI_CLI_TRUST_WORKSPACE": "true"}),
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_over_acp_writes_the_file_and_reports_tokens() {
    let Some(_) = installed_in(&cli_bin(), "gemini") else {
        return;
    };
    let fake = FakeModels::start(None);
    let dir = tempfile::tempdir().unwrap();
    gemini_settings(dir.path());
    let server = dev_server_on(
        dir.path(),
        &[cli_bin()],
        &[("GEMINI_API_KEY", "gemini-fake")],
    );
    let admin = server.admin().await;
    let (run_id, run, events) = run_code_change(&admin, gemini_acp(&fake)).await;
    assert_wrote_the_file(&admin, &run_id, &run, &events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_over_acp_with_a_refused_key_fails_saying_so() {
    let Some(_) = installed_in(&cli_bin(), "gemini") else {
        return;
    };
    let fake = FakeModels::start(Some(401));
    let dir = tempfile::tempdir().unwrap();
    gemini_settings(dir.path());
    let server = dev_server_on(
        dir.path(),
        &[cli_bin()],
        &[("GEMINI_API_KEY", "gemini-refused")],
    );
    let admin = server.admin().await;
    let (_, run, _) = run_code_change(&admin, gemini_acp(&fake)).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let message = run["error"]["message"].as_str().unwrap_or_default();
    eprintln!("observed error: {} {message}", run["error"]["code"]);
    assert_eq!(run["error"]["code"], "executor_unavailable", "{run:#}");
    assert!(
        message.contains("401") && message.contains("not set up"),
        "{run:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_over_acp_writes_the_file_and_reports_tokens_and_cost() {
    let Some(_) = installed_in(&acp_bin(), "claude-agent-acp") else {
        return;
    };
    let fake = FakeModels::start(None);
    let dir = tempfile::tempdir().unwrap();
    let server = dev_server_on(
        dir.path(),
        &[acp_bin()],
        &[("ANTHROPIC_API_KEY", "sk-ant-fake")],
    );
    let admin = server.admin().await;
    // The adapter refuses to start a session as root (CI runs as root) unless told it
    // is sandboxed, which the run is.
    let env = json!({
        "ANTHROPIC_BASE_URL": fake.url(),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "IS_SANDBOX": "1"
    });
    let record = preset("claude-code-acp", &fake, env, &[]);
    let (run_id, run, events) = run_code_change(&admin, record).await;
    assert_wrote_the_file(&admin, &run_id, &run, &events).await;
    let cost = &run["usage"]["cost"];
    assert_eq!(cost["currency"], "USD", "{run:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_over_acp_writes_the_file_and_reports_tokens() {
    let Some(_) = installed_in(&acp_bin(), "codex-acp") else {
        return;
    };
    let fake = FakeModels::start(None);
    let dir = tempfile::tempdir().unwrap();
    // codex-acp starts `codex app-server`, which reads its provider from
    // ~/.codex/config.toml: the fake, as a Responses provider, and the model slug whose
    // bundled tools include apply_patch.
    let codex = dir.path().join("home/.codex");
    std::fs::create_dir_all(&codex).unwrap();
    std::fs::write(
        codex.join("config.toml"),
        format!(
            "model = \"gpt-5.5\"\nmodel_provider = \"fake\"\n\n[model_providers.fake]\n\
             name = \"fake\"\nbase_url = \"{}/v1\"\nwire_api = \"responses\"\n\
             env_key = \"FAKE_OPENAI_KEY\"\n",
            fake.url()
        ),
    )
    .unwrap();
    let server = dev_server_on(dir.path(), &[acp_bin()], &[("FAKE_OPENAI_KEY", "sk-fake")]);
    let admin = server.admin().await;
    let record = preset("codex-acp", &fake, json!({}), &["FAKE_OPENAI_KEY"]);
    let (run_id, run, events) = run_code_change(&admin, record).await;
    assert_wrote_the_file(&admin, &run_id, &run, &events).await;
}
