//! Tenant limits, API key management and early archive refusal, through the services on
//! real adapters: the per-user counters under racing requests (on SQLite, which
//! serialises writers, and in memory), workspace paging, key issue/list/revoke, and the
//! archive scan checked against the `tar` crate the worker extracts with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use tlao_adapters_local::{FsBlobStore, LocalEventBus, SqliteTable};
use tlao_domain::tar_scan::{TarLimits, TarScan};
use tlao_domain::{Guardrails, Limit, Name, NewTask, WorkspaceId, keys};
use tlao_orchestrator::{Caller, CreateRun, ServiceError, Services};
use tlao_ports::{AttrValue, ByteStream, Item, ManualClock};

use common::World;

async fn world(guardrails: Guardrails) -> World {
    common::world_with(
        guardrails,
        Arc::new(LocalEventBus::new()),
        json!({"name": "kiro", "kind": "kiro", "taskTypes": ["doc.write"]}),
    )
    .await
}

/// Services on a SQLite file (its directory kept by the returned guard) and an
/// administrator.
async fn sqlite_services(guardrails: Guardrails) -> (Arc<Services>, Caller, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-26T10:00:00Z".parse().unwrap()));
    let blobs = FsBlobStore::new(
        dir.path().join("blobs"),
        "http://127.0.0.1:1".into(),
        b"k".repeat(32),
        clock.clone(),
    )
    .unwrap();
    let table = SqliteTable::open(&dir.path().join("tlao.db"))
        .await
        .unwrap();
    let services = Arc::new(Services::new(
        Arc::new(table),
        Arc::new(blobs),
        clock,
        guardrails,
        Arc::new(LocalEventBus::new()),
    ));
    let admin = services
        .users
        .bootstrap_admin(Name::try_from("admin".to_owned()).unwrap())
        .await
        .unwrap()
        .unwrap();
    services
        .executors
        .ensure(
            tlao_domain::ExecutorDescriptor::parse(
                &json!({"name": "kiro", "kind": "kiro", "taskTypes": ["doc.write"]}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let caller = Caller {
        user_id: admin.user.user_id,
        admin: true,
    };
    (services, caller, dir)
}

/// A new user (not an administrator) of `services`.
async fn user(services: &Services, admin: &Caller, name: &str) -> Caller {
    let issued = services.users.create(admin, name).await.unwrap();
    Caller {
        user_id: issued.user.user_id,
        admin: false,
    }
}

async fn task_in(services: &Services, caller: &Caller, ws: &WorkspaceId) -> tlao_domain::TaskId {
    let request = NewTask::parse(&json!({
        "workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "write it"}
    }))
    .unwrap();
    services
        .tasks
        .create(caller, request, None)
        .await
        .unwrap()
        .task_id
}

async fn run_of(
    services: &Services,
    caller: &Caller,
    task: &tlao_domain::TaskId,
) -> Result<tlao_orchestrator::RunView, ServiceError> {
    let request = CreateRun {
        task_id: task.clone(),
        executor: None,
    };
    services.runs.create(caller, request, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_race_of_workspace_creates_against_the_users_limit_admits_exactly_the_limit() {
    let (services, admin, _dir) = sqlite_services(Guardrails {
        max_workspaces_per_user: 7,
        ..Guardrails::default()
    })
    .await;
    let ann = user(&services, &admin, "ann").await;

    let attempts = (0..20).map(|index| {
        let (services, ann) = (services.clone(), ann.clone());
        tokio::spawn(async move {
            services
                .workspaces
                .create(&ann, &format!("ws {index}"))
                .await
        })
    });
    let outcomes = futures::future::join_all(attempts).await;

    let admitted = outcomes.iter().filter(|o| matches!(o, Ok(Ok(_)))).count();
    let refused = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Ok(Err(ServiceError::LimitReached {
                    limit: Limit::MaxWorkspacesPerUser,
                    max: 7
                }))
            )
        })
        .count();
    assert_eq!((admitted, refused), (7, 13), "{outcomes:?}");
    let listed = services.workspaces.page(&ann, 100, None).await.unwrap();
    assert_eq!(listed.items.len(), 7);
    // Another user has a limit of their own.
    let bob = user(&services, &admin, "bob").await;
    services.workspaces.create(&bob, "bob's").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_race_of_runs_in_several_workspaces_against_the_users_daily_quota_admits_exactly_the_quota()
 {
    let (services, admin, _dir) = sqlite_services(Guardrails {
        daily_run_quota_per_user: 9,
        ..Guardrails::default()
    })
    .await;
    let ann = user(&services, &admin, "ann").await;
    let mut tasks = Vec::new();
    for index in 0..3 {
        let ws = services
            .workspaces
            .create(&ann, &format!("ws {index}"))
            .await
            .unwrap()
            .workspace_id;
        tasks.push(task_in(&services, &ann, &ws).await);
    }

    let attempts = (0..24).map(|index| {
        let (services, ann) = (services.clone(), ann.clone());
        let task = tasks[index % tasks.len()].clone();
        tokio::spawn(async move { run_of(&services, &ann, &task).await })
    });
    let outcomes = futures::future::join_all(attempts).await;

    let admitted = outcomes.iter().filter(|o| matches!(o, Ok(Ok(_)))).count();
    let refused = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Ok(Err(ServiceError::QuotaExceeded {
                    limit: Limit::DailyRunQuotaPerUser,
                    quota: 9,
                    ..
                }))
            )
        })
        .count();
    assert_eq!((admitted, refused), (9, 15), "{outcomes:?}");
}

#[tokio::test]
async fn the_users_daily_quota_spans_their_workspaces_and_resets_at_the_next_utc_midnight() {
    let w = world(Guardrails {
        daily_run_quota_per_user: 2,
        ..Guardrails::default()
    })
    .await;
    let first = w.services.workspaces.create(&w.admin, "one").await.unwrap();
    let second = w.services.workspaces.create(&w.admin, "two").await.unwrap();
    let first_task = task_in(&w.services, &w.admin, &first.workspace_id).await;
    let second_task = task_in(&w.services, &w.admin, &second.workspace_id).await;
    run_of(&w.services, &w.admin, &first_task).await.unwrap();
    run_of(&w.services, &w.admin, &second_task).await.unwrap();

    let refused = run_of(&w.services, &w.admin, &first_task).await;

    match refused {
        Err(
            error @ ServiceError::QuotaExceeded {
                limit: Limit::DailyRunQuotaPerUser,
                quota: 2,
                retry_after_seconds,
            },
        ) => {
            assert_eq!(retry_after_seconds, 14 * 3600, "10:00 to midnight");
            assert!(
                error
                    .to_string()
                    .contains("guardrails.daily_run_quota_per_user"),
                "{error}"
            );
        }
        other => panic!("expected the user's quota, got {other:?}"),
    }
    w.clock.set(
        "2026-11-27T00:00:00Z"
            .parse::<tlao_domain::Timestamp>()
            .unwrap(),
    );
    run_of(&w.services, &w.admin, &first_task).await.unwrap();
}

#[tokio::test]
async fn an_owner_of_workspaces_from_before_the_counter_is_counted_once_from_their_memberships() {
    let w = world(Guardrails {
        max_workspaces_per_user: 3,
        ..Guardrails::default()
    })
    .await;
    let ann = user(&w.services, &w.admin, "ann").await;
    for name in ["a", "b"] {
        w.services.workspaces.create(&ann, name).await.unwrap();
    }
    // As if the two were created before workspaces were counted.
    w.services
        .core
        .store
        .delete(&keys::workspaces_owned(&ann.user_id), None)
        .await
        .unwrap();

    w.services.workspaces.create(&ann, "c").await.unwrap();
    let refused = w.services.workspaces.create(&ann, "d").await;

    assert!(
        matches!(
            refused,
            Err(ServiceError::LimitReached {
                limit: Limit::MaxWorkspacesPerUser,
                max: 3
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn paging_through_a_users_workspaces_returns_each_once_oldest_first() {
    let w = world(Guardrails {
        max_workspaces_per_user: 40,
        ..Guardrails::default()
    })
    .await;
    let mut created = Vec::new();
    for index in 0..23 {
        let ws = w
            .services
            .workspaces
            .create(&w.admin, &format!("ws {index}"))
            .await
            .unwrap();
        created.push(ws.workspace_id);
    }

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = w
            .services
            .workspaces
            .page(&w.admin, 5, after.as_ref())
            .await
            .unwrap();
        assert!(page.items.len() <= 5);
        seen.extend(page.items.into_iter().map(|ws| ws.workspace_id));
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => break,
        }
    }

    assert_eq!(seen, created);
    assert!(matches!(
        w.services.workspaces.page(&w.admin, 0, None).await,
        Err(ServiceError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_revoked_key_cannot_authenticate_and_is_no_longer_listed() {
    let w = world(Guardrails::default()).await;
    let ann = w.services.users.create(&w.admin, "ann").await.unwrap();
    let caller = Caller {
        user_id: ann.user.user_id.clone(),
        admin: false,
    };
    let second = w
        .services
        .users
        .create_key(&caller, &caller.user_id)
        .await
        .unwrap();
    w.services
        .users
        .authenticate(&second.api_key)
        .await
        .unwrap();

    let listed = w
        .services
        .users
        .list_keys(&caller, &caller.user_id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].record.key_id, second.record.key_id);
    assert!(listed[1].last_used_at.is_some(), "{listed:?}");
    assert_eq!(listed[0].last_used_at, None);

    w.services
        .users
        .revoke_key(&caller, &caller.user_id, &second.record.key_id)
        .await
        .unwrap();

    assert!(matches!(
        w.services.users.authenticate(&second.api_key).await,
        Err(ServiceError::Unauthenticated(_))
    ));
    w.services.users.authenticate(&ann.api_key).await.unwrap();
    let listed = w
        .services
        .users
        .list_keys(&caller, &caller.user_id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(matches!(
        w.services
            .users
            .revoke_key(&caller, &caller.user_id, &second.record.key_id)
            .await,
        Err(ServiceError::NotFound {
            what: "API key",
            ..
        })
    ));
}

#[tokio::test]
async fn only_the_user_or_an_administrator_manages_a_users_keys() {
    let w = world(Guardrails::default()).await;
    let ann = user(&w.services, &w.admin, "ann").await;
    let bob = user(&w.services, &w.admin, "bob").await;

    assert!(matches!(
        w.services.users.list_keys(&bob, &ann.user_id).await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        w.services.users.create_key(&bob, &ann.user_id).await,
        Err(ServiceError::Forbidden(_))
    ));
    let by_admin = w
        .services
        .users
        .create_key(&w.admin, &ann.user_id)
        .await
        .unwrap();
    assert!(matches!(
        w.services
            .users
            .revoke_key(&bob, &ann.user_id, &by_admin.record.key_id)
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    w.services
        .users
        .revoke_key(&w.admin, &ann.user_id, &by_admin.record.key_id)
        .await
        .unwrap();
    let nobody = tlao_domain::UserId::new(tlao_domain::Ulid::from_parts(1, 1));
    assert!(matches!(
        w.services.users.list_keys(&w.admin, &nobody).await,
        Err(ServiceError::NotFound { what: "user", .. })
    ));
}

#[tokio::test]
async fn a_key_from_before_key_ids_is_listed_after_its_next_use_and_can_be_revoked() {
    let w = world(Guardrails::default()).await;
    let ann = w.services.users.create(&w.admin, "ann").await.unwrap();
    let store = &w.services.core.store;
    // Rewrite ann's key as an older server stored it: no `keyId`, no listing item.
    let hash = tlao_orchestrator::users::hash_api_key(&ann.api_key);
    let listed = w
        .services
        .users
        .list_keys(&w.admin, &ann.user.user_id)
        .await
        .unwrap();
    store
        .delete(
            &keys::user_key(&ann.user.user_id, &listed[0].record.key_id),
            None,
        )
        .await
        .unwrap();
    let old_doc = json!({
        "keyHash": hash, "userId": ann.user.user_id, "createdAt": ann.user.created_at
    });
    store
        .put_item(
            Item::new(keys::api_key(&hash))
                .with("kind", AttrValue::S("api_key".into()))
                .with("doc", AttrValue::S(old_doc.to_string())),
            None,
        )
        .await
        .unwrap();
    assert!(
        w.services
            .users
            .list_keys(&w.admin, &ann.user.user_id)
            .await
            .unwrap()
            .is_empty()
    );

    w.services.users.authenticate(&ann.api_key).await.unwrap();

    let listed = w
        .services
        .users
        .list_keys(&w.admin, &ann.user.user_id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    w.services
        .users
        .revoke_key(&w.admin, &ann.user.user_id, &listed[0].record.key_id)
        .await
        .unwrap();
    assert!(matches!(
        w.services.users.authenticate(&ann.api_key).await,
        Err(ServiceError::Unauthenticated(_))
    ));
}

fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

/// A tar of `count` empty files, built by the `tar` crate.
fn empty_files(count: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for index in 0..count {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("f/{index}"), &[][..])
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn stream_of(data: Bytes, chunk: usize) -> ByteStream {
    let parts: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(parts))
}

async fn archives_stored(w: &World, ws: &WorkspaceId) -> usize {
    w.services
        .core
        .store
        .query_items(tlao_ports::Query::new(
            keys::archives_of(ws),
            tlao_ports::Direction::Forward,
            10,
        ))
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test]
async fn an_archive_of_too_many_entries_is_refused_as_it_streams_and_nothing_is_stored() {
    let w = world(Guardrails {
        max_archive_entries: 50,
        ..Guardrails::default()
    })
    .await;
    let ws = w.services.workspaces.create(&w.admin, "x").await.unwrap();
    let ws = ws.workspace_id;
    // The refusal comes before the end: the rest of the stream is an error that is
    // never read.
    let body = gzip(&empty_files(51));
    let parts = vec![Ok(body.clone()), Err(std::io::Error::other("never read"))];
    let stream: ByteStream = Box::pin(futures::stream::iter(parts));

    let refused = w
        .services
        .archives
        .upload(&w.admin, &ws, None, stream)
        .await;

    assert!(
        matches!(
            refused,
            Err(ServiceError::LimitReached {
                limit: Limit::MaxArchiveEntries,
                max: 50
            })
        ),
        "{refused:?}"
    );
    assert_eq!(archives_stored(&w, &ws).await, 0);
    let fits = gzip(&empty_files(50));
    w.services
        .archives
        .upload(&w.admin, &ws, None, stream_of(fits, 100))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_by_its_unpacked_size_at_its_first_header() {
    let w = world(Guardrails {
        max_unpacked_bytes: 1 << 20,
        ..Guardrails::default()
    })
    .await;
    let ws = w.services.workspaces.create(&w.admin, "x").await.unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let zeros = vec![0u8; 2 << 20];
    header.set_size(zeros.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "zeros.bin", &zeros[..])
        .unwrap();
    let bomb = gzip(&builder.into_inner().unwrap());
    // Small next to what it unpacks to, whichever deflate backend the build links.
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());

    let refused = w
        .services
        .archives
        .upload(&w.admin, &ws.workspace_id, None, stream_of(bomb, 512))
        .await;

    assert!(
        matches!(
            refused,
            Err(ServiceError::LimitReached {
                limit: Limit::MaxUnpackedBytes,
                max: 1_048_576
            })
        ),
        "{refused:?}"
    );
    assert_eq!(archives_stored(&w, &ws.workspace_id).await, 0);
}

#[tokio::test]
async fn a_gzip_stream_that_is_not_a_tar_archive_is_refused_when_it_ends() {
    let w = world(Guardrails::default()).await;
    let ws = w.services.workspaces.create(&w.admin, "x").await.unwrap();
    for body in [
        gzip(b"just some text, not a tar"),
        Bytes::from_static(b"\x1f\x8b\x08\x00garbage after a gzip magic"),
        gzip(&empty_files(3)).slice(..20),
    ] {
        let refused = w
            .services
            .archives
            .upload(&w.admin, &ws.workspace_id, None, stream_of(body, 7))
            .await;
        match refused {
            Err(ServiceError::Invalid(errors)) => {
                assert!(errors.mentions("body"), "{errors}");
                assert!(errors.to_string().contains("tar.gz"), "{errors}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    assert_eq!(archives_stored(&w, &ws.workspace_id).await, 0);
}

/// Counts what the `tar` crate yields from `tar`: entries and the bytes of regular
/// files, as the worker's extraction counts them.
fn counted_by_the_tar_crate(tar: &[u8]) -> (u64, u64) {
    let mut archive = tar::Archive::new(tar);
    let mut entries = 0;
    let mut bytes = 0;
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        entries += 1;
        if matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            bytes += entry.size();
        }
    }
    (entries, bytes)
}

#[test]
fn the_scan_counts_what_the_tar_crate_reads_long_names_links_and_pax_headers_included() {
    let mut builder = tar::Builder::new(Vec::new());
    let long = format!("{}/file.txt", "deep".repeat(40));
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, &long, &b"hello"[..])
        .unwrap();
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    dir.set_mode(0o755);
    dir.set_cksum();
    builder.append_data(&mut dir, "src/", &[][..]).unwrap();
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_cksum();
    builder
        .append_link(&mut link, "src/link", format!("../{}", "t".repeat(150)))
        .unwrap();
    builder
        .append_pax_extensions([("comment", &b"a pax record"[..])])
        .unwrap();
    let mut after_pax = tar::Header::new_ustar();
    after_pax.set_size(1000);
    after_pax.set_mode(0o600);
    after_pax.set_cksum();
    builder
        .append_data(&mut after_pax, "data.bin", &[3u8; 1000][..])
        .unwrap();
    let tar = builder.into_inner().unwrap();

    let (entries, bytes) = counted_by_the_tar_crate(&tar);
    let mut scan = TarScan::new(TarLimits::from(&Guardrails::default()));
    for piece in tar.chunks(97) {
        scan.feed(piece).unwrap();
    }
    let summary = scan.finish().unwrap();

    assert_eq!((summary.entries, summary.unpacked_bytes), (entries, bytes));
    assert_eq!((entries, bytes), (4, 1005));
}
