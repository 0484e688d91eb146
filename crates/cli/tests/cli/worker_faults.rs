//! A standalone `tlao worker --once` against `tlao serve` (no launcher: the worker leases
//! the run itself) when the API goes away: behind a proxy that refuses connections for
//! seconds mid-run, every line arrives, once and in order; stopped (SIGSTOP) past the
//! heartbeat timeout, the worker adds nothing to its run once the server has failed it,
//! and exits non-zero on its own once it is continued. And a standby worker whose
//! handover pipe is cut, before or in the middle of its line, leaves and removes what it
//! prepared.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::processes;
use common::proxy::Proxy;
use common::serve::{Running, serve_ready_for_plans, tlao};
use common::{Api, PATIENCE, POLL};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

const WORKER_TOKEN: &str = "faults-worker-token-0123456789abcdef";

/// `tlao serve` with no launcher on `data_dir`, with `extra` settings.
fn serve_env(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&str, String)> = vec![
        ("TLAO_LOG", "warn".into()),
        ("TLAO_SERVER__ADDR", "127.0.0.1:0".into()),
        (
            "TLAO_AUTH__SECRET",
            "a-faults-signing-secret-of-at-least-32-bytes".into(),
        ),
        ("TLAO_WORKER_TOKEN", WORKER_TOKEN.into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

/// Registers a `command` executor `name` for `doc.write` running `sh -c script` with
/// the output directory as `$1`, and queues a run of it; returns the run id.
async fn run_script(admin: &Api, workspace: &str, name: &str, script: &str) -> String {
    let (code, executor) = admin
        .post(
            "/executors",
            json!({
                "name": name, "kind": "command", "taskTypes": ["doc.write"],
                "config": {"command": ["sh", "-c", script, name, "{outdir}"]}
            }),
        )
        .await;
    assert_eq!(code, 201, "{executor}");
    admin
        .start_run(
            json!({"workspaceId": workspace, "taskType": "doc.write", "input": {"prompt": "x"}}),
            Some(name),
        )
        .await
}

/// Starts `tlao worker --once` against `api_url`, unpacking runs under `work_root`.
fn worker(api_url: &str, work_root: &Path, data_dir: &Path) -> Running {
    let child = tlao(
        &[
            ("TLAO_LOG", "warn".into()),
            ("TLAO_WORKER_TOKEN", WORKER_TOKEN.into()),
        ],
        data_dir,
    )
    .args(["worker", "--once", "--wait", "20", "--api-url", api_url])
    .arg("--work-root")
    .arg(work_root)
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("tlao worker starts");
    Running(child)
}

/// Waits for `child` to exit within `deadline`; returns its exit code.
async fn exit_code(child: &mut Child, deadline: Duration) -> Option<i32> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < end,
            "the worker did not exit within {deadline:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Every stored event of an ended run, in order, read through its event stream (which
/// replays them and ends).
async fn events(admin: &Api, run_id: &str) -> Vec<Value> {
    let body = reqwest::Client::new()
        .get(format!("{}/runs/{run_id}/events?after=0", admin.url))
        .bearer_auth(&admin.token)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the stream opens")
        .text()
        .await
        .expect("the stream ends with the run");
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .filter(|event| event.get("seq").is_some())
        .collect()
}

/// The text of the log events of `events` that start with `prefix`.
fn lines_with(events: &[Value], prefix: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "log")
        .filter_map(|e| e["text"].as_str())
        .filter(|text| text.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Every regular file named `name` under `dir`.
fn files_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.file_type().map(|t| (t.is_dir(), entry.path()));
            match path {
                Ok((true, path)) => stack.push(path),
                Ok((false, path)) if entry.file_name() == name => found.push(path),
                _ => {}
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_behind_a_proxy_that_refuses_connections_for_seconds_stores_all_40_lines_in_order()
{
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (_server, admin, workspace) =
        serve_ready_for_plans(&serve_env(&[]), &data_dir, "faults").await;
    let run_id = run_script(
        &admin,
        &workspace,
        "forty",
        "for i in $(seq 1 40); do echo line-$i; sleep 0.25; done",
    )
    .await;
    let proxy = Proxy::start(&admin.url).await;
    let mut worker = worker(&proxy.url, &dir.path().join("work"), &data_dir);
    admin
        .await_run(&run_id, "log its fifth line", PATIENCE, |run| {
            run["logs"]
                .as_str()
                .unwrap_or_default()
                .contains("line-5\n")
        })
        .await;

    let outage = Duration::from_secs(6);
    proxy.refuse_for(outage).await;
    let code = exit_code(&mut worker.0, Duration::from_secs(60)).await;

    assert_eq!(code, Some(0), "the worker exits 0: its run completed");
    let run = admin.await_final(&run_id).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["logsTruncated"], false, "{run:#}");
    assert_eq!(run["droppedLogBytes"], 0, "{run:#}");
    let events = events(&admin, &run_id).await;
    let expected: Vec<String> = (1..=40).map(|i| format!("line-{i}")).collect();
    let stored = lines_with(&events, "line-");
    println!(
        "measured: {} of 40 lines stored after a {outage:?} refusal mid-run",
        stored.len()
    );
    assert_eq!(stored, expected, "each of the 40 lines once, in order");
    // The worker's own last lines, sent before it completed the run, are stored too.
    assert!(
        !lines_with(&events, "stored artifact transcript.txt").is_empty(),
        "{events:#?}"
    );
    let last = events.last().expect("the run has events");
    assert_eq!(last["status"], "completed", "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_past_the_heartbeat_timeout_adds_nothing_after_its_run_failed_and_exits_non_zero()
 {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (_server, admin, workspace) = serve_ready_for_plans(
        &serve_env(&[("TLAO_WORKER__HEARTBEAT_TIMEOUT_SECONDS", "3")]),
        &data_dir,
        "faults",
    )
    .await;
    // It works on while its worker is stopped, then leaves a file to upload.
    let run_id = run_script(
        &admin,
        &workspace,
        "late",
        r#"echo started; sleep 2; echo late > "$1/x.txt"; echo wrote"#,
    )
    .await;
    let work_root = dir.path().join("work");
    let mut worker = worker(&admin.url, &work_root, &data_dir);
    admin
        .await_run(&run_id, "start its agent", PATIENCE, |run| {
            run["logs"]
                .as_str()
                .unwrap_or_default()
                .contains("started\n")
        })
        .await;

    let pid = worker.0.id();
    processes::signal(pid, Signal::SIGSTOP);
    let stopped_at = Instant::now();
    let failed = admin
        .await_run(&run_id, "fail as worker_lost", PATIENCE, |run| {
            run["status"] == "failed"
        })
        .await;
    let failed_after = stopped_at.elapsed();
    assert_eq!(failed["error"]["code"], "worker_lost", "{failed:#}");
    // The agent has finished too: its worker has a file to upload when it wakes.
    let deadline = Instant::now() + PATIENCE;
    while files_named(&work_root, "x.txt").is_empty() {
        assert!(Instant::now() < deadline, "the agent never wrote x.txt");
        tokio::time::sleep(POLL).await;
    }
    let events_before = events(&admin, &run_id).await;
    let artifacts_before = admin.artifacts(&run_id).await;
    processes::signal(pid, Signal::SIGCONT);
    let code = exit_code(&mut worker.0, Duration::from_secs(30)).await;

    assert_eq!(
        code,
        Some(3),
        "the worker gives up on its own: out of contact past the heartbeat timeout"
    );
    let events_after = events(&admin, &run_id).await;
    let artifacts_after = admin.artifacts(&run_id).await;
    println!(
        "measured: failed {failed_after:?} after SIGSTOP; {} events and {} artifacts before SIGCONT, {} and {} after",
        events_before.len(),
        artifacts_before.len(),
        events_after.len(),
        artifacts_after.len()
    );
    assert_eq!(events_after, events_before, "no event after the end");
    assert_eq!(
        artifacts_after, artifacts_before,
        "no artifact after the end"
    );
    let last = events_after.last().expect("the run has events");
    assert_eq!(last["type"], "status", "{last}");
    assert_eq!(last["status"], "failed", "{last}");
    assert!(
        artifacts_after.iter().all(|a| a["status"] != "available"),
        "{artifacts_after:#?}"
    );
}

/// A standby worker (`tlao worker --standby`) whose handover pipe is cut, as when the
/// launcher that holds its other end dies: before any byte it leaves at once with
/// success (released without a run); cut in the middle of a handover line it leaves with
/// an error, executing nothing. Either way nothing it made ahead is left behind: its
/// prepared run directory is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_whose_handover_pipe_is_cut_leaves_and_removes_what_it_prepared() {
    use std::io::Write;

    for (written, succeeds) in [("", true), (r#"{"assignment": {"run"#, false)] {
        let dir = tempfile::tempdir().unwrap();
        let work_root = dir.path().join("work");
        let mut standby = Running(
            tlao(
                &[
                    ("TLAO_LOG", "warn".into()),
                    ("TLAO_WORKER_TOKEN", WORKER_TOKEN.into()),
                ],
                &dir.path().join("data"),
            )
            // Nothing listens there: a standby that executed anything would fail loudly.
            .args(["worker", "--standby", "--api-url", "http://127.0.0.1:9"])
            .arg("--work-root")
            .arg(&work_root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tlao worker --standby starts"),
        );
        let pid = standby.0.id();
        let prepared = work_root.join(format!(".standby-{pid}"));
        // Initialised and waiting on its pipe: it names itself so, its directory made.
        let end = Instant::now() + PATIENCE;
        while processes::standbys_under(&work_root) != [pid] || !prepared.is_dir() {
            assert!(
                Instant::now() < end,
                "the standby did not get ready ({written:?})"
            );
            tokio::time::sleep(POLL).await;
        }

        let mut pipe = standby.0.stdin.take().unwrap();
        pipe.write_all(written.as_bytes()).unwrap();
        drop(pipe);

        let code = exit_code(&mut standby.0, PATIENCE).await;
        if succeeds {
            assert_eq!(code, Some(0), "released without a run");
        } else {
            assert!(
                code.is_some_and(|code| code != 0),
                "a cut handover is an error: {code:?}"
            );
        }
        assert!(
            !prepared.exists(),
            "{} was left ({written:?})",
            prepared.display()
        );
        assert!(!processes::is_alive(pid));
    }
}
