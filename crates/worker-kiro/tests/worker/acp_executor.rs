//! The `acp` executor against the stand-in's `kiro-cli acp` (a real process speaking
//! ACP over its stdio): a change run and its events, permissions answered by option
//! kind (not position) and by policy, cancel, an agent that dies mid-turn, JSON-RPC
//! errors, refusals, and requests the client does not serve.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use serde_json::Value;
use support::{Dirs, RecordingSink, eventually, is_alive, read_pids, spec, stand_in};
use tlao_domain::{
    AcpConfig, AcpPermission, EventPayload, ExecutionStatus, Executor, LogStream, PlanStatus,
    RunError, RunErrorCode, ToolKind, ToolStatus, Usage,
};
use tlao_worker_kiro::AcpExecutor;

fn acp(args: &[&str], permission: AcpPermission, env: &[(&str, String)]) -> AcpExecutor {
    let mut command = vec![stand_in().to_str().unwrap().to_owned(), "acp".to_owned()];
    command.extend(args.iter().map(|a| (*a).to_owned()));
    AcpExecutor::new(AcpConfig {
        command,
        permission,
        mode: None,
        model: None,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        max_run_seconds: None,
    })
}

fn failure(status: ExecutionStatus) -> RunError {
    match status {
        ExecutionStatus::Failed(error) => error,
        ExecutionStatus::Completed => panic!("expected a failure"),
    }
}

/// The lines the client sent the agent, as JSON.
fn sent(dirs: &Dirs) -> Vec<Value> {
    fs::read_to_string(dirs.path("acp.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn log_env(dirs: &Dirs) -> Vec<(&'static str, String)> {
    vec![(
        "KIRO_STANDIN_ACP_LOG",
        dirs.path("acp.log").to_str().unwrap().to_owned(),
    )]
}

#[tokio::test]
async fn a_change_run_completes_with_tool_call_plan_message_and_usage_events_in_order() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = acp(
        &["--trust-all-tools"],
        AcpPermission::AllowEdits,
        &log_env(&dirs),
    )
    .execute(&spec("code.change", "change the docs"), dirs.context(&sink))
    .await;
    assert_eq!(
        outcome.status,
        ExecutionStatus::Completed,
        "{:?}",
        sink.all()
    );
    assert_eq!(
        fs::read_to_string(dirs.work.join("NEW_FILE.md")).unwrap(),
        "# New file\n\nCreated by the kiro-cli stand-in.\n"
    );
    let events = sink.all();
    let position = |pred: &dyn Fn(&EventPayload) -> bool| events.iter().position(pred);
    // Chunks "Reading the " + "workspace.\nLooking" + " at the files.\n" are two lines.
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            EventPayload::Message { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        messages,
        [
            "Reading the workspace.",
            "Looking at the files.",
            "Created NEW_FILE.md."
        ]
    );
    let calls: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EventPayload::ToolCall(call) => Some(call.clone()),
            _ => None,
        })
        .collect();
    let statuses: Vec<ToolStatus> = calls.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            ToolStatus::Pending,
            ToolStatus::InProgress,
            ToolStatus::Completed
        ]
    );
    let done = calls.last().unwrap();
    assert_eq!(done.id, "tooluse_write_1");
    assert_eq!(done.title, "Creating NEW_FILE.md");
    assert_eq!(done.kind, ToolKind::Edit);
    assert_eq!(done.paths, ["NEW_FILE.md"]);
    assert_eq!(done.diff.as_deref(), Some("+3 -0"));
    let plans: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EventPayload::Plan { entries } => Some(entries.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[1][1].content, "Write NEW_FILE.md");
    assert_eq!(plans[1][1].status, PlanStatus::Completed);
    assert_eq!(plans[0][1].status, PlanStatus::InProgress);
    // Order: the first message, then the plan, the tool call, the final usage.
    let first_message = position(&|e| matches!(e, EventPayload::Message { .. })).unwrap();
    let first_plan = position(&|e| matches!(e, EventPayload::Plan { .. })).unwrap();
    let first_call = position(&|e| matches!(e, EventPayload::ToolCall(_))).unwrap();
    let first_usage = position(&|e| matches!(e, EventPayload::Usage { .. })).unwrap();
    assert!(first_message < first_plan && first_plan < first_call && first_call < first_usage);
    // Kiro's two metering notifications are summed (0.42 + 0.08).
    match &outcome.usage {
        Usage::Reported {
            credits, summary, ..
        } => {
            assert_eq!(credits.as_deref(), Some("0.5"));
            assert!(summary.contains("context 5200/200000 tokens"), "{summary}");
        }
        Usage::Unmeasured => panic!("usage was not recorded"),
    }
    let last_usage = events
        .iter()
        .rev()
        .find_map(|e| match e {
            EventPayload::Usage { usage } => Some(usage.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(last_usage, outcome.usage);
    // The client declined fs and terminal, and sent the absolute cwd.
    let sent = sent(&dirs);
    assert_eq!(sent[0]["method"], "initialize");
    assert_eq!(sent[0]["params"]["protocolVersion"], 1);
    assert_eq!(
        sent[0]["params"]["clientCapabilities"]["fs"]["writeTextFile"],
        false
    );
    assert_eq!(sent[0]["params"]["clientCapabilities"]["terminal"], false);
    assert_eq!(sent[1]["method"], "session/new");
    assert_eq!(sent[1]["params"]["cwd"], dirs.work.to_str().unwrap());
    assert_eq!(sent[2]["method"], "session/prompt");
    assert!(outcome.logs.contains("Reading the workspace."));
}

#[tokio::test]
async fn permission_is_chosen_by_option_kind_not_position() {
    for words in ["change", "change reversed"] {
        let dirs = Dirs::new();
        let sink = RecordingSink::default();
        let outcome = acp(&[], AcpPermission::AllowEdits, &log_env(&dirs))
            .execute(&spec("code.change", words), dirs.context(&sink))
            .await;
        assert_eq!(outcome.status, ExecutionStatus::Completed, "{words}");
        assert!(dirs.work.join("NEW_FILE.md").exists(), "{words}");
        let answer = sent(&dirs)
            .into_iter()
            .find(|m| m["id"] == 1001)
            .expect("the permission request was answered");
        assert_eq!(answer["result"]["outcome"]["outcome"], "selected");
        assert_eq!(answer["result"]["outcome"]["optionId"], "allow_once_opt");
        let system = sink.lines(LogStream::System);
        assert!(
            system.iter().any(|l| l.starts_with(
                "permission: allowed \"Creating NEW_FILE.md\" (edit) by policy allow-edits: option allow_once"
            )),
            "{system:?}"
        );
    }
}

#[tokio::test]
async fn the_deny_policy_refuses_the_tool_and_the_run_still_ends() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = acp(&[], AcpPermission::Deny, &log_env(&dirs))
        .execute(&spec("code.change", "change reversed"), dirs.context(&sink))
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    assert!(!dirs.work.join("NEW_FILE.md").exists());
    let answer = sent(&dirs).into_iter().find(|m| m["id"] == 1001).unwrap();
    assert_eq!(answer["result"]["outcome"]["optionId"], "no_opt");
    let last_call = sink
        .all()
        .into_iter()
        .rev()
        .find_map(|e| match e {
            EventPayload::ToolCall(call) => Some(call),
            _ => None,
        })
        .unwrap();
    assert_eq!(last_call.status, ToolStatus::Failed);
    assert!(
        sink.lines(LogStream::System).iter().any(|l| l.starts_with(
            "permission: refused \"Creating NEW_FILE.md\" (edit) by policy deny: option reject_once"
        )),
        "{:?}",
        sink.lines(LogStream::System)
    );
}

#[tokio::test]
async fn a_cancelled_run_sends_session_cancel_and_its_tree_ends() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let pids = dirs.path("pids");
    let mut env = log_env(&dirs);
    env.push(("KIRO_STANDIN_PIDS_FILE", pids.to_str().unwrap().to_owned()));
    let executor = acp(&["--trust-all-tools"], AcpPermission::AllowEdits, &env);
    let spec = spec("code.change", "hang ask-after-cancel");
    let mut run = Box::pin(executor.execute(&spec, dirs.context(&sink)));
    // Runs until the agent hangs, then the future is dropped (what a cancel does).
    let started = tokio::select! {
        _ = &mut run => false,
        started = eventually(Duration::from_secs(10), || read_pids(&pids).is_some()) => started,
    };
    assert!(started, "the stand-in never hung: {:?}", sink.all());
    assert!(sent(&dirs).iter().all(|m| m["method"] != "session/cancel"));
    drop(run);
    let (agent, child) = read_pids(&pids).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || sent(&dirs).iter().any(
            |m| m["method"] == "session/cancel" && m["params"]["sessionId"] == "sess-1"
        ))
        .await,
        "no session/cancel: {:?}",
        sent(&dirs)
    );
    // The permission the agent asked as the cancel arrived was answered `cancelled`.
    assert!(
        eventually(Duration::from_secs(5), || sent(&dirs).iter().any(
            |m| m["id"] == 1001 && m["result"]["outcome"]["outcome"] == "cancelled"
        ))
        .await,
        "{:?}",
        sent(&dirs)
    );
    // No stray blank line before the cancel (one is written only after a cut-off write).
    let raw = fs::read_to_string(dirs.path("acp.log")).unwrap();
    assert!(!raw.starts_with('\n') && !raw.contains("\n\n"), "{raw:?}");
    assert!(
        eventually(Duration::from_secs(10), || !is_alive(agent)
            && !is_alive(child))
        .await,
        "the agent's tree outlived the cancel"
    );
}

#[tokio::test]
async fn an_agent_that_exits_mid_turn_fails_the_run_with_its_stderr() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = acp(&["--trust-all-tools"], AcpPermission::AllowEdits, &[])
        .execute(&spec("code.change", "crash"), dirs.context(&sink))
        .await;
    let error = failure(outcome.status);
    assert_eq!(error.code, RunErrorCode::ExecutorFailed);
    assert_eq!(error.exit_code, Some(1));
    assert!(
        error
            .message
            .contains("exited with code 1 during session/prompt")
            && error.message.contains("connection to the model lost"),
        "{}",
        error.message
    );
    assert!(
        sink.lines(LogStream::Stderr)
            .iter()
            .any(|l| l.contains("connection to the model lost"))
    );
}

#[tokio::test]
async fn an_agent_that_exits_leaving_a_daemon_on_its_output_fails_at_once() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let started = std::time::Instant::now();
    let executor = acp(&["--trust-all-tools"], AcpPermission::AllowEdits, &[]);
    let spec = spec("code.change", "orphan");
    let run = executor.execute(&spec, dirs.context(&sink));
    let outcome = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the run ended though a daemon held the agent's output open");
    let error = failure(outcome.status);
    assert_eq!(error.exit_code, Some(1), "{}", error.message);
    assert!(
        error.message.contains("left a daemon behind"),
        "{}",
        error.message
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn an_error_answer_a_refusal_and_a_login_failure_are_clear_errors() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let executor = acp(&["--trust-all-tools"], AcpPermission::AllowEdits, &[]);
    let error = failure(
        executor
            .execute(&spec("code.change", "fail"), dirs.context(&sink))
            .await
            .status,
    );
    assert_eq!(error.code, RunErrorCode::ExecutorFailed);
    assert!(
        error.message.contains(
            "answered session/prompt with error -32603: Internal error: the model failed"
        ),
        "{}",
        error.message
    );
    let error = failure(
        executor
            .execute(&spec("code.change", "refuse"), dirs.context(&sink))
            .await
            .status,
    );
    assert!(
        error
            .message
            .contains("refused the task (stopReason refusal)")
    );
    let logged_out = acp(
        &[],
        AcpPermission::AllowEdits,
        &[("KIRO_STANDIN_LOGGED_OUT", "1".to_owned())],
    );
    let error = failure(
        logged_out
            .execute(&spec("code.change", "change"), dirs.context(&sink))
            .await
            .status,
    );
    assert_eq!(error.code, RunErrorCode::ExecutorUnavailable);
    assert!(
        error.message.contains("Authentication required"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn an_unknown_flag_and_a_missing_program_fail_clearly() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let error = failure(
        acp(&["--no-such-flag"], AcpPermission::AllowEdits, &[])
            .execute(&spec("code.change", "change"), dirs.context(&sink))
            .await
            .status,
    );
    assert_eq!(error.exit_code, Some(2));
    assert!(
        error.message.contains("during initialize")
            && error
                .message
                .contains("unexpected argument '--no-such-flag'"),
        "{}",
        error.message
    );
    let missing = AcpExecutor::new(AcpConfig {
        command: vec!["/nonexistent/agent-acp".to_owned()],
        permission: AcpPermission::AllowAll,
        mode: None,
        model: None,
        env: BTreeMap::new(),
        max_run_seconds: None,
    });
    let error = failure(
        missing
            .execute(&spec("code.change", "change"), dirs.context(&sink))
            .await
            .status,
    );
    assert_eq!(error.code, RunErrorCode::ExecutorUnavailable);
    assert!(error.message.contains("was not found on this worker"));
}

#[tokio::test]
async fn a_program_that_does_not_speak_acp_is_unavailable_after_the_startup_timeout() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let silent = AcpExecutor::new(AcpConfig {
        command: vec!["sleep".to_owned(), "30".to_owned()],
        permission: AcpPermission::AllowEdits,
        mode: None,
        model: None,
        env: BTreeMap::new(),
        max_run_seconds: None,
    })
    .with_startup_timeout(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let error = failure(
        silent
            .execute(&spec("code.change", "change"), dirs.context(&sink))
            .await
            .status,
    );
    assert_eq!(error.code, RunErrorCode::ExecutorUnavailable);
    assert!(
        error
            .message
            .contains("did not answer ACP's initialize within 0.5 s"),
        "{}",
        error.message
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn an_unknown_agent_request_is_answered_method_not_found() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let outcome = acp(
        &["--trust-all-tools"],
        AcpPermission::AllowEdits,
        &log_env(&dirs),
    )
    .execute(
        &spec("code.change", "ask-unknown think"),
        dirs.context(&sink),
    )
    .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    let answer = sent(&dirs).into_iter().find(|m| m["id"] == 1001).unwrap();
    assert_eq!(answer["error"]["code"], -32601);
    let messages: Vec<String> = sink
        .all()
        .into_iter()
        .filter_map(|e| match e {
            EventPayload::Message { text } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        messages.contains(&"The client answered the unknown request with -32601.".to_owned()),
        "{messages:?}"
    );
    assert!(
        sink.lines(LogStream::System)
            .contains(&"thought: The user wants a file.".to_owned())
    );
}

#[tokio::test]
async fn a_configured_mode_and_model_are_selected() {
    let dirs = Dirs::new();
    let sink = RecordingSink::default();
    let mut command = vec![stand_in().to_str().unwrap().to_owned(), "acp".to_owned()];
    command.push("--trust-all-tools".to_owned());
    let executor = AcpExecutor::new(AcpConfig {
        command,
        permission: AcpPermission::AllowEdits,
        mode: Some("kiro_planner".to_owned()),
        model: Some("claude-sonnet-4".to_owned()),
        env: log_env(&dirs)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        max_run_seconds: None,
    });
    let outcome = executor
        .execute(&spec("code.change", "look"), dirs.context(&sink))
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    let methods: Vec<String> = sent(&dirs)
        .iter()
        .filter_map(|m| m["method"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "session/new",
            "session/set_mode",
            "session/set_model",
            "session/prompt"
        ]
    );
}
