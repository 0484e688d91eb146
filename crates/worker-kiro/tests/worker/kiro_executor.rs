//! The `kiro` executor against the stand-in kiro-cli: the headless command line, plan
//! files, ANSI stripping, usage, exit codes 1/3/4, a missing binary, and preflight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::fs;

use support::{Dirs, RecordingSink, spec, stand_in, stand_in_with_env};
use tlao_domain::{
    ArtifactType, ExecutionStatus, Executor, KiroConfig, LogStream, RunError, RunErrorCode, Usage,
};
use tlao_worker_kiro::KiroExecutor;

fn config(binary: &str) -> KiroConfig {
    KiroConfig {
        binary: binary.to_owned(),
        agent: None,
        extra_args: Vec::new(),
        preflight: false,
        max_run_seconds: None,
        harness: Default::default(),
    }
}

fn kiro() -> KiroExecutor {
    KiroExecutor::new(config(stand_in().to_str().unwrap()))
}

fn failure(status: ExecutionStatus) -> RunError {
    match status {
        ExecutionStatus::Failed(error) => error,
        ExecutionStatus::Completed => panic!("expected a failure"),
    }
}

#[tokio::test]
async fn a_spec_generate_run_writes_the_plan_and_reports_credits() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = kiro()
        .execute(
            &spec("spec.generate", "design a cache"),
            dirs.context(&sink),
        )
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    let plan = outcome
        .artifacts
        .iter()
        .find(|a| a.name.as_str() == "plan.json")
        .expect("a plan artifact");
    assert_eq!(plan.artifact_type, ArtifactType::Plan);
    assert_eq!(plan.content_type, "application/json");
    let parsed: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&plan.path).unwrap()).unwrap();
    assert!(parsed["steps"].is_array());
    assert_eq!(
        outcome.usage,
        Usage::reported(Some("0.42".into()), "▸ Credits: 0.42 • Time: 1s")
    );
}

#[tokio::test]
async fn ansi_codes_are_stripped_from_every_line_and_the_transcript() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = kiro()
        .execute(&spec("doc.write", "lines:3"), dirs.context(&sink))
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    let stdout = sink.lines(LogStream::Stdout);
    assert!(stdout.contains(&"line 1".to_owned()), "{stdout:?}");
    assert!(
        stdout
            .iter()
            .any(|l| l.starts_with("> Reading the workspace in ")),
        "{stdout:?}"
    );
    let all_text: Vec<String> = sink
        .lines(LogStream::Stdout)
        .into_iter()
        .chain(sink.lines(LogStream::Stderr))
        .collect();
    assert!(
        all_text.iter().all(|l| !l.contains('\u{1b}')),
        "{all_text:?}"
    );
    assert!(!outcome.logs.contains('\u{1b}'));
    assert!(outcome.logs.contains("line 3\n"));
    assert!(outcome.logs.contains("▸ Credits: 0.42"));
    // doc.write asks for documents in the output directory.
    let guide = outcome
        .artifacts
        .iter()
        .find(|a| a.name.as_str() == "guide.md")
        .unwrap();
    assert_eq!(guide.artifact_type, ArtifactType::Document);
}

#[tokio::test]
async fn lines_arrive_in_order_as_log_events() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    kiro()
        .execute(&spec("doc.write", "lines:200"), dirs.context(&sink))
        .await;
    let numbered: Vec<String> = sink
        .lines(LogStream::Stdout)
        .into_iter()
        .filter(|l| l.starts_with("line "))
        .collect();
    let expected: Vec<String> = (1..=200).map(|i| format!("line {i}")).collect();
    assert_eq!(numbered, expected);
}

#[tokio::test]
async fn the_command_line_follows_the_headless_contract() {
    let dirs = Dirs::new();
    let args_file = dirs.path("args.txt");
    let env_file = dirs.path("env.txt");
    let binary = stand_in_with_env(
        &dirs.path("kiro-wrapper"),
        &[
            ("KIRO_STANDIN_ARGS_FILE", args_file.to_str().unwrap()),
            ("KIRO_STANDIN_ENV_FILE", env_file.to_str().unwrap()),
        ],
    );
    let mut config = config(binary.to_str().unwrap());
    config.agent = Some("reviewer".into());
    config.extra_args = vec!["--model".into(), "claude-sonnet".into()];
    let sink = RecordingSink::default();
    let outcome = KiroExecutor::new(config)
        .execute(
            &spec("code.change", "change it: rename the function"),
            dirs.context(&sink),
        )
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    let args = fs::read_to_string(&args_file).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        &args[..9],
        [
            "--no-interactive",
            "--trust-all-tools",
            "--wrap",
            "never",
            "--v2",
            "--agent",
            "reviewer",
            "--model",
            "claude-sonnet"
        ]
    );
    assert_eq!(
        args.len(),
        9,
        "the prompt is not on the command line (ps shows it to every local user): {args:?}"
    );
    // It reached the agent through standard input: a `change` prompt edits the workdir.
    assert!(
        dirs.work.join("NEW_FILE.md").exists(),
        "the prompt was not read"
    );
    let env = fs::read_to_string(&env_file).unwrap();
    assert!(
        env.contains(&format!("TLAO_OUTPUT_DIR={}", dirs.out.display())),
        "{env}"
    );
}

#[tokio::test]
async fn a_code_change_edits_the_working_directory() {
    let dirs = Dirs::new();
    fs::write(dirs.work.join("README.md"), "# Project\n").unwrap();
    fs::write(dirs.work.join("obsolete.txt"), "old\n").unwrap();
    let sink = RecordingSink::default();
    let outcome = kiro()
        .execute(&spec("code.change", "tidy up"), dirs.context(&sink))
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    assert!(
        fs::read_to_string(dirs.work.join("README.md"))
            .unwrap()
            .contains("Changed by the kiro-cli stand-in.")
    );
    assert!(dirs.work.join("NEW_FILE.md").exists());
    assert!(!dirs.work.join("obsolete.txt").exists());
}

#[tokio::test]
async fn exit_1_fails_with_the_stderr_text_and_the_exit_code() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = kiro()
        .execute(&spec("spec.generate", "please fail"), dirs.context(&sink))
        .await;
    let error = failure(outcome.status);
    assert_eq!(error.code, RunErrorCode::ExecutorFailed);
    assert_eq!(error.exit_code, Some(1));
    assert!(
        error.message.starts_with("kiro-cli failed (exit code 1)"),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .contains("error: the model refused the request (stand-in failure)"),
        "{}",
        error.message
    );
    assert_eq!(
        outcome.usage,
        Usage::Unmeasured,
        "no credits line: unmeasured, not zero"
    );
}

#[tokio::test]
async fn exit_3_means_an_mcp_server_failed_to_start() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = kiro()
        .execute(&spec("spec.generate", "mcp-fail"), dirs.context(&sink))
        .await;
    let error = failure(outcome.status);
    assert_eq!(error.exit_code, Some(3));
    assert!(
        error.message.contains("an MCP server failed to start"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("stand-in-tools"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn exit_4_means_the_agent_was_not_found() {
    let dirs = Dirs::new();
    let mut config = config(stand_in().to_str().unwrap());
    config.agent = Some("missing".into());
    let sink = RecordingSink::default();
    let outcome = KiroExecutor::new(config)
        .execute(&spec("spec.generate", "anything"), dirs.context(&sink))
        .await;
    let error = failure(outcome.status);
    assert_eq!(error.exit_code, Some(4));
    assert!(
        error
            .message
            .contains("the requested agent \"missing\" was not found"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_crash_is_a_failure_naming_the_signal() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = kiro()
        .execute(&spec("spec.generate", "crash"), dirs.context(&sink))
        .await;
    let error = failure(outcome.status);
    assert_eq!(error.code, RunErrorCode::ExecutorFailed);
    assert_eq!(error.exit_code, None);
    assert!(
        error.message.contains("killed by signal 9"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_missing_binary_makes_the_executor_unavailable() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = KiroExecutor::new(config("kiro-cli-that-does-not-exist"))
        .execute(&spec("spec.generate", "plan"), dirs.context(&sink))
        .await;
    let error = failure(outcome.status);
    assert_eq!(error.code, RunErrorCode::ExecutorUnavailable);
    assert!(
        error
            .message
            .contains("\"kiro-cli-that-does-not-exist\" was not found on this worker"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("install kiro-cli"),
        "{}",
        error.message
    );
    assert!(
        sink.lines(LogStream::System)
            .iter()
            .any(|l| l.contains("was not found"))
    );
}

#[tokio::test]
async fn preflight_fails_a_worker_that_is_not_logged_in() {
    let dirs = Dirs::new();
    let binary = stand_in_with_env(
        &dirs.path("kiro-logged-out"),
        &[("KIRO_STANDIN_LOGGED_OUT", "1")],
    );
    let mut config = config(binary.to_str().unwrap());
    config.preflight = true;
    let sink = RecordingSink::default();
    let outcome = KiroExecutor::new(config)
        .execute(&spec("spec.generate", "plan"), dirs.context(&sink))
        .await;
    let error = failure(outcome.status);
    assert_eq!(error.code, RunErrorCode::ExecutorUnavailable);
    assert!(
        error
            .message
            .starts_with("kiro-cli is not logged in on this worker: run `"),
        "{}",
        error.message
    );
    assert!(error.message.contains("login"), "{}", error.message);
    assert!(!dirs.out.join("plan.json").exists(), "chat must not run");
}

#[tokio::test]
async fn preflight_lets_a_logged_in_worker_run() {
    let dirs = Dirs::new();
    let mut config = config(stand_in().to_str().unwrap());
    config.preflight = true;
    let sink = RecordingSink::default();
    let outcome = KiroExecutor::new(config)
        .execute(&spec("spec.generate", "plan"), dirs.context(&sink))
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    assert!(
        sink.lines(LogStream::Stdout)
            .iter()
            .any(|l| l.contains("Logged in as"))
    );
}

#[tokio::test]
async fn the_stand_in_records_when_chat_started() {
    let dirs = Dirs::new();
    let started = dirs.path("started.txt");
    let binary = stand_in_with_env(
        &dirs.path("kiro-timed"),
        &[("KIRO_STANDIN_STARTED_FILE", started.to_str().unwrap())],
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let sink = RecordingSink::default();
    KiroExecutor::new(config(binary.to_str().unwrap()))
        .execute(&spec("spec.generate", "plan"), dirs.context(&sink))
        .await;
    let recorded: i64 = fs::read_to_string(&started)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        recorded >= before && recorded - before < 5_000_000,
        "{recorded} vs {before}"
    );
}

#[tokio::test]
async fn the_harness_is_explicit_and_flags_the_installed_kiro_cli_does_not_list_are_left_out() {
    let dirs = Dirs::new();
    let args_file = dirs.path("args.txt");
    let binary = stand_in_with_env(
        &dirs.path("kiro-v3"),
        &[("KIRO_STANDIN_ARGS_FILE", args_file.to_str().unwrap())],
    );
    let mut config = config(binary.to_str().unwrap());
    config.harness = tlao_domain::KiroHarness::V3;
    // The stand-in, like kiro-cli, exits 2 on a flag it does not know.
    config.extra_args = vec!["--not-a-kiro-flag".into(), "value".into()];
    let sink = RecordingSink::default();
    let outcome = KiroExecutor::new(config)
        .execute(&spec("doc.write", "write docs"), dirs.context(&sink))
        .await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Completed,
        "{}",
        outcome.logs
    );
    let args = fs::read_to_string(&args_file).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert!(args.contains(&"--v3"), "{args:?}");
    assert!(!args.contains(&"--v2"), "{args:?}");
    assert!(
        !args.contains(&"--not-a-kiro-flag") && !args.contains(&"value"),
        "{args:?}"
    );
    let system = sink.lines(LogStream::System);
    assert!(
        system
            .iter()
            .any(|l| l.contains("does not list --not-a-kiro-flag")),
        "{system:?}"
    );
}

#[tokio::test]
async fn an_older_kiro_cli_without_harness_flags_runs_its_default_and_the_log_says_so() {
    let dirs = Dirs::new();
    let args_file = dirs.path("args.txt");
    let binary = stand_in_with_env(
        &dirs.path("kiro-old"),
        &[
            ("KIRO_STANDIN_ARGS_FILE", args_file.to_str().unwrap()),
            ("KIRO_STANDIN_NO_HARNESS", "1"),
        ],
    );
    let sink = RecordingSink::default();
    let outcome = KiroExecutor::new(config(binary.to_str().unwrap()))
        .execute(&spec("doc.write", "write docs"), dirs.context(&sink))
        .await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Completed,
        "{}",
        outcome.logs
    );
    let args = fs::read_to_string(&args_file).unwrap();
    assert!(!args.lines().any(|l| l == "--v2"), "{args}");
    let system = sink.lines(LogStream::System);
    assert!(
        system.iter().any(|l| l.contains("does not list --v2")),
        "{system:?}"
    );
}

#[test]
fn listed_flags_are_read_from_help_text() {
    let flags = tlao_worker_kiro::kiro::listed_flags(
        "  -w, --wrap <WRAP>  Line wrapping\n      --no-interactive  Headless\n  -h, --help\n --v3 [x]",
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    assert_eq!(flags, ["--help", "--no-interactive", "--v3", "--wrap"]);
}
