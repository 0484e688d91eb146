//! The execution plane end to end: `tlao dev` started as a process, its workers running
//! the stand-in `kiro-cli` (`tests/fixtures/kiro-cli`), everything observed through the
//! public HTTP API, and `/proc` and the file system where the API cannot tell.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::processes::{self, await_death, await_standins};
use common::{Api, DevServer, PATIENCE, POLL, archives};
use serde_json::{Value, json};

/// How long a stand-in may take to die once its run is over: `SIGKILL` is delivered
/// asynchronously, even when it was sent before the status changed.
const DEATH: Duration = Duration::from_secs(5);

async fn admin_in_new_workspace(server: &DevServer) -> (Api, String) {
    let admin = server.admin().await;
    let workspace = admin.create_workspace("execution").await;
    (admin, workspace)
}

fn status(run: &Value) -> &str {
    run["status"].as_str().unwrap_or_default()
}

/// Every regular file named `name` under `dir`.
fn files_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if entry.file_name() == name {
                found.push(path);
            }
        }
    }
    found
}

/// The run directories left under the work root. Neither the workers' probe cache
/// (`.agent-probes.json`) nor the directory a live standby prepared for its next run
/// (`.standby-<pid>`) is one; a `.standby-<pid>` whose process is gone is.
fn leftover_run_dirs(work_root: &Path) -> Vec<String> {
    let live_standby = |name: &str| {
        name.strip_prefix(".standby-")
            .and_then(|pid| pid.parse().ok())
            .is_some_and(processes::is_alive)
    };
    std::fs::read_dir(work_root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".agent-probes.json" && !live_standby(name))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_generate_run_produces_a_json_plan_a_clean_transcript_and_reported_usage() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let (admin, ws) = admin_in_new_workspace(&server).await;

    let run_id = admin
        .run_prompt(&ws, "spec.generate", "plan the migration", None)
        .await;
    let run = admin.await_final(&run_id).await;

    assert_eq!(status(&run), "completed", "{run:#}");
    let (plan, bytes) = admin.artifact_bytes(&run_id, "plan.json").await;
    assert_eq!(plan["artifactType"], "plan");
    let plan: Value = serde_json::from_slice(&bytes).expect("the plan is JSON");
    assert_eq!(plan["title"], "Stand-in plan");
    assert_eq!(plan["steps"].as_array().map(Vec::len), Some(2), "{plan}");

    let (transcript, bytes) = admin.artifact_bytes(&run_id, "transcript.txt").await;
    assert_eq!(transcript["artifactType"], "transcript");
    assert!(
        !bytes.contains(&0x1b),
        "the transcript holds ANSI escapes: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(String::from_utf8_lossy(&bytes).contains("Wrote "));

    assert_eq!(run["usage"]["kind"], "reported", "{run:#}");
    assert_eq!(run["usage"]["credits"], "0.42", "{run:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_change_run_produces_a_patch_that_git_applies_to_a_fresh_copy_of_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let (admin, ws) = admin_in_new_workspace(&server).await;
    let readme = "# Sample\n\nA workspace for the tests.\n";
    let files: [(&str, &[u8]); 2] = [
        ("README.md", readme.as_bytes()),
        ("obsolete.txt", b"to be removed\n"),
    ];
    let archive = archives::tar_gz(&files);
    let archive_id = admin.upload_archive(&ws, archive.clone()).await;

    let run_id = admin
        .run_prompt(&ws, "code.change", "change the readme", Some(&archive_id))
        .await;
    let run = admin.await_final(&run_id).await;

    assert_eq!(status(&run), "completed", "{run:#}");
    let (patch, bytes) = admin.artifact_bytes(&run_id, "changes.patch").await;
    assert_eq!(patch["artifactType"], "patch");
    let copy = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(&archive[..]))
        .unpack(copy.path())
        .unwrap();
    let patch_file = dir.path().join("changes.patch");
    std::fs::write(&patch_file, &bytes).unwrap();
    let git_apply = |check: bool| {
        let mut git = Command::new("git");
        git.arg("apply");
        if check {
            git.arg("--check");
        }
        let output = git
            .arg(&patch_file)
            .current_dir(copy.path())
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git apply{} refused the patch: {}\n{}",
            if check { " --check" } else { "" },
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&bytes)
        );
    };
    git_apply(true);
    git_apply(false);
    assert_eq!(
        std::fs::read_to_string(copy.path().join("README.md")).unwrap(),
        format!("{readme}Changed by the kiro-cli stand-in.\n")
    );
    assert_eq!(
        std::fs::read_to_string(copy.path().join("NEW_FILE.md")).unwrap(),
        "# New file\n\nCreated by the kiro-cli stand-in.\n"
    );
    assert!(!copy.path().join("obsolete.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_exiting_with_1_fails_the_run_with_its_stderr_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let (admin, ws) = admin_in_new_workspace(&server).await;

    let run_id = admin
        .run_prompt(&ws, "spec.generate", "fail on purpose", None)
        .await;
    let run = admin.await_final(&run_id).await;

    assert_eq!(status(&run), "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "executor_failed", "{run:#}");
    assert_eq!(run["error"]["exitCode"], 1, "{run:#}");
    let message = run["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the model refused the request (stand-in failure)"),
        "the error does not carry the stand-in's stderr: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_max_run_seconds_times_out_and_leaves_no_process_alive() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("standin.pids");
    let server = DevServer::with_standin(
        dir.path(),
        &[
            ("TLAO_GUARDRAILS__MAX_RUN_SECONDS", "2"),
            ("KIRO_STANDIN_PIDS_FILE", pids_file.to_str().unwrap()),
        ],
    );
    let (admin, ws) = admin_in_new_workspace(&server).await;

    let run_id = admin
        .run_prompt(&ws, "spec.generate", "hang forever", None)
        .await;
    let standins = await_standins(&pids_file, 1, PATIENCE).await;
    let run = admin.await_final(&run_id).await;

    assert_eq!(status(&run), "timed_out", "{run:#}");
    let (standin, sleep) = standins[0];
    await_death(standin, "the timed-out stand-in", DEATH).await;
    await_death(sleep, "the timed-out stand-in's child sleep", DEATH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_fails_its_run_as_worker_lost_within_the_heartbeat_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("standin.pids");
    let heartbeat_timeout = Duration::from_secs(3);
    let server = DevServer::with_standin(
        dir.path(),
        &[
            ("TLAO_WORKER__HEARTBEAT_TIMEOUT_SECONDS", "3"),
            ("KIRO_STANDIN_PIDS_FILE", pids_file.to_str().unwrap()),
        ],
    );
    let (admin, ws) = admin_in_new_workspace(&server).await;
    let run_id = admin
        .run_prompt(&ws, "spec.generate", "hang quietly", None)
        .await;
    let (standin, sleep) = await_standins(&pids_file, 1, PATIENCE).await[0];
    let worker =
        processes::worker_of(&server.data_dir, &run_id).expect("a worker process runs the run");
    assert_eq!(processes::parent_of(standin), Some(worker));
    // A quiet agent is not a lost worker: the run outlives the heartbeat timeout while
    // its worker lives, so what follows is caused by the kill.
    let quiet_until = Instant::now() + heartbeat_timeout + Duration::from_secs(1);
    while Instant::now() < quiet_until {
        let run = admin.run(&run_id).await;
        assert_eq!(status(&run), "running", "a quiet run ended: {run:#}");
        tokio::time::sleep(POLL).await;
    }

    processes::kill_now(worker);
    let run = admin
        .await_run(
            &run_id,
            "fail after its worker was killed",
            heartbeat_timeout + Duration::from_secs(5),
            |run| status(run) != "running",
        )
        .await;

    assert_eq!(status(&run), "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "worker_lost", "{run:#}");
    // The launcher kills the worker's process tree when the worker exits: the stand-in
    // and its own child `sleep` go with it.
    await_death(standin, "the stand-in of the killed worker", DEATH).await;
    await_death(
        sleep,
        "the child sleep of the killed worker's stand-in",
        DEATH,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runs_on_a_workspace_limited_to_two_never_run_three_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("standin.pids");
    let server = DevServer::with_standin(
        dir.path(),
        &[
            ("TLAO_GUARDRAILS__MAX_CONCURRENT_RUNS", "2"),
            ("KIRO_STANDIN_PIDS_FILE", pids_file.to_str().unwrap()),
        ],
    );
    let (admin, ws) = admin_in_new_workspace(&server).await;
    let mut runs = Vec::new();
    for n in 1..=3 {
        runs.push(
            admin
                .run_prompt(&ws, "spec.generate", &format!("hang number {n}"), None)
                .await,
        );
    }
    // Polls the workspace's runs until `done`, checking on every look that no more
    // than two run at once.
    let watch = |what: &'static str, done: fn(&[Value], &[String]) -> bool| {
        let (admin, ws, runs) = (&admin, &ws, &runs);
        async move {
            let end = Instant::now() + PATIENCE;
            loop {
                let (code, page) = admin.get(&format!("/runs?workspaceId={ws}")).await;
                assert_eq!(code, 200, "{page}");
                let items = page["items"].as_array().cloned().unwrap_or_default();
                let running = items.iter().filter(|r| status(r) == "running").count();
                assert!(running <= 2, "{running} runs are running at once: {page:#}");
                if done(&items, runs) {
                    return items;
                }
                assert!(Instant::now() < end, "{what} within {PATIENCE:?}: {page:#}");
                tokio::time::sleep(POLL).await;
            }
        }
    };
    let find = |items: &[Value], run_id: &str| -> Value {
        items
            .iter()
            .find(|r| r["runId"] == run_id)
            .cloned()
            .unwrap_or(Value::Null)
    };

    let items = watch("the first two runs did not start", |items, runs| {
        let of = |id: &String| items.iter().find(|r| r["runId"] == id.as_str());
        runs[..2]
            .iter()
            .all(|id| of(id).is_some_and(|r| status(r) == "running"))
    })
    .await;
    let third = find(&items, &runs[2]);
    assert_eq!(status(&third), "queued", "{third:#}");
    assert_eq!(third["queuePosition"], 1, "{third:#}");
    await_standins(&pids_file, 2, PATIENCE).await;
    let first_worker =
        processes::worker_of(&server.data_dir, &runs[0]).expect("the first run has a worker");
    let (first_standin, first_sleep) = processes::standin_pids(&pids_file)
        .into_iter()
        .find(|(standin, _)| processes::parent_of(*standin) == Some(first_worker))
        .expect("the first run's stand-in is in the pids file");

    let (code, cancelled) = admin
        .post(&format!("/runs/{}/cancel", runs[0]), json!({}))
        .await;
    assert_eq!(code, 200, "{cancelled}");
    assert_eq!(status(&cancelled), "cancelled");
    let items = watch(
        "the third run did not start once the first ended",
        |items, runs| {
            items
                .iter()
                .any(|r| r["runId"] == runs[2].as_str() && status(r) == "running")
        },
    )
    .await;

    assert_eq!(status(&find(&items, &runs[0])), "cancelled");
    assert_eq!(status(&find(&items, &runs[1])), "running");
    assert!(find(&items, &runs[2])["queuePosition"].is_null());
    await_death(first_standin, "the cancelled run's stand-in", PATIENCE).await;
    await_death(first_sleep, "the cancelled run's child sleep", DEATH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_executor_registered_at_runtime_runs_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let (admin, ws) = admin_in_new_workspace(&server).await;
    // `{prompt}` is the whole prompt the worker builds (the request, then instructions
    // over several lines), so it goes to the script as an argument, never spliced into
    // the script's text; the script keeps its first line, the request.
    let script = r#"printf 'hello from %s\n' "$(printf '%s\n' "$1" | head -n 1)" > "$2/hello.txt""#;
    let (code, executor) = admin
        .post(
            "/executors",
            json!({
                "name": "hello",
                "kind": "command",
                "taskTypes": ["doc.write"],
                "config": {"command": ["sh", "-c", script, "hello", "{prompt}", "{outdir}"]}
            }),
        )
        .await;
    assert_eq!(code, 201, "{executor}");

    let run_id = admin
        .start_run(
            json!({"workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "the new executor"}}),
            Some("hello"),
        )
        .await;
    let run = admin.await_final(&run_id).await;

    assert_eq!(status(&run), "completed", "{run:#}");
    assert_eq!(run["executor"], "hello");
    let (_, bytes) = admin.artifact_bytes(&run_id, "hello.txt").await;
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "hello from the new executor\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_traversal_archive_fails_the_run_and_writes_nothing_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let (admin, ws) = admin_in_new_workspace(&server).await;
    // Extracted naively into `<data>/work/<run>.<lease>/base`, this entry would land in
    // `<data>/escape.txt`, next to the work root.
    let archive = archives::tar_gz_with_raw_path("../../../escape.txt", b"escaped\n");
    let archive_id = admin.upload_archive(&ws, archive).await;

    let run_id = admin
        .run_prompt(&ws, "code.change", "change the readme", Some(&archive_id))
        .await;
    let run = admin.await_final(&run_id).await;

    assert_eq!(status(&run), "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "invalid_archive", "{run:#}");
    let message = run["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("escape.txt") && message.contains("'..'"),
        "the error does not say which entry was refused and why: {message}"
    );
    assert_eq!(
        files_named(dir.path(), "escape.txt"),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(leftover_run_dirs(&server.work_root()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_is_refused_at_upload_naming_the_unpacked_limit_and_never_reaches_a_worker() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let (admin, ws) = admin_in_new_workspace(&server).await;
    // 1.1 GiB of zeros, past the default unpacked limit of 1 GiB (which the worker's
    // extraction enforces too).
    let bomb = dir.path().join("bomb.tar.gz");
    let compressed = archives::write_gzip_bomb(&bomb, 1126);
    assert!(
        compressed < 4 << 20,
        "the bomb is {compressed} bytes compressed"
    );

    let (status, problem) = admin
        .post_bytes(
            &format!("/workspaces/{ws}/archives"),
            "application/gzip",
            std::fs::read(&bomb).unwrap(),
        )
        .await;

    assert_eq!(status, 413, "{problem:#}");
    assert_eq!(problem["limit"], "maxUnpackedBytes", "{problem:#}");
    assert_eq!(problem["max"], 1u64 << 30, "{problem:#}");
    let archives = server
        .data_dir
        .join(format!("blobs/objects/workspaces/{ws}/archives"));
    assert!(
        std::fs::read_dir(&archives).map_or(true, |mut entries| entries.next().is_none()),
        "nothing is stored under {}",
        archives.display()
    );
    assert_eq!(leftover_run_dirs(&server.work_root()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_the_process_launcher_runs_each_run_in_a_local_worker_process() {
    use common::serve::serve_ready_for_plans;

    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = vec![
        ("TLAO_LOG", "warn".into()),
        ("TLAO_SERVER__ADDR", "127.0.0.1:0".into()),
        (
            "TLAO_AUTH__SECRET",
            "a-serve-signing-secret-of-at-least-32-bytes".into(),
        ),
        (
            "TLAO_WORKER_TOKEN",
            "serve-worker-token-0123456789abcdef".into(),
        ),
        ("TLAO_LAUNCHER__KIND", "process".into()),
        ("PATH", common::path_with_standin()),
    ];
    let (_server, admin, workspace) = serve_ready_for_plans(&env, dir.path(), "serve").await;

    let run_id = admin
        .run_prompt(&workspace, "spec.generate", "make a plan", None)
        .await;

    let run = admin.await_final(&run_id).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    let names: Vec<Value> = admin
        .artifacts(&run_id)
        .await
        .iter()
        .map(|a| a["name"].clone())
        .collect();
    assert!(names.contains(&json!("plan.json")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_starts_on_the_waiting_standby_worker_which_then_exits_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("standin.pids");
    let server = DevServer::with_standin(
        dir.path(),
        &[("KIRO_STANDIN_PIDS_FILE", pids_file.to_str().unwrap())],
    );
    let (admin, ws) = admin_in_new_workspace(&server).await;
    let work_root = server.work_root();
    let end = Instant::now() + PATIENCE;
    let standby = loop {
        if let [pid] = processes::standbys_under(&work_root)[..] {
            break pid;
        }
        assert!(Instant::now() < end, "no standby worker waits");
        tokio::time::sleep(POLL).await;
    };

    let run_id = admin
        .run_prompt(&ws, "spec.generate", "hang quietly", None)
        .await;
    let (standin, _) = await_standins(&pids_file, 1, PATIENCE).await[0];
    assert_eq!(
        processes::parent_of(standin),
        Some(standby),
        "the agent runs under the standby worker"
    );
    assert_eq!(
        processes::worker_of(&server.data_dir, &run_id),
        Some(standby)
    );
    // A replacement waits while the run goes on: the next run need not start a process.
    let end = Instant::now() + PATIENCE;
    let replacement = loop {
        if let [pid] = processes::standbys_under(&work_root)[..] {
            break pid;
        }
        assert!(Instant::now() < end, "no replacement standby");
        tokio::time::sleep(POLL).await;
    };
    assert_ne!(replacement, standby);

    let (code, body) = admin
        .post(&format!("/runs/{run_id}/cancel"), json!({}))
        .await;
    assert!(code == 200 || code == 202, "{code} {body}");
    let run = admin.await_final(&run_id).await;
    assert_eq!(status(&run), "cancelled", "{run:#}");
    // The worker learns of the cancel at its next heartbeat, then ends its agent and exits.
    await_death(standby, "the standby that ran the run", PATIENCE).await;
    assert_eq!(processes::standbys_under(&work_root), vec![replacement]);
    assert!(processes::workers_under(&work_root).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_does_not_ask_the_agent_again_what_an_earlier_worker_learnt() {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let server = DevServer::with_standin(
        dir.path(),
        &[("KIRO_STANDIN_CALLS_FILE", calls.to_str().unwrap())],
    );
    let (admin, ws) = admin_in_new_workspace(&server).await;
    let read = || -> Vec<String> {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .map(|line| line.trim().to_owned())
            .collect()
    };

    let first = admin
        .run_prompt(&ws, "spec.generate", "lines:1", None)
        .await;
    assert_eq!(status(&admin.await_final(&first).await), "completed");
    let before = read();
    assert!(
        before.iter().any(|c| c == "chat --help") && before.iter().any(|c| c == "--version"),
        "the first worker probes kiro-cli: {before:?}"
    );
    let probes = server.work_root().join(".agent-probes.json");
    assert!(probes.exists(), "the probes are kept in the work root");

    let second = admin
        .run_prompt(&ws, "spec.generate", "lines:1", None)
        .await;
    assert_eq!(status(&admin.await_final(&second).await), "completed");
    let after = read();
    let new: Vec<&String> = after[before.len()..].iter().collect();
    assert!(
        new.iter()
            .all(|c| c.starts_with("chat") && *c != "chat --help"),
        "the second run's worker asked kiro-cli again: {new:?}; kept: {}",
        std::fs::read_to_string(&probes).unwrap_or_default()
    );
    assert_eq!(new.len(), 1, "one chat: {new:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_sqlite_fails_a_run_nobody_leases_as_queue_timeout_and_gives_back_its_quota() {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = vec![
        ("TLAO_LOG", "warn".into()),
        ("TLAO_SERVER__ADDR", "127.0.0.1:0".into()),
        (
            "TLAO_AUTH__SECRET",
            "a-serve-signing-secret-of-at-least-32-bytes".into(),
        ),
        (
            "TLAO_WORKER_TOKEN",
            "serve-worker-token-0123456789abcdef".into(),
        ),
    ];

    common::serve::a_run_nobody_leases_expires_and_gives_back_its_quota(&env, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bootstrap_twice_makes_one_administrator_one_default_workspace_and_the_default_executors()
 {
    use common::serve::{serve, succeed, tlao};

    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = vec![
        ("TLAO_LOG", "warn".into()),
        ("TLAO_SERVER__ADDR", "127.0.0.1:0".into()),
        (
            "TLAO_AUTH__SECRET",
            "a-serve-signing-secret-of-at-least-32-bytes".into(),
        ),
    ];

    let first = succeed(
        tlao(&env, dir.path()).args(["admin", "bootstrap"]),
        "bootstrap",
    );
    let second = succeed(
        tlao(&env, dir.path()).args(["admin", "bootstrap"]),
        "bootstrap",
    );

    let key = String::from_utf8(first.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("tlao_"), "no key printed: {key:?}");
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        said.contains("workspace default ws_") && said.contains(": created"),
        "{said}"
    );
    assert!(
        said.contains("default executors registered: kiro, shell"),
        "{said}"
    );
    assert!(second.stdout.is_empty(), "a second bootstrap printed a key");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("already exists"), "{said}");
    assert!(said.contains(": already there"), "{said}");
    assert!(
        said.contains("default executors: already registered"),
        "{said}"
    );
    let (_server, url) = serve(&env, dir.path());
    let admin = common::Api::login(&url, &key).await;
    let (_, workspaces) = admin.get("/workspaces").await;
    let names: Vec<&str> = workspaces["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ws| ws["name"].as_str())
        .collect();
    assert_eq!(names, ["default"], "{workspaces}");
    let (_, executors) = admin.get("/executors").await;
    let mut names: Vec<&str> = executors["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["kiro", "shell"], "{executors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_the_backlog_as_cloudwatch_embedded_metric_lines() {
    use common::serve::{serve_reading_stdout, succeed, tlao};

    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = vec![
        ("TLAO_LOG", "warn".into()),
        ("TLAO_SERVER__ADDR", "127.0.0.1:0".into()),
        (
            "TLAO_AUTH__SECRET",
            "a-serve-signing-secret-of-at-least-32-bytes".into(),
        ),
        ("TLAO_METRICS__EMF_INTERVAL_SECONDS", "1".into()),
        ("TLAO_METRICS__DEPLOYMENT", "e2e".into()),
    ];
    let boot = succeed(
        tlao(&env, dir.path()).args(["admin", "bootstrap"]),
        "bootstrap",
    );
    let key = String::from_utf8(boot.stdout).unwrap().trim().to_owned();
    let (_server, url, stdout) = serve_reading_stdout(&env, dir.path());
    let admin = common::Api::login(&url, &key).await;
    let next_metrics = || loop {
        let line = stdout
            .recv_timeout(Duration::from_secs(10))
            .expect("a metrics line within 10 s");
        if let Ok(document) = serde_json::from_str::<Value>(&line)
            && document.get("_aws").is_some()
        {
            return document;
        }
    };
    let idle = next_metrics();
    assert_eq!(
        (&idle["QueuedRuns"], &idle["RunningRuns"]),
        (&json!(0), &json!(0)),
        "{idle}"
    );
    assert_eq!(idle["Deployment"], "e2e");
    assert_eq!(idle["_aws"]["CloudWatchMetrics"][0]["Namespace"], "TLAO");

    let (_, workspaces) = admin.get("/workspaces").await;
    let workspace = workspaces["items"][0]["workspaceId"]
        .as_str()
        .unwrap()
        .to_owned();
    admin
        .run_prompt(&workspace, "spec.generate", "make a plan", None)
        .await;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = next_metrics();
        if line["QueuedRuns"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never counted the queued run: {line}"
        );
    }
}
