//! Requirement 6.7: every entity encodes to a valid item and decodes back to an equal
//! entity, for arbitrary values (proptest), and lands at the key the layout prescribes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use tlao_domain::*;
use tlao_orchestrator::codec::{self, Entity, LookupOf, UserKey, UserWorkspace};
use tlao_orchestrator::{Lookup, Step};

fn ulid() -> impl Strategy<Value = Ulid> {
    (0u64..(1 << 48), any::<u128>()).prop_map(|(ms, r)| Ulid::from_parts(ms, r))
}

fn ts() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800_000).prop_map(Timestamp::from_unix_millis)
}

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, quotes and newlines included: the document is JSON inside a string.
    "\\PC{0,40}"
}

fn name() -> impl Strategy<Value = Name> {
    "[a-zA-Z0-9 _.éü-]{1,30}".prop_filter_map("blank", |s| Name::try_from(s).ok())
}

fn task_type() -> impl Strategy<Value = TaskType> {
    prop::sample::select(TaskType::ALL.to_vec())
}

fn artifact_type() -> impl Strategy<Value = ArtifactType> {
    prop::sample::select(ArtifactType::ALL.to_vec())
}

fn executor_name() -> impl Strategy<Value = ExecutorName> {
    "[a-z][a-z0-9-]{0,20}".prop_map(|s| s.parse().unwrap())
}

fn artifact_name() -> impl Strategy<Value = ArtifactName> {
    "[a-z0-9_]{1,8}(/[a-z0-9_.]{1,8}){0,2}"
        .prop_filter_map("unsafe", |s| ArtifactName::try_from(s).ok())
}

fn task_spec() -> impl Strategy<Value = TaskSpec> {
    (
        task_type(),
        "\\PC{1,200}".prop_filter_map("blank", |s| Prompt::try_from(s).ok()),
        option::of(ulid().prop_map(ArchiveId::new)),
        option::of(1u32..100_000),
        option::of(any::<u64>()),
        option::of((vec(artifact_type(), 0..3), option::of(text()))),
        option::of(("[0-9a-f]{40}", any::<bool>())),
    )
        .prop_map(
            |(task_type, prompt, archive_id, max, budget, expected, source)| TaskSpec {
                task_type,
                input: TaskInput {
                    prompt,
                    archive_id,
                    source: source.map(|(commit, dirty)| SourceRevision {
                        commit: commit.parse::<CommitId>().unwrap(),
                        dirty,
                    }),
                },
                constraints: Constraints {
                    max_run_seconds: max,
                    token_budget: budget,
                },
                expected_output: expected.map(|(artifact_types, description)| ExpectedOutput {
                    artifact_types,
                    description,
                }),
            },
        )
}

fn run_error() -> impl Strategy<Value = RunError> {
    (
        prop::sample::select(vec![
            RunErrorCode::ExecutorFailed,
            RunErrorCode::ExecutorUnavailable,
            RunErrorCode::WorkerLost,
            RunErrorCode::InvalidArchive,
            RunErrorCode::UploadFailed,
            RunErrorCode::Internal,
        ]),
        text(),
        option::of(any::<i32>()),
    )
        .prop_map(|(code, message, exit_code)| RunError {
            code,
            message,
            exit_code,
        })
}

fn usage() -> impl Strategy<Value = Usage> {
    prop_oneof![
        Just(Usage::Unmeasured),
        (
            (option::of(text()), text()),
            (
                option::of(any::<u64>()),
                option::of(any::<u64>()),
                option::of(any::<u64>()),
                option::of(("[0-9]{1,6}\\.[0-9]{1,6}", "[A-Z]{3}")),
            ),
        )
            .prop_map(
                |((credits, summary), (input_tokens, output_tokens, cached_tokens, cost))| {
                    Usage::Reported {
                        credits,
                        summary,
                        input_tokens,
                        output_tokens,
                        cached_tokens,
                        cost: cost.map(|(amount, currency)| Cost { amount, currency }),
                    }
                }
            ),
    ]
}

prop_compose! {
    fn run()(
        ids in (ulid(), ulid(), ulid(), ulid()),
        task_type in task_type(),
        executor in executor_name(),
        selection in option::of(".{0,80}"),
        status in prop::sample::select(RunStatus::ALL.to_vec()),
        times in (ts(), option::of(ts()), option::of(ts()), option::of(ts()), option::of(ts())),
        max_run_seconds in 1u32..100_000,
        lease in option::of(ulid().prop_map(LeaseId::new)),
        error in option::of(run_error()),
        usage in usage(),
        artifact_ids in vec(ulid().prop_map(ArtifactId::new), 0..4),
        logs in (any::<u64>(), any::<u64>(), any::<bool>(), any::<u64>(), any::<u64>(), any::<u64>()),
    ) -> Run {
        Run {
            run_id: RunId::new(ids.0),
            task_id: TaskId::new(ids.1),
            workspace_id: WorkspaceId::new(ids.2),
            task_type,
            executor,
            selection,
            status,
            created_by: UserId::new(ids.3),
            created_at: times.0,
            started_at: times.1,
            finished_at: times.2,
            max_run_seconds,
            deadline: times.3,
            lease_id: lease,
            heartbeat_at: times.4,
            error,
            usage,
            artifact_ids,
            log_bytes: logs.0,
            dropped_log_bytes: logs.1,
            logs_truncated: logs.2,
            worker_seq: logs.3,
            worker_dropped_lines: logs.4,
            worker_dropped_bytes: logs.5,
        }
    }
}

prop_compose! {
    fn artifact()(
        ids in (ulid(), ulid(), ulid()),
        artifact_type in artifact_type(),
        name in artifact_name(),
        size in any::<u64>(),
        content_type in "[a-z]+/[a-z.+-]+",
        sha256 in "[0-9a-f]{64}",
        status in prop::sample::select(vec![ArtifactStatus::Pending, ArtifactStatus::Available, ArtifactStatus::UploadFailed]),
        created_at in ts(),
        error in option::of(text()),
    ) -> Artifact {
        let workspace_id = WorkspaceId::new(ids.2);
        let run_id = RunId::new(ids.1);
        let artifact_id = ArtifactId::new(ids.0);
        let key = keys::blob::artifact(&workspace_id, &run_id, &artifact_id, &name);
        Artifact { artifact_id, run_id, workspace_id, artifact_type, name, size, content_type, sha256, status, key, created_at, error }
    }
}

fn executor() -> impl Strategy<Value = ExecutorDescriptor> {
    let kiro = (
        "[a-z/-]{1,20}",
        option::of("[a-z-]{1,10}"),
        vec(text(), 0..3),
        any::<bool>(),
        option::of(1u32..10_000),
    )
        .prop_map(|(binary, agent, extra_args, preflight, max_run_seconds)| {
            ExecutorConfig::Kiro(KiroConfig {
                binary,
                agent,
                extra_args,
                preflight,
                max_run_seconds,
                harness: Default::default(),
            })
        });
    let command = (
        vec(text(), 1..4),
        btree_map("[A-Z_]{1,8}", text(), 0..3),
        prop::sample::select(vec![PromptVia::Arg, PromptVia::Stdin]),
        option::of(1u32..10_000),
    )
        .prop_map(|(command, env, prompt_via, max_run_seconds)| {
            ExecutorConfig::Command(CommandConfig {
                command,
                env: env.into_iter().collect::<BTreeMap<_, _>>(),
                prompt_via,
                max_run_seconds,
            })
        });
    let stream = (
        prop::sample::select(StreamFormat::ALL.to_vec()),
        vec(text(), 0..4),
        btree_map("[A-Z_]{1,8}", text(), 0..3),
        option::of(1u32..10_000),
    )
        .prop_map(|(format, command, env, max_run_seconds)| {
            ExecutorConfig::Stream(StreamConfig {
                format,
                command,
                env: env.into_iter().collect::<BTreeMap<_, _>>(),
                max_run_seconds,
            })
        });
    let path =
        "(~|)/[a-z][a-z.]{0,7}(/[a-z_-]{1,8}){0,2}".prop_map(|p| p.parse::<GrantedPath>().unwrap());
    let network = prop_oneof![
        Just(NetworkPolicy::Any),
        Just(NetworkPolicy::None),
        btree_set(1u16..=u16::MAX, 0..4).prop_map(NetworkPolicy::TcpPorts),
    ];
    let sandbox = (
        vec(path.clone(), 0..3),
        vec(path, 0..3),
        vec(
            "[A-S][A-Z_]{0,8}\\*?".prop_map(|n| n.parse::<EnvGrant>().unwrap()),
            0..3,
        ),
        network,
    )
        .prop_map(|(read_paths, write_paths, env, network)| SandboxGrants {
            read_paths,
            write_paths,
            env,
            network,
        });
    (
        executor_name(),
        btree_set(task_type(), 1..4),
        prop_oneof![kiro, command, stream],
        sandbox,
    )
        .prop_map(|(name, task_types, config, sandbox)| ExecutorDescriptor {
            name,
            task_types: task_types.into_iter().collect::<BTreeSet<_>>(),
            config,
            sandbox,
        })
}

fn event_payload() -> impl Strategy<Value = EventPayload> {
    prop_oneof![
        (
            prop::sample::select(vec![
                LogStream::Stdout,
                LogStream::Stderr,
                LogStream::System
            ]),
            text()
        )
            .prop_map(|(stream, text)| EventPayload::Log { stream, text }),
        (text(), option::of(0u8..=100))
            .prop_map(|(message, percent)| EventPayload::Progress { message, percent }),
        prop::sample::select(RunStatus::ALL.to_vec())
            .prop_map(|status| EventPayload::Status { status }),
        (ulid(), text(), artifact_type()).prop_map(|(id, name, artifact_type)| {
            EventPayload::Artifact {
                artifact_id: ArtifactId::new(id),
                name,
                artifact_type,
            }
        }),
        any::<u64>().prop_map(|max_log_bytes| EventPayload::Truncated { max_log_bytes }),
    ]
}

/// Encodes, checks the item is a valid single-table item at the expected key, decodes.
fn round_trip<E: Entity + PartialEq + std::fmt::Debug>(
    entity: &E,
    pk_prefix: &str,
    sk_prefix: &str,
) {
    let item = codec::encode(entity).unwrap();
    assert!(
        item.key.pk.starts_with(pk_prefix),
        "pk {} for {}",
        item.key.pk,
        E::KIND
    );
    assert!(
        item.key.sk.starts_with(sk_prefix),
        "sk {} for {}",
        item.key.sk,
        E::KIND
    );
    // DynamoDB: key attributes are non-empty strings of at most 2048 / 1024 bytes, and no
    // attribute shadows the key attribute names.
    assert!(!item.key.pk.is_empty() && item.key.pk.len() <= 2048);
    assert!(!item.key.sk.is_empty() && item.key.sk.len() <= 1024);
    assert!(!item.attrs.contains_key("PK") && !item.attrs.contains_key("SK"));
    assert!(item.attrs.keys().all(|name| !name.is_empty()));
    let back: E = codec::decode(&item).unwrap();
    assert_eq!(&back, entity);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn workspaces_round_trip(id in ulid(), name in name(), owner in ulid(), at in ts()) {
        let ws = Workspace { workspace_id: WorkspaceId::new(id), name, owner: UserId::new(owner), created_at: at };
        round_trip(&ws, "WS#ws_", "META");
    }

    #[test]
    fn memberships_round_trip_on_both_sides(ws in ulid(), user in ulid(), owner in any::<bool>(), at in ts()) {
        let membership = Membership {
            workspace_id: WorkspaceId::new(ws),
            user_id: UserId::new(user),
            role: if owner { Role::Owner } else { Role::Member },
            created_at: at,
        };
        round_trip(&membership, "WS#ws_", "MEMBER#usr_");
        round_trip(&UserWorkspace(membership), "USER#usr_", "WS#ws_");
    }

    #[test]
    fn tasks_round_trip(
        ids in (ulid(), ulid(), ulid()),
        spec in task_spec(),
        at in ts(),
        spec_key in proptest::option::of("workspaces/[a-z0-9_]{1,30}/taskspec\\.json"),
    ) {
        let task = Task {
            task_id: TaskId::new(ids.0),
            workspace_id: WorkspaceId::new(ids.1),
            spec,
            created_by: UserId::new(ids.2),
            created_at: at,
            spec_key,
        };
        round_trip(&task, "WS#ws_", "TASK#task_");
    }

    #[test]
    fn runs_round_trip_with_their_status_projected(run in run()) {
        round_trip(&run, "WS#ws_", "RUN#run_");
        let item = codec::encode(&run).unwrap();
        prop_assert_eq!(item.s(tlao_orchestrator::attrs::STATUS), Some(run.status.as_str()));
        prop_assert_eq!(item.s(tlao_orchestrator::attrs::LEASE).map(str::to_owned), run.lease_id.map(|l| l.to_string()));
    }

    #[test]
    fn artifacts_round_trip(artifact in artifact()) {
        round_trip(&artifact, "WS#ws_", "ART#art_");
    }

    #[test]
    fn archives_round_trip(ids in (ulid(), ulid(), ulid()), size in any::<u64>(), sha in "[0-9a-f]{64}", at in ts()) {
        let workspace_id = WorkspaceId::new(ids.1);
        let archive_id = ArchiveId::new(ids.0);
        let archive = Archive {
            key: keys::blob::archive(&workspace_id, &archive_id),
            archive_id,
            workspace_id,
            size,
            sha256: sha,
            uploaded_by: UserId::new(ids.2),
            created_at: at,
        };
        round_trip(&archive, "WS#ws_", "ARC#arc_");
    }

    #[test]
    fn executors_round_trip(executor in executor()) {
        round_trip(&executor, "SYS", "EXEC#");
    }

    #[test]
    fn users_and_api_keys_round_trip(id in ulid(), key in ulid(), name in name(), admin in any::<bool>(), at in ts(), hash in "[0-9a-f]{64}") {
        round_trip(&User { user_id: UserId::new(id), name, admin, created_at: at }, "USER#usr_", "META");
        let record = ApiKeyRecord { key_hash: hash, key_id: KeyId::new(key), user_id: UserId::new(id), created_at: at };
        round_trip(&record, "KEY#", "META");
        round_trip(&UserKey(record), "USER#usr_", "KEY#key_");
    }

    #[test]
    fn steps_round_trip(run_id in ulid(), seq in 1u64..1_000_000_000_000, at in ts(), payload in event_payload()) {
        let step = Step { run_id: RunId::new(run_id), event: RunEvent { seq, at, payload } };
        round_trip(&step, "RUN#run_", "STEP#");
    }

    #[test]
    fn lookups_round_trip(id in ulid(), ws in ulid(), which in 0..4) {
        let of = match which {
            0 => LookupOf::Run(RunId::new(id)),
            1 => LookupOf::Task(TaskId::new(id)),
            2 => LookupOf::Artifact(ArtifactId::new(id)),
            _ => LookupOf::Archive(ArchiveId::new(id)),
        };
        let lookup = Lookup { of, workspace_id: WorkspaceId::new(ws) };
        let item = codec::encode(&lookup).unwrap();
        prop_assert_eq!(item.key.sk.as_str(), "REF");
        round_trip(&lookup, "", "REF");
    }
}
