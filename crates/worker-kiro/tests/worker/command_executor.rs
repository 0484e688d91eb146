//! The `command` executor: placeholders in any argument, extra environment, the prompt
//! on stdin, failures with the stderr tail, and a missing program.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::fs;

use support::{Dirs, RecordingSink, spec, stand_in};
use tlao_domain::{
    ArtifactType, CommandConfig, ExecutionStatus, Executor, LogStream, PromptVia, RunErrorCode,
    Usage,
};
use tlao_worker_kiro::CommandExecutor;

fn command(argv: &[&str], prompt_via: PromptVia) -> CommandExecutor {
    CommandExecutor::new(CommandConfig {
        command: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: BTreeMap::new(),
        prompt_via,
        max_run_seconds: None,
    })
}

#[tokio::test]
async fn placeholders_are_substituted_in_any_argument() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let executor = command(
        &[
            "sh",
            "-c",
            "printf '%s' \"$1\" > \"$2\"; pwd > {outdir}/cwd.txt; echo \"dirs: $3\"",
            "sh",
            "{prompt}",
            "{outdir}/prompt.txt",
            "work={workdir} out={outdir}",
        ],
        PromptVia::Arg,
    );
    let outcome = executor
        .execute(
            &spec("doc.write", "write the {outdir} docs"),
            dirs.context(&sink),
        )
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    let prompt = fs::read_to_string(dirs.out.join("prompt.txt")).unwrap();
    assert!(prompt.starts_with("write the {outdir} docs\n"), "{prompt}");
    assert!(
        prompt.contains(&dirs.out.display().to_string()),
        "the prompt says where to write"
    );
    let cwd = fs::read_to_string(dirs.out.join("cwd.txt")).unwrap();
    assert_eq!(
        cwd.trim(),
        fs::canonicalize(&dirs.work).unwrap().to_str().unwrap()
    );
    let expected = format!(
        "dirs: work={} out={}",
        dirs.work.display(),
        dirs.out.display()
    );
    assert!(
        sink.lines(LogStream::Stdout).contains(&expected),
        "{:?}",
        sink.lines(LogStream::Stdout)
    );
    let names: Vec<&str> = outcome.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["cwd.txt", "prompt.txt"]);
    assert_eq!(outcome.usage, Usage::Unmeasured);
}

#[tokio::test]
async fn the_prompt_can_arrive_on_stdin() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let executor = command(&["sh", "-c", "cat > {outdir}/stdin.txt"], PromptVia::Stdin);
    let outcome = executor
        .execute(&spec("code.change", "from stdin"), dirs.context(&sink))
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    let received = fs::read_to_string(dirs.out.join("stdin.txt")).unwrap();
    assert!(received.starts_with("from stdin\n"), "{received}");
}

#[tokio::test]
async fn extra_environment_and_the_output_dir_reach_the_program() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let mut env = BTreeMap::new();
    env.insert("GREETING".to_owned(), "hello".to_owned());
    let executor = CommandExecutor::new(CommandConfig {
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo \"$GREETING $TLAO_OUTPUT_DIR\"".into(),
        ],
        env,
        prompt_via: PromptVia::Arg,
        max_run_seconds: None,
    });
    executor
        .execute(&spec("code.change", "x"), dirs.context(&sink))
        .await;
    let expected = format!("hello {}", dirs.out.display());
    assert_eq!(sink.lines(LogStream::Stdout), [expected]);
}

#[tokio::test]
async fn the_stand_in_kiro_cli_works_as_a_command_executor_with_stdin() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let binary = stand_in();
    let executor = command(
        &[
            binary.to_str().unwrap(),
            "chat",
            "--no-interactive",
            "--trust-all-tools",
        ],
        PromptVia::Stdin,
    );
    let outcome = executor
        .execute(
            &spec("spec.generate", "a small service"),
            dirs.context(&sink),
        )
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    let plan = outcome
        .artifacts
        .iter()
        .find(|a| a.name.as_str() == "plan.json")
        .unwrap();
    assert_eq!(plan.artifact_type, ArtifactType::Plan);
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_the_stderr_tail() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let executor = command(
        &[
            "sh",
            "-c",
            "echo working; echo 'boom: disk on fire' >&2; exit 7",
        ],
        PromptVia::Arg,
    );
    let outcome = executor
        .execute(&spec("code.change", "x"), dirs.context(&sink))
        .await;
    let ExecutionStatus::Failed(error) = outcome.status else {
        panic!("expected a failure");
    };
    assert_eq!(error.code, RunErrorCode::ExecutorFailed);
    assert_eq!(error.exit_code, Some(7));
    assert_eq!(
        error.message,
        "sh failed (exit code 7):\nboom: disk on fire"
    );
}

#[tokio::test]
async fn the_stderr_tail_is_bounded() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let executor = command(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 3000 ]; do echo \"error line $i\" >&2; i=$((i+1)); done; exit 1",
        ],
        PromptVia::Arg,
    );
    let outcome = executor
        .execute(&spec("code.change", "x"), dirs.context(&sink))
        .await;
    let ExecutionStatus::Failed(error) = outcome.status else {
        panic!("expected a failure");
    };
    assert!(
        error.message.len() <= 4 * 1024 + 100,
        "{} bytes",
        error.message.len()
    );
    assert!(
        error.message.ends_with("error line 2999"),
        "{}",
        error.message
    );
    assert_eq!(sink.lines(LogStream::Stderr).len(), 3000);
}

#[tokio::test]
async fn a_missing_program_makes_the_executor_unavailable() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let executor = command(&["no-such-agent-cli", "{prompt}"], PromptVia::Arg);
    let outcome = executor
        .execute(&spec("code.change", "x"), dirs.context(&sink))
        .await;
    let ExecutionStatus::Failed(error) = outcome.status else {
        panic!("expected a failure");
    };
    assert_eq!(error.code, RunErrorCode::ExecutorUnavailable);
    assert!(
        error
            .message
            .contains("\"no-such-agent-cli\" was not found on this worker"),
        "{}",
        error.message
    );
}
