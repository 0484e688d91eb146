//! The use cases on real in-memory adapters and a clock the tests move: quota resets,
//! queue positions, the stored TaskSpec, idempotency and archive uploads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tlao_adapters_local::LocalEventBus;
use tlao_domain::{Guardrails, NewTask, RunStatus, Timestamp, keys};
use tlao_orchestrator::{Caller, CreateRun, Idempotency, RunFilter, ServiceError};
use tlao_ports::{BlobKey, ByteStream, Clock};

use common::World;

async fn world(guardrails: Guardrails) -> World {
    common::world_with(
        guardrails,
        Arc::new(LocalEventBus::new()),
        json!({
            "name": "kiro", "kind": "kiro",
            "taskTypes": ["spec.generate", "code.change", "doc.write"],
            "config": {"maxRunSeconds": 300}
        }),
    )
    .await
}

impl World {
    async fn task(&self, ws: &str, body: serde_json::Value) -> tlao_domain::Task {
        let mut body = body;
        body["workspaceId"] = json!(ws);
        let request = NewTask::parse(&body).unwrap();
        self.services
            .tasks
            .create(&self.admin, request, None)
            .await
            .unwrap()
    }

    async fn workspace(&self) -> String {
        self.services
            .workspaces
            .create(&self.admin, "demo")
            .await
            .unwrap()
            .workspace_id
            .to_string()
    }
}

fn plan() -> serde_json::Value {
    json!({"taskType": "spec.generate", "input": {"prompt": "plan the work"}, "constraints": {"maxRunSeconds": 120}})
}

/// The bytes of a blob, or `None` when there is none.
async fn blob_bytes(w: &World, key: &str) -> Option<Vec<u8>> {
    let key = BlobKey::parse(key).unwrap();
    let (_, mut body) = match w.services.core.blobs.get(&key).await {
        Ok(found) => found,
        Err(tlao_ports::BlobError::NotFound(_)) => return None,
        Err(other) => panic!("reading {key}: {other}"),
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    Some(bytes)
}

/// The TaskSpec bytes a standby worker is handed with `assignment`.
async fn handed_spec(w: &World, assignment: &tlao_orchestrator::Assignment) -> Option<Bytes> {
    let (_, inline) = w
        .services
        .workers
        .handover(&assignment.run.run_id, &assignment.lease_id, 64 * 1024)
        .await
        .unwrap();
    inline
}

/// Queues a run of `task` and leases it; its assignment.
async fn queue_and_assign(w: &World, task: &tlao_domain::Task) -> tlao_orchestrator::Assignment {
    let view = w
        .services
        .runs
        .create(
            &w.admin,
            CreateRun {
                task_id: task.task_id.clone(),
                executor: None,
            },
            None,
        )
        .await
        .unwrap();
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    assert_eq!(lease.run.run_id, view.run.run_id);
    lease
}

#[tokio::test]
async fn a_run_takes_the_tightest_duration_limit_and_its_worker_reads_its_task_s_spec() {
    let w = world(Guardrails::default()).await;
    let ws = w.workspace().await;
    let task = w.task(&ws, plan()).await;

    // The TaskSpec is stored once, with the task.
    let spec_key = task
        .spec_key
        .clone()
        .expect("a new task names its TaskSpec blob");
    assert_eq!(
        spec_key,
        keys::blob::task_spec(&task.workspace_id, &task.task_id)
    );
    let stored: tlao_domain::TaskSpec =
        serde_json::from_slice(&blob_bytes(&w, &spec_key).await.unwrap()).unwrap();
    assert_eq!(stored, task.spec);

    let first = queue_and_assign(&w, &task).await;
    assert_eq!(first.run.status, RunStatus::Running);
    assert_eq!(first.run.executor.as_str(), "kiro");
    assert_eq!(
        first.run.max_run_seconds, 120,
        "task constraint beats executor (300) and guardrail (480)"
    );
    // Every run of the task is handed the task's TaskSpec; queueing one writes no copy.
    let second = queue_and_assign(&w, &task).await;
    for assignment in [&first, &second] {
        assert_eq!(assignment.task_spec_key, spec_key);
        let copy = keys::blob::run_task_spec(&task.workspace_id, &assignment.run.run_id);
        assert_eq!(blob_bytes(&w, &copy).await, None, "no copy at {copy}");
        let inline = handed_spec(&w, assignment).await.unwrap();
        let inline: tlao_domain::TaskSpec = serde_json::from_slice(&inline).unwrap();
        assert_eq!(inline, task.spec);
    }
}

#[tokio::test]
async fn a_task_stored_before_task_specs_moved_to_tasks_gives_each_run_a_copy() {
    let w = world(Guardrails::default()).await;
    let ws = w.workspace().await;
    let created = w.task(&ws, plan()).await;
    // The task as an earlier version stored it: no TaskSpec blob, none named.
    let spec_key = created.spec_key.clone().unwrap();
    w.services
        .core
        .blobs
        .delete(&BlobKey::parse(&spec_key).unwrap())
        .await
        .unwrap();
    let legacy = tlao_domain::Task {
        spec_key: None,
        ..created.clone()
    };
    w.services
        .core
        .store
        .put_item(tlao_orchestrator::codec::encode(&legacy).unwrap(), None)
        .await
        .unwrap();

    let assignment = queue_and_assign(&w, &legacy).await;

    let copy = keys::blob::run_task_spec(&legacy.workspace_id, &assignment.run.run_id);
    assert_eq!(assignment.task_spec_key, copy);
    let stored: tlao_domain::TaskSpec =
        serde_json::from_slice(&blob_bytes(&w, &copy).await.unwrap()).unwrap();
    assert_eq!(stored, legacy.spec);
    assert_eq!(
        handed_spec(&w, &assignment).await.as_deref(),
        blob_bytes(&w, &copy).await.as_deref()
    );
}

#[tokio::test]
async fn queued_runs_report_their_position_and_move_up_when_one_is_cancelled() {
    let w = world(Guardrails::default()).await;
    let ws = w.workspace().await;
    let task = w.task(&ws, plan()).await;
    let create = || CreateRun {
        task_id: task.task_id.clone(),
        executor: None,
    };

    let first = w
        .services
        .runs
        .create(&w.admin, create(), None)
        .await
        .unwrap();
    let second = w
        .services
        .runs
        .create(&w.admin, create(), None)
        .await
        .unwrap();
    assert_eq!(first.queue_position, Some(1));
    assert_eq!(second.queue_position, Some(2));

    let cancelled = w
        .services
        .runs
        .cancel(&w.admin, &first.run.run_id)
        .await
        .unwrap();
    assert_eq!(cancelled.run.status, RunStatus::Cancelled);
    assert_eq!(cancelled.queue_position, None);
    let second = w
        .services
        .runs
        .get(&w.admin, &second.run.run_id)
        .await
        .unwrap();
    assert_eq!(second.queue_position, Some(1));

    match w.services.runs.cancel(&w.admin, &first.run.run_id).await {
        Err(ServiceError::Conflict(message)) => assert!(message.contains("cancelled"), "{message}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn the_daily_quota_resets_at_the_next_utc_midnight() {
    let w = world(Guardrails {
        daily_run_quota: 2,
        ..Guardrails::default()
    })
    .await;
    let ws = w.workspace().await;
    let task = w.task(&ws, plan()).await;
    let create = || CreateRun {
        task_id: task.task_id.clone(),
        executor: None,
    };

    w.services
        .runs
        .create(&w.admin, create(), None)
        .await
        .unwrap();
    w.services
        .runs
        .create(&w.admin, create(), None)
        .await
        .unwrap();
    match w.services.runs.create(&w.admin, create(), None).await {
        Err(ServiceError::QuotaExceeded {
            limit: tlao_domain::Limit::DailyRunQuota,
            quota: 2,
            retry_after_seconds,
        }) => {
            assert_eq!(retry_after_seconds, 14 * 3600, "10:00 to midnight");
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }

    w.clock
        .set("2026-11-27T00:00:00Z".parse::<Timestamp>().unwrap());
    w.services
        .runs
        .create(&w.admin, create(), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_retried_create_with_the_same_idempotency_key_creates_one_run() {
    let w = world(Guardrails::default()).await;
    let ws = w.workspace().await;
    let task = w.task(&ws, plan()).await;
    let request = CreateRun {
        task_id: task.task_id.clone(),
        executor: None,
    };
    let idem = Idempotency::new("retry-1", "POST /runs", &request).unwrap();

    let first = w
        .services
        .runs
        .create(&w.admin, request.clone(), Some(&idem))
        .await
        .unwrap();
    let again = w
        .services
        .runs
        .create(&w.admin, request.clone(), Some(&idem))
        .await
        .unwrap();

    assert_eq!(first.run.run_id, again.run.run_id);
    let quota = w
        .services
        .core
        .store
        .get_item(&keys::daily_quota(
            &first.run.workspace_id,
            w.clock.now().utc_date(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quota.n("count"), Some(1));

    let other = CreateRun {
        task_id: task.task_id.clone(),
        executor: Some("kiro".parse().unwrap()),
    };
    let reused = Idempotency::new("retry-1", "POST /runs", &other).unwrap();
    assert!(matches!(
        w.services.runs.create(&w.admin, other, Some(&reused)).await,
        Err(ServiceError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_requested_executor_that_does_not_serve_the_task_type_is_refused_by_name() {
    let w = world(Guardrails::default()).await;
    let ws = w.workspace().await;
    let task = w
        .task(
            &ws,
            json!({"taskType": "deploy.run", "input": {"prompt": "ship"}}),
        )
        .await;
    match w
        .services
        .runs
        .create(
            &w.admin,
            CreateRun {
                task_id: task.task_id.clone(),
                executor: None,
            },
            None,
        )
        .await
    {
        Err(ServiceError::NoExecutor { message, .. }) => {
            assert!(message.contains("\"deploy.run\""), "{message}");
            assert!(message.contains("kiro"), "{message}");
        }
        other => panic!("expected NoExecutor, got {other:?}"),
    }
}

/// A tar.gz holding one file, `data.txt`, of `data`.
fn gzip(data: &[u8]) -> Bytes {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "data.txt", data).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&tar).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

fn stream_of(data: Bytes, chunk: usize) -> ByteStream {
    let parts: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(parts))
}

#[tokio::test]
async fn an_archive_is_measured_and_hashed_while_it_streams() {
    let w = world(Guardrails::default()).await;
    let ws: tlao_domain::WorkspaceId = w.workspace().await.parse().unwrap();
    let body = gzip(b"hello archive");

    let archive = w
        .services
        .archives
        .upload(&w.admin, &ws, None, stream_of(body.clone(), 1))
        .await
        .unwrap();

    assert_eq!(archive.size, body.len() as u64);
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(archive.sha256, expected);
    assert!(
        archive
            .key
            .starts_with(&format!("workspaces/{ws}/archives/"))
    );
}

#[tokio::test]
async fn an_undeclared_archive_over_the_limit_is_cut_off_and_nothing_is_stored() {
    let w = world(Guardrails {
        max_archive_bytes: 1000,
        ..Guardrails::default()
    })
    .await;
    let ws: tlao_domain::WorkspaceId = w.workspace().await.parse().unwrap();
    let mut big = vec![0x1f, 0x8b];
    big.extend(std::iter::repeat_n(7u8, 5000));

    let result = w
        .services
        .archives
        .upload(&w.admin, &ws, None, stream_of(Bytes::from(big), 100))
        .await;

    assert!(
        matches!(result, Err(ServiceError::TooLarge { max_bytes: 1000 })),
        "{result:?}"
    );
    let prefix = tlao_ports::Query::new(
        tlao_domain::KeyPrefix {
            pk: keys::workspace(&ws).pk,
            sk_prefix: "ARC#".into(),
        },
        tlao_ports::Direction::Forward,
        10,
    );
    assert!(
        w.services
            .core
            .store
            .query_items(prefix)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_body_that_is_not_gzip_is_refused() {
    let w = world(Guardrails::default()).await;
    let ws: tlao_domain::WorkspaceId = w.workspace().await.parse().unwrap();
    let result = w
        .services
        .archives
        .upload(
            &w.admin,
            &ws,
            None,
            stream_of(Bytes::from_static(b"PK\x03\x04zip"), 3),
        )
        .await;
    match result {
        Err(ServiceError::Invalid(errors)) => assert!(errors.mentions("body"), "{errors}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_non_member_is_forbidden_and_an_unknown_workspace_is_not_found() {
    let w = world(Guardrails::default()).await;
    let ws = w.workspace().await;
    let stranger = w.services.users.create(&w.admin, "stranger").await.unwrap();
    let stranger = Caller {
        user_id: stranger.user.user_id,
        admin: false,
    };
    let ws_id: tlao_domain::WorkspaceId = ws.parse().unwrap();

    assert!(matches!(
        w.services.workspaces.get(&stranger, &ws_id).await,
        Err(ServiceError::Forbidden(_))
    ));
    let unknown = tlao_domain::WorkspaceId::new(tlao_domain::Ulid::from_parts(1, 1));
    assert!(matches!(
        w.services.workspaces.get(&stranger, &unknown).await,
        Err(ServiceError::NotFound {
            what: "workspace",
            ..
        })
    ));
    assert!(matches!(
        w.services.users.create(&stranger, "x").await,
        Err(ServiceError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_workspace_summary_counts_todays_runs_the_queue_and_archive_storage() {
    let w = world(Guardrails::default()).await;
    let ws_text = w.workspace().await;
    let ws: tlao_domain::WorkspaceId = ws_text.parse().unwrap();
    let first = gzip(b"first archive");
    let second = gzip(b"the second archive, a little longer");
    for body in [&first, &second] {
        w.services
            .archives
            .upload(&w.admin, &ws, None, stream_of(body.clone(), 7))
            .await
            .unwrap();
    }
    for _ in 0..3 {
        let task = w.task(&ws_text, plan()).await;
        w.services
            .runs
            .create(
                &w.admin,
                CreateRun {
                    task_id: task.task_id,
                    executor: None,
                },
                None,
            )
            .await
            .unwrap();
    }

    let summary = w.services.workspaces.summary(&w.admin, &ws).await.unwrap();

    assert_eq!(summary.runs_today, 3);
    assert_eq!(summary.daily_quota, 100);
    assert_eq!(summary.queued, 3);
    assert_eq!(summary.running, 0);
    assert_eq!(summary.max_concurrent, 2);
    assert_eq!(summary.archive_count, 2);
    assert_eq!(summary.archive_bytes, (first.len() + second.len()) as u64);
    assert_eq!(summary.artifact_bytes, 0);
    assert!(!summary.storage_partial);

    // A workspace from before the usage counters has its records added up instead, to
    // the same figures.
    w.services
        .core
        .store
        .delete(&tlao_domain::keys::workspace_usage(&ws), None)
        .await
        .unwrap();
    let added_up = w.services.workspaces.summary(&w.admin, &ws).await.unwrap();
    assert_eq!(added_up, summary);
    // Counting on in such a workspace does not make its partial counters look complete.
    w.services
        .archives
        .upload(&w.admin, &ws, None, stream_of(first.clone(), 7))
        .await
        .unwrap();
    // The added-up figure is reused for a minute (a dashboard refreshes every 5 s)…
    let cached = w.services.workspaces.summary(&w.admin, &ws).await.unwrap();
    assert_eq!(cached.archive_count, 2);
    // …then added up again.
    w.clock.advance_millis(61 * 1000);
    let later = w.services.workspaces.summary(&w.admin, &ws).await.unwrap();
    assert_eq!(later.archive_count, 3);
    assert_eq!(later.archive_bytes, (2 * first.len() + second.len()) as u64);

    // The next UTC day starts from zero.
    w.clock.advance_millis(24 * 3600 * 1000);
    let tomorrow = w.services.workspaces.summary(&w.admin, &ws).await.unwrap();
    assert_eq!(tomorrow.runs_today, 0);

    let stranger = Caller {
        user_id: w
            .services
            .users
            .create(&w.admin, "stranger")
            .await
            .unwrap()
            .user
            .user_id,
        admin: false,
    };
    assert!(matches!(
        w.services.workspaces.summary(&stranger, &ws).await,
        Err(ServiceError::Forbidden(_))
    ));
}

/// Every run of `ws` (newest first, page by page) with its position as the list reports
/// it (the whole queue read, then searched).
async fn listed_positions(w: &World, ws: &str) -> Vec<(tlao_domain::RunId, Option<u32>)> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = w
            .services
            .runs
            .list(
                &w.admin,
                RunFilter {
                    workspace_id: Some(ws.parse().unwrap()),
                    status: None,
                    executor: None,
                    task_type: None,
                    limit: 100,
                    after,
                },
            )
            .await
            .unwrap();
        all.extend(
            page.items
                .into_iter()
                .map(|view| (view.run.run_id, view.queue_position)),
        );
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

#[tokio::test]
async fn a_runs_own_position_matches_the_whole_queues_in_every_shape() {
    let w = world(Guardrails {
        daily_run_quota: 10_000,
        daily_run_quota_per_user: 10_000,
        ..Guardrails::default()
    })
    .await;
    let ws = w.workspace().await;
    let other = w.workspace().await;
    // A queue crossing the read's page size (100) and its 1,000-run horizon, with the
    // other workspace's queue beside it, and gaps cut at the head, at page boundaries
    // and in the middle.
    let runs = w.queue_in(&ws.parse().unwrap(), 1010).await;
    w.queue_in(&other.parse().unwrap(), 3).await;
    for index in [0, 99, 100, 101, 500, 998] {
        w.services
            .runs
            .cancel(&w.admin, &runs[index])
            .await
            .unwrap();
    }
    let cancelled = [0, 99, 100, 101, 500, 998];
    let queued: Vec<_> = runs
        .iter()
        .enumerate()
        .filter(|(index, _)| !cancelled.contains(index))
        .map(|(_, run)| run.clone())
        .collect();
    let listed = listed_positions(&w, &ws).await;
    assert_eq!(listed.len(), runs.len());
    for (run, listed_position) in listed {
        let own = w.services.runs.get(&w.admin, &run).await.unwrap();
        let expected = queued
            .iter()
            .position(|queued| *queued == run)
            .map(|index| index as u32 + 1)
            .filter(|position| *position <= 1000);
        assert_eq!(own.queue_position, expected, "{run}");
        assert_eq!(own.queue_position, listed_position, "{run}");
    }
    // Past the horizon: the last queued runs have no position, as in the list.
    assert_eq!(queued.len(), 1004);
    // An emptied queue and a single run.
    for run in &queued {
        w.services.runs.cancel(&w.admin, run).await.unwrap();
    }
    let single = w.queue_in(&ws.parse().unwrap(), 1).await;
    let view = w.services.runs.get(&w.admin, &single[0]).await.unwrap();
    assert_eq!(view.queue_position, Some(1));
}
