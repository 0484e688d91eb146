//! Requirement 13.4: the worker's log lines about a run carry the run's workspace, the
//! run and the operation, so a platform operator can follow one run across the worker's
//! JSON log (`TLAO_LOG_FORMAT=json`) and the server's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::fake_api::{FakeApi, TOKEN};
use tlao_domain::{CommandConfig, ExecutorConfig, PromptVia, TaskType};
use tlao_worker_kiro::run_once;

/// Everything logged, as bytes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_log_line_about_a_run_names_its_workspace_run_and_operation() {
    // The same JSON layout as `tlao worker` with TLAO_LOG_FORMAT=json (one test in this
    // binary, so the global subscriber is this test's alone).
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .init();
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        TaskType::DocWrite,
        ExecutorConfig::Command(CommandConfig {
            command: vec![
                "sh".into(),
                "-c".into(),
                "echo doc > {outdir}/doc.md".into(),
            ],
            env: BTreeMap::new(),
            prompt_via: PromptVia::Arg,
            max_run_seconds: None,
        }),
        "write",
        None,
        60_000,
    );
    // Failing uploads add warnings (the error path) to the run's start and finish.
    api.with(|s| s.fail_uploads = true);
    let config = support::sandboxed_worker(&api.url, TOKEN, &tmp.path().join("runs"));

    run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|line: &Value| line["run_id"].is_string())
        .collect();
    let warnings = lines.iter().filter(|l| l["level"] == "WARN").count();
    assert!(lines.len() >= 3 && warnings >= 1, "{text}");
    let workspace = api.with(|s| s.assignment.as_ref().unwrap().run.workspace_id.to_string());
    for line in &lines {
        assert_eq!(line["run_id"], api.run_id.to_string(), "{line}");
        assert_eq!(line["workspace_id"], workspace, "{line}");
        assert!(
            line["operation"].as_str().is_some_and(|op| !op.is_empty()),
            "{line}"
        );
    }
}
