//! The worker's run loop against a fake control plane: a run from lease to completion
//! with its artifacts, hostile archives, deadlines, cancels, lost leases, failed
//! uploads, event batching and heartbeats. The real server's end-to-end tests cover
//! the same paths against `tlao dev`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::fake_api::{FakeApi, TOKEN, now_millis, sha256_hex};
use support::{eventually, is_alive, read_pids, stand_in, stand_in_with_env};
use tlao_domain::{
    ArtifactStatus, ArtifactType, CommandConfig, EventPayload, ExecutorConfig, KiroConfig,
    PromptVia, RunErrorCode, RunStatus, TaskType, Usage,
};
use tlao_sdk::worker::CompletionStatus;
use tlao_worker_kiro::{WorkerConfig, run_assigned, run_once};

fn kiro(binary: &Path) -> ExecutorConfig {
    ExecutorConfig::Kiro(KiroConfig {
        binary: binary.to_str().unwrap().to_owned(),
        agent: None,
        extra_args: Vec::new(),
        preflight: false,
        max_run_seconds: None,
        harness: Default::default(),
    })
}

fn shell(script: &str) -> ExecutorConfig {
    ExecutorConfig::Command(CommandConfig {
        command: vec!["sh".into(), "-c".into(), script.into()],
        env: BTreeMap::new(),
        prompt_via: PromptVia::Arg,
        max_run_seconds: None,
    })
}

fn worker(api: &FakeApi, work_root: &Path) -> WorkerConfig {
    support::sandboxed_worker(&api.url, TOKEN, work_root)
}

/// A tar.gz of `(name, content, mode)` files.
fn archive(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (name, content, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Whether no run left anything in `root` (the workers' probe cache is not a run's).
fn work_root_is_empty(root: &Path) -> bool {
    fs::read_dir(root).map_or(true, |entries| {
        entries
            .flatten()
            .all(|entry| entry.file_name() == tlao_worker_kiro::probe_cache::FILE_NAME)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_change_run_uploads_its_plan_patch_and_transcript_and_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let original = archive(&[
        ("README.md", "# Project\n", 0o644),
        ("obsolete.txt", "old\n", 0o644),
        ("bin/tool.sh", "#!/bin/sh\n", 0o755),
    ]);
    let api = FakeApi::start(
        TaskType::CodeChange,
        kiro(&stand_in()),
        "plan and make the change",
        Some(original.clone()),
        60_000,
    );
    let config = worker(&api, &tmp.path().join("runs"));

    let summary = run_once(&config, Duration::ZERO)
        .await
        .unwrap()
        .expect("a run");

    assert_eq!(summary.status, Some(RunStatus::Completed));
    assert_eq!(summary.run_id, api.run_id);
    assert!(
        matches!(summary.usage, Usage::Reported { ref credits, .. } if credits.as_deref() == Some("0.42"))
    );
    let types: Vec<(String, ArtifactType)> = summary
        .artifacts
        .iter()
        .map(|a| (a.name.as_str().to_owned(), a.artifact_type.into()))
        .collect();
    assert_eq!(
        types,
        [
            ("plan.json".to_owned(), ArtifactType::Plan),
            ("changes.patch".to_owned(), ArtifactType::Patch),
            ("transcript.txt".to_owned(), ArtifactType::Transcript),
        ]
    );
    api.with(|s| {
        assert_eq!(s.bad_auth, 0);
        assert_eq!(s.completed.len(), 1);
        assert_eq!(s.completed[0].status, CompletionStatus::Completed);
        assert!(
            s.upload_headers.iter().all(Option::is_none),
            "presigned uploads carry no token"
        );
        for artifact in &s.artifacts {
            assert_eq!(artifact.status, ArtifactStatus::Available);
            let bytes = &s.uploads[artifact.artifact_id.as_str()];
            assert_eq!(bytes.len() as u64, artifact.size);
            assert_eq!(sha256_hex(bytes), artifact.sha256);
        }
        let transcript = s
            .artifacts
            .iter()
            .find(|a| a.name.as_str() == "transcript.txt")
            .unwrap();
        let text = String::from_utf8(s.uploads[transcript.artifact_id.as_str()].clone()).unwrap();
        assert!(
            text.contains("> Edited README.md") && !text.contains('\u{1b}'),
            "{text}"
        );
        // The patch applies to a fresh copy of the archive.
        let patch = s
            .artifacts
            .iter()
            .find(|a| a.name.as_str() == "changes.patch")
            .unwrap();
        let fresh = tmp.path().join("fresh");
        tlao_worker_kiro::extract_archive(
            &original[..],
            &fresh,
            &tlao_worker_kiro::ExtractLimits {
                max_bytes: 1 << 20,
                max_entries: 100,
            },
        )
        .unwrap();
        let patch_file = tmp.path().join("changes.patch");
        fs::write(&patch_file, &s.uploads[patch.artifact_id.as_str()]).unwrap();
        let applied = std::process::Command::new("git")
            .arg("apply")
            .arg(&patch_file)
            .current_dir(&fresh)
            .output()
            .unwrap();
        assert!(
            applied.status.success(),
            "{}",
            String::from_utf8_lossy(&applied.stderr)
        );
        assert!(
            fs::read_to_string(fresh.join("README.md"))
                .unwrap()
                .contains("Changed by the kiro-cli stand-in.")
        );
        assert!(fresh.join("NEW_FILE.md").exists());
        assert!(!fresh.join("obsolete.txt").exists());
    });
    let lines = api.log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("workspace extracted: 3 files")),
        "{lines:?}"
    );
    assert!(
        work_root_is_empty(&config.work_root),
        "the run directory is removed"
    );
    assert!(
        run_once(&config, Duration::ZERO).await.unwrap().is_none(),
        "nothing more to do"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_traversal_archive_fails_the_run_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut hostile = Vec::new();
    {
        let encoder = flate2::write::GzEncoder::new(&mut hostile, flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..12].copy_from_slice(b"../escape.sh");
        header.set_size(2);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, &b"x\n"[..]).unwrap();
        builder
            .into_inner()
            .unwrap()
            .finish()
            .unwrap()
            .flush()
            .unwrap();
    }
    let api = FakeApi::start(
        TaskType::CodeChange,
        kiro(&stand_in()),
        "change",
        Some(hostile),
        60_000,
    );
    let config = worker(&api, &tmp.path().join("runs"));

    let summary = run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    assert_eq!(summary.status, Some(RunStatus::Failed));
    let error = summary.error.unwrap();
    assert_eq!(error.code, RunErrorCode::InvalidArchive);
    assert!(
        error
            .message
            .contains("\"../escape.sh\" has a '..' component"),
        "{}",
        error.message
    );
    assert!(!tmp.path().join("escape.sh").exists());
    assert!(!tmp.path().join("runs/escape.sh").exists());
    assert!(work_root_is_empty(&config.work_root));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_deadline_times_out_and_leaves_no_process_alive() {
    let tmp = tempfile::tempdir().unwrap();
    let pids = support::agent_files(&tmp.path().join("runs")).join("pids");
    let binary = stand_in_with_env(
        &tmp.path().join("kiro"),
        &[("KIRO_STANDIN_PIDS_FILE", pids.to_str().unwrap())],
    );
    let api = FakeApi::start(TaskType::SpecGenerate, kiro(&binary), "hang", None, 1_500);
    let config = worker(&api, &tmp.path().join("runs"));
    let started = std::time::Instant::now();

    let summary = run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    assert_eq!(summary.status, Some(RunStatus::TimedOut));
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let (shell, child) = read_pids(&pids).unwrap();
    assert!(
        eventually(Duration::from_secs(3), || !is_alive(shell)
            && !is_alive(child))
        .await
    );
    assert!(
        api.log_lines()
            .iter()
            .any(|l| l.contains("reached its deadline"))
    );
    let names: Vec<&str> = summary.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["transcript.txt"], "the partial transcript is kept");
    assert!(work_root_is_empty(&config.work_root));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_is_stopped_and_completed_as_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let pids = support::agent_files(&tmp.path().join("runs")).join("pids");
    let binary = stand_in_with_env(
        &tmp.path().join("kiro"),
        &[("KIRO_STANDIN_PIDS_FILE", pids.to_str().unwrap())],
    );
    let api = FakeApi::start(TaskType::CodeChange, kiro(&binary), "hang", None, 60_000);
    let mut config = worker(&api, &tmp.path().join("runs"));
    config.heartbeat_interval = Duration::from_millis(200);
    let run = tokio::spawn({
        let config = config.clone();
        async move { run_once(&config, Duration::ZERO).await }
    });
    assert!(eventually(Duration::from_secs(5), || read_pids(&pids).is_some()).await);
    api.with(|s| s.status = Some(RunStatus::Cancelled));

    let summary = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(summary.status, Some(RunStatus::Cancelled));
    api.with(|s| assert_eq!(s.completed[0].status, CompletionStatus::Cancelled));
    let (shell, child) = read_pids(&pids).unwrap();
    assert!(
        eventually(Duration::from_secs(3), || !is_alive(shell)
            && !is_alive(child))
        .await
    );
    assert!(work_root_is_empty(&config.work_root));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_the_executor_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let pids = support::agent_files(&tmp.path().join("runs")).join("pids");
    let binary = stand_in_with_env(
        &tmp.path().join("kiro"),
        &[("KIRO_STANDIN_PIDS_FILE", pids.to_str().unwrap())],
    );
    let api = FakeApi::start(TaskType::CodeChange, kiro(&binary), "hang", None, 60_000);
    let mut config = worker(&api, &tmp.path().join("runs"));
    config.heartbeat_interval = Duration::from_millis(200);
    let run = tokio::spawn({
        let config = config.clone();
        async move { run_once(&config, Duration::ZERO).await }
    });
    assert!(eventually(Duration::from_secs(5), || read_pids(&pids).is_some()).await);
    api.with(|s| s.lose_lease = true);

    let summary = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(summary.status, None);
    api.with(|s| {
        assert!(s.completed.is_empty(), "no completion after a lost lease");
        assert!(s.artifacts.is_empty());
    });
    let (shell, child) = read_pids(&pids).unwrap();
    assert!(
        eventually(Duration::from_secs(3), || !is_alive(shell)
            && !is_alive(child))
        .await
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_keeps_failing_fails_the_run_naming_the_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        TaskType::SpecGenerate,
        kiro(&stand_in()),
        "plan",
        None,
        60_000,
    );
    api.with(|s| s.fail_uploads = true);
    let config = worker(&api, &tmp.path().join("runs"));

    let summary = run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    assert_eq!(summary.status, Some(RunStatus::Failed));
    let error = summary.error.unwrap();
    assert_eq!(error.code, RunErrorCode::UploadFailed);
    assert!(
        error
            .message
            .contains("artifact \"plan.json\" could not be uploaded after 3 attempts"),
        "{}",
        error.message
    );
    api.with(|s| {
        assert_eq!(s.upload_attempts, 3 * s.artifacts.len() as u32);
        assert!(s.finalized.iter().all(|(_, f)| f.error.is_some()));
        assert!(
            s.artifacts
                .iter()
                .all(|a| a.status == ArtifactStatus::UploadFailed)
        );
    });
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_answer_was_lost_is_refused_when_sent_again_and_still_becomes_available() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        TaskType::SpecGenerate,
        kiro(&stand_in()),
        "plan",
        None,
        60_000,
    );
    // The first upload is stored but its answer is lost: the retry is refused (the URL
    // stores once), which is not a failure: finalize checks the stored bytes.
    api.with(|s| s.lose_upload_answers = 1);
    let config = worker(&api, &tmp.path().join("runs"));

    let summary = run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    assert_eq!(summary.status, Some(RunStatus::Completed), "{summary:?}");
    api.with(|s| {
        assert!(!s.artifacts.is_empty());
        assert_eq!(
            s.upload_attempts,
            s.artifacts.len() as u32 + 1,
            "one artifact was sent twice, the others once"
        );
        assert!(
            s.upload_conditions
                .iter()
                .all(|c| c.as_deref() == Some("*")),
            "every upload carries the URL's signed header: {:?}",
            s.upload_conditions
        );
        assert!(s.finalized.iter().all(|(_, f)| f.error.is_none()));
        assert!(
            s.artifacts
                .iter()
                .all(|a| a.status == ArtifactStatus::Available),
            "{:?}",
            s.artifacts
        );
    });
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_reaches_the_api_within_the_batch_interval() {
    let tmp = tempfile::tempdir().unwrap();
    // The line carries the time it was printed.
    let api = FakeApi::start(
        TaskType::CodeChange,
        shell("sleep 0.3; echo \"printed-at $(date +%s%3N)\"; sleep 1"),
        "x",
        None,
        60_000,
    );
    let config = worker(&api, &tmp.path().join("runs"));

    run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    let (arrived, printed) = api.with(|s| {
        s.batches
            .iter()
            .find_map(|(at, events)| {
                events.iter().find_map(|e| match e {
                    EventPayload::Log { text, .. } => text
                        .strip_prefix("printed-at ")
                        .map(|ms| (*at, ms.parse::<i64>().unwrap())),
                    _ => None,
                })
            })
            .unwrap()
    });
    let latency = arrived - printed;
    assert!(latency < 300, "a line took {latency} ms to reach the API");
    assert!(
        now_millis() - printed > 900,
        "the line was sent while the executor was still running"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_agents_lines_are_sent_at_once_not_held_for_a_batch_window() {
    let tmp = tempfile::tempdir().unwrap();
    // Five lines 60 ms apart: a fixed 100 ms window would pair them (3 batches); sent at
    // once, each goes alone (a request on loopback takes a few ms).
    let api = FakeApi::start(
        TaskType::CodeChange,
        shell("for i in 1 2 3 4 5; do echo \"spaced $i\"; sleep 0.06; done"),
        "x",
        None,
        60_000,
    );
    let config = worker(&api, &tmp.path().join("runs"));

    run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    let batches_with_lines = api.with(|s| {
        s.batches
            .iter()
            .filter(|(_, events)| {
                events.iter().any(
                    |e| matches!(e, EventPayload::Log { text, .. } if text.starts_with("spaced ")),
                )
            })
            .count()
    });
    assert!(
        batches_with_lines >= 4,
        "5 spaced lines went in {batches_with_lines} batches: they were held for a window"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lines_of_a_runs_last_steps_leave_together_once_its_agent_is_done() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        TaskType::CodeChange,
        shell("echo working; sleep 0.2; echo changed > new.txt"),
        "x",
        None,
        60_000,
    );
    let mut config = worker(&api, &tmp.path().join("runs"));
    // Far longer than the last steps take, loaded or not (and no heartbeat due before):
    // they all wait for the finish, which sends them at once instead of waiting the
    // linger out.
    config.wind_down_linger = Duration::from_secs(30);
    config.heartbeat_interval = Duration::from_secs(60);
    let started = std::time::Instant::now();

    let summary = run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    assert_eq!(summary.status, Some(RunStatus::Completed));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the finish waited for the linger: {:?}",
        started.elapsed()
    );
    let texts = |events: &[EventPayload]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                EventPayload::Log { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    };
    let batches: Vec<Vec<String>> =
        api.with(|s| s.batches.iter().map(|(_, events)| texts(events)).collect());
    // The agent's line went while it ran, alone.
    let working = batches
        .iter()
        .position(|lines| lines.iter().any(|l| l == "working"))
        .unwrap();
    assert!(
        !batches[working]
            .iter()
            .any(|l| l.starts_with("the executor finished")),
        "{batches:?}"
    );
    // Everything after it (the end, the patch, each stored artifact) went in one report.
    let last = batches.iter().rposition(|lines| !lines.is_empty()).unwrap();
    let wind_down = &batches[last];
    for expected in [
        "the executor finished",
        "stored artifact changes.patch",
        "stored artifact transcript.txt",
    ] {
        assert!(
            wind_down.iter().any(|l| l.starts_with(expected)),
            "{expected:?} is not in the last report {wind_down:?}; all: {batches:?}"
        );
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_in_order_in_batches_of_at_most_fifty() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        TaskType::DocWrite,
        kiro(&stand_in()),
        "lines:500",
        None,
        60_000,
    );
    let config = worker(&api, &tmp.path().join("runs"));

    run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    api.with(|s| assert!(s.batches.iter().all(|(_, events)| events.len() <= 50)));
    let numbered: Vec<String> = api
        .log_lines()
        .into_iter()
        .filter(|l| l.starts_with("line "))
        .collect();
    let expected: Vec<String> = (1..=500).map(|i| format!("line {i}")).collect();
    assert_eq!(numbered, expected);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_executor_still_heartbeats() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(TaskType::CodeChange, shell("sleep 1.2"), "x", None, 60_000);
    let mut config = worker(&api, &tmp.path().join("runs"));
    config.heartbeat_interval = Duration::from_millis(200);

    let summary = run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    assert_eq!(summary.status, Some(RunStatus::Completed));
    let heartbeats = api.with(|s| s.batches.iter().filter(|(_, e)| e.is_empty()).count());
    assert!(heartbeats >= 3, "{heartbeats} heartbeats");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_asking_for_more_frequent_heartbeats_gets_them() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(TaskType::CodeChange, shell("sleep 1.2"), "x", None, 60_000);
    api.with(|s| s.assignment.as_mut().unwrap().heartbeat_interval_ms = Some(200));
    // The worker's own interval would send none during the quiet second.
    let config = worker(&api, &tmp.path().join("runs"));
    assert_eq!(config.heartbeat_interval, Duration::from_secs(5));

    let summary = run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    assert_eq!(summary.status, Some(RunStatus::Completed));
    let heartbeats = api.with(|s| s.batches.iter().filter(|(_, e)| e.is_empty()).count());
    assert!(heartbeats >= 3, "{heartbeats} heartbeats");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_asking_for_rarer_heartbeats_does_not_slow_the_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(TaskType::CodeChange, shell("sleep 1.2"), "x", None, 60_000);
    api.with(|s| s.assignment.as_mut().unwrap().heartbeat_interval_ms = Some(60_000));
    let mut config = worker(&api, &tmp.path().join("runs"));
    config.heartbeat_interval = Duration::from_millis(200);

    let summary = run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    assert_eq!(summary.status, Some(RunStatus::Completed));
    let heartbeats = api.with(|s| s.batches.iter().filter(|(_, e)| e.is_empty()).count());
    assert!(heartbeats >= 3, "{heartbeats} heartbeats");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_leased_by_the_dispatcher_is_fetched_and_executed() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        TaskType::SpecGenerate,
        kiro(&stand_in()),
        "plan",
        None,
        60_000,
    );
    let config = worker(&api, &tmp.path().join("runs"));

    let summary = run_assigned(&config, api.run_id.clone(), api.lease_id.clone())
        .await
        .unwrap();

    assert_eq!(summary.status, Some(RunStatus::Completed));
    let stale = tlao_domain::LeaseId::new(tlao_domain::Ulid::from_parts(1, 1));
    let summary = run_assigned(&config, api.run_id.clone(), stale)
        .await
        .unwrap();
    assert_eq!(summary.status, None, "a stale lease means nothing to do");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_executor_fails_the_run_with_its_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        TaskType::SpecGenerate,
        kiro(&stand_in()),
        "fail",
        None,
        60_000,
    );
    let config = worker(&api, &tmp.path().join("runs"));

    let summary = run_once(&config, Duration::ZERO).await.unwrap().unwrap();

    assert_eq!(summary.status, Some(RunStatus::Failed));
    let error = summary.error.unwrap();
    assert_eq!(error.code, RunErrorCode::ExecutorFailed);
    assert_eq!(error.exit_code, Some(1));
    assert!(
        error.message.contains("the model refused the request"),
        "{}",
        error.message
    );
    api.with(|s| assert_eq!(Usage::from(s.completed[0].usage.clone()), Usage::Unmeasured));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_once_worker_waiting_longer_than_a_long_poll_asks_again_until_a_run_comes() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        TaskType::SpecGenerate,
        kiro(&stand_in()),
        "plan the work",
        None,
        60_000,
    );
    api.with(|s| s.empty_leases = 2);
    let config = worker(&api, &tmp.path().join("runs"));

    let summary = run_once(&config, Duration::from_secs(300))
        .await
        .unwrap()
        .expect("the run leased by the third long-poll");

    assert_eq!(summary.status, Some(RunStatus::Completed));
    let asked: Vec<u32> = api.with(|s| s.lease_requests.iter().map(|r| r.wait_seconds).collect());
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(
        asked.iter().all(|&wait| wait == 30),
        "each long-poll asks for the API's longest wait: {asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_once_worker_with_nothing_to_do_gives_up_when_its_wait_is_over_not_before() {
    let tmp = tempfile::tempdir().unwrap();
    let api = FakeApi::start(
        TaskType::SpecGenerate,
        kiro(&stand_in()),
        "plan the work",
        None,
        60_000,
    );
    api.with(|s| s.leased = true);
    let config = worker(&api, &tmp.path().join("runs"));
    let started = std::time::Instant::now();

    let nothing = run_once(&config, Duration::from_secs(3)).await.unwrap();

    let waited = started.elapsed();
    assert!(nothing.is_none());
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(6),
        "waited {waited:?}"
    );
    let asked: Vec<u32> = api.with(|s| s.lease_requests.iter().map(|r| r.wait_seconds).collect());
    assert!(asked.len() >= 2, "asked once only: {asked:?}");
    assert_eq!(asked[0], 3);
    assert!(
        asked.windows(2).all(|pair| pair[1] < pair[0]),
        "each long-poll asks for what is left of the wait: {asked:?}"
    );
}
