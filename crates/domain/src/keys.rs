//! The single-table key layout (requirement 6) and the blob key layout (requirements
//! 3.5, 11.2). Keys are formatted here and nowhere else.
//!
//! | entity            | PK                | SK                     |
//! |-------------------|-------------------|------------------------|
//! | workspace         | `WS#{ws}`         | `META`                 |
//! | membership        | `WS#{ws}`         | `MEMBER#{user}`        |
//! | task              | `WS#{ws}`         | `TASK#{task}`          |
//! | run               | `WS#{ws}`         | `RUN#{run}`            |
//! | artifact          | `WS#{ws}`         | `ART#{art}`            |
//! | archive           | `WS#{ws}`         | `ARC#{arc}`            |
//! | daily quota       | `WS#{ws}`         | `QUOTA#{yyyy-mm-dd}`   |
//! | queued run        | `WS#{ws}`         | `QUEUED#{run}`         |
//! | run step / event  | `RUN#{run}`       | `STEP#{seq:012}`       |
//! | lookup by id      | `RUN#`/`TASK#`/`ART#`/`ARC#{id}` | `REF`   |
//! | executor          | `SYS`             | `EXEC#{name}`          |
//! | executor sighting | `SYS`             | `EXECSEEN#{name}#{worker}` |
//! | bootstrap marker  | `SYS`             | `BOOTSTRAP`            |
//! | queue entry       | `QUEUE#{executor}`| `{run}`                |
//! | active run        | `ACTIVE`          | `{run}`                |
//! | user              | `USER#{user}`     | `META`                 |
//! | user's workspace  | `USER#{user}`     | `WS#{ws}`              |
//! | user's key        | `USER#{user}`     | `KEY#{keyId}`          |
//! | user's daily quota| `USER#{user}`     | `QUOTA#{yyyy-mm-dd}`   |
//! | workspaces owned  | `USER#{user}`     | `OWNED`                |
//! | API key           | `KEY#{sha256}`    | `META`                 |
//! | idempotency key   | `IDEM#{user}#{key}` | `META`               |
//! | console session   | `SESSION#{sid}`   | `META`                 |
//!
//! Ids sort by time, so a prefix query (`RUN#`) returns runs in creation order.

use serde::{Deserialize, Serialize};

use crate::artifact::ArtifactName;
use crate::executor::ExecutorName;
use crate::id::{ArchiveId, ArtifactId, KeyId, RunId, TaskId, UserId, WorkspaceId};
use crate::time::UtcDate;

/// The partition and sort key of one item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    /// The partition key.
    pub pk: String,
    /// The sort key.
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: impl Into<String>) -> Self {
        Key { pk, sk: sk.into() }
    }
}

/// A partition and a sort-key prefix: what a range query asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix {
    /// The partition key.
    pub pk: String,
    /// The sort-key prefix.
    pub sk_prefix: String,
}

const META: &str = "META";
const REF: &str = "REF";

fn ws_pk(ws: &WorkspaceId) -> String {
    format!("WS#{ws}")
}

fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}

/// The workspace item.
pub fn workspace(ws: &WorkspaceId) -> Key {
    Key::new(ws_pk(ws), META)
}

/// A workspace's storage counters (bytes and counts of its archives and available
/// artifacts), kept in the transactions that add them.
pub fn workspace_usage(ws: &WorkspaceId) -> Key {
    Key::new(ws_pk(ws), "USAGE")
}

/// A user's membership, on the workspace side.
pub fn membership(ws: &WorkspaceId, user: &UserId) -> Key {
    Key::new(ws_pk(ws), format!("MEMBER#{user}"))
}

/// A workspace a user belongs to, on the user side.
pub fn user_workspace(user: &UserId, ws: &WorkspaceId) -> Key {
    Key::new(user_pk(user), format!("WS#{ws}"))
}

/// Every workspace a user belongs to.
pub fn workspaces_of(user: &UserId) -> KeyPrefix {
    KeyPrefix {
        pk: user_pk(user),
        sk_prefix: "WS#".into(),
    }
}

/// A task.
pub fn task(ws: &WorkspaceId, task: &TaskId) -> Key {
    Key::new(ws_pk(ws), format!("TASK#{task}"))
}

/// A run.
pub fn run(ws: &WorkspaceId, run: &RunId) -> Key {
    Key::new(ws_pk(ws), format!("RUN#{run}"))
}

/// Every run of a workspace.
pub fn runs_of(ws: &WorkspaceId) -> KeyPrefix {
    KeyPrefix {
        pk: ws_pk(ws),
        sk_prefix: "RUN#".into(),
    }
}

/// An artifact.
pub fn artifact(ws: &WorkspaceId, art: &ArtifactId) -> Key {
    Key::new(ws_pk(ws), format!("ART#{art}"))
}

/// Every artifact of a workspace.
pub fn artifacts_of(ws: &WorkspaceId) -> KeyPrefix {
    KeyPrefix {
        pk: ws_pk(ws),
        sk_prefix: "ART#".into(),
    }
}

/// An uploaded archive.
pub fn archive(ws: &WorkspaceId, arc: &ArchiveId) -> Key {
    Key::new(ws_pk(ws), format!("ARC#{arc}"))
}

/// Every uploaded archive of a workspace.
pub fn archives_of(ws: &WorkspaceId) -> KeyPrefix {
    KeyPrefix {
        pk: ws_pk(ws),
        sk_prefix: "ARC#".into(),
    }
}

/// A workspace's run counter for one UTC day.
pub fn daily_quota(ws: &WorkspaceId, day: UtcDate) -> Key {
    Key::new(ws_pk(ws), format!("QUOTA#{day}"))
}

/// One event of a run, by sequence number (zero-padded so keys sort numerically).
pub fn run_step(run: &RunId, seq: u64) -> Key {
    Key::new(format!("RUN#{run}"), format!("STEP#{seq:012}"))
}

/// Every event of a run.
pub fn run_steps(run: &RunId) -> KeyPrefix {
    KeyPrefix {
        pk: format!("RUN#{run}"),
        sk_prefix: "STEP#".into(),
    }
}

/// The lookup item that finds a run's workspace from its id.
pub fn run_ref(run: &RunId) -> Key {
    Key::new(format!("RUN#{run}"), REF)
}

/// The lookup item that finds a task's workspace from its id.
pub fn task_ref(task: &TaskId) -> Key {
    Key::new(format!("TASK#{task}"), REF)
}

/// The lookup item that finds an artifact's workspace from its id.
pub fn artifact_ref(art: &ArtifactId) -> Key {
    Key::new(format!("ART#{art}"), REF)
}

/// The lookup item that finds an archive's workspace from its id.
pub fn archive_ref(arc: &ArchiveId) -> Key {
    Key::new(format!("ARC#{arc}"), REF)
}

/// An executor registry record.
pub fn executor(name: &ExecutorName) -> Key {
    Key::new("SYS".into(), format!("EXEC#{name}"))
}

/// Every executor registry record.
pub fn executors() -> KeyPrefix {
    KeyPrefix {
        pk: "SYS".into(),
        sk_prefix: "EXEC#".into(),
    }
}

/// When a worker last reported an executor's program found (requirement 2.2); one item
/// per executor and worker.
pub fn executor_seen(name: &ExecutorName, worker: &str) -> Key {
    Key::new("SYS".into(), format!("EXECSEEN#{name}#{worker}"))
}

/// Every executor sighting (`EXECSEEN#` does not share the registry's `EXEC#` prefix).
pub fn executors_seen() -> KeyPrefix {
    KeyPrefix {
        pk: "SYS".into(),
        sk_prefix: "EXECSEEN#".into(),
    }
}

/// A queued run waiting for a worker; the run id sorts the queue by age.
pub fn queue_entry(executor: &ExecutorName, run: &RunId) -> Key {
    Key::new(format!("QUEUE#{executor}"), run.as_str())
}

/// Every queued run of an executor, oldest first in ascending order.
pub fn queue_of(executor: &ExecutorName) -> KeyPrefix {
    KeyPrefix {
        pk: format!("QUEUE#{executor}"),
        sk_prefix: String::new(),
    }
}

/// A queued run, indexed in its workspace so its queue position is one small query.
pub fn workspace_queue_entry(ws: &WorkspaceId, run: &RunId) -> Key {
    Key::new(ws_pk(ws), format!("QUEUED#{run}"))
}

/// Every queued run of a workspace, oldest first in ascending order.
pub fn workspace_queue(ws: &WorkspaceId) -> KeyPrefix {
    KeyPrefix {
        pk: ws_pk(ws),
        sk_prefix: "QUEUED#".into(),
    }
}

/// A running run, indexed so the reaper can find every running run with one query.
pub fn active_run(run: &RunId) -> Key {
    Key::new("ACTIVE".into(), run.as_str())
}

/// Every running run.
pub fn active_runs() -> KeyPrefix {
    KeyPrefix {
        pk: "ACTIVE".into(),
        sk_prefix: String::new(),
    }
}

/// The marker written once when the first administrator is created.
pub fn bootstrap() -> Key {
    Key::new("SYS".into(), "BOOTSTRAP")
}

/// A user.
pub fn user(user: &UserId) -> Key {
    Key::new(user_pk(user), META)
}

/// An API key, by the hex SHA-256 of the key.
pub fn api_key(key_hash: &str) -> Key {
    Key::new(format!("KEY#{key_hash}"), META)
}

/// An API key of a user, on the user side, by its id: what lists and revokes it.
pub fn user_key(user: &UserId, key: &KeyId) -> Key {
    Key::new(user_pk(user), format!("KEY#{key}"))
}

/// Every API key of a user, oldest first in ascending order.
pub fn keys_of(user: &UserId) -> KeyPrefix {
    KeyPrefix {
        pk: user_pk(user),
        sk_prefix: "KEY#".into(),
    }
}

/// A user's run counter for one UTC day, across all their workspaces.
pub fn user_daily_quota(user: &UserId, day: UtcDate) -> Key {
    Key::new(user_pk(user), format!("QUOTA#{day}"))
}

/// A user's counter of the workspaces they own.
pub fn workspaces_owned(user: &UserId) -> Key {
    Key::new(user_pk(user), "OWNED")
}

/// A remembered `Idempotency-Key` of a user.
pub fn idempotency(user: &UserId, key: &str) -> Key {
    Key::new(format!("IDEM#{user}#{key}"), META)
}

/// A console session, by its id (the hex SHA-256 of the cookie's secret).
pub fn session(sid: &str) -> Key {
    Key::new(format!("SESSION#{sid}"), META)
}

/// Blob keys: where bytes live in the blob store.
pub mod blob {
    use super::*;

    /// `workspaces/{ws}/archives/{arc}.tar.gz`
    pub fn archive(ws: &WorkspaceId, arc: &ArchiveId) -> String {
        format!("workspaces/{ws}/archives/{arc}.tar.gz")
    }

    /// `workspaces/{ws}/tasks/{task}/taskspec.json`: a task's TaskSpec, written once when
    /// the task is created and read by the workers of all its runs (a task never changes).
    pub fn task_spec(ws: &WorkspaceId, task: &TaskId) -> String {
        format!("workspaces/{ws}/tasks/{task}/taskspec.json")
    }

    /// `workspaces/{ws}/runs/{run}/taskspec.json`: the copy of its task's TaskSpec a run
    /// was given when its task predates [`task_spec`] (see `Task::spec_key`).
    pub fn run_task_spec(ws: &WorkspaceId, run: &RunId) -> String {
        format!("workspaces/{ws}/runs/{run}/taskspec.json")
    }

    /// `workspaces/{ws}/runs/{run}/artifacts/`
    pub fn artifacts_prefix(ws: &WorkspaceId, run: &RunId) -> String {
        format!("workspaces/{ws}/runs/{run}/artifacts/")
    }

    /// `workspaces/{ws}/runs/{run}/artifacts/{art}/{name}`
    pub fn artifact(
        ws: &WorkspaceId,
        run: &RunId,
        art: &ArtifactId,
        name: &ArtifactName,
    ) -> String {
        format!("{}{art}/{}", artifacts_prefix(ws, run), name.as_str())
    }

    /// The workspace, run and artifact of an [`artifact`] key; `None` for any other key.
    pub fn parse_artifact(key: &str) -> Option<(WorkspaceId, RunId, ArtifactId)> {
        let mut parts = key.splitn(7, '/');
        let (Some("workspaces"), Some(ws), Some("runs"), Some(run), Some("artifacts"), Some(art)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        parts.next().filter(|name| !name.is_empty())?;
        Some((ws.parse().ok()?, run.parse().ok()?, art.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Ulid;

    #[test]
    fn keys_follow_the_single_table_layout() {
        let ws = WorkspaceId::new(Ulid::from_parts(1, 1));
        let run_id = RunId::new(Ulid::from_parts(1, 2));
        assert_eq!(workspace(&ws).pk, format!("WS#{ws}"));
        assert_eq!(workspace(&ws).sk, "META");
        assert_eq!(run(&ws, &run_id).sk, format!("RUN#{run_id}"));
        assert_eq!(run_step(&run_id, 7).sk, "STEP#000000000007");
        assert_eq!(
            executor(&"kiro".parse().unwrap()),
            Key::new("SYS".into(), "EXEC#kiro")
        );
        let name = ArtifactName::try_from("plan.json".to_owned()).unwrap();
        let art = ArtifactId::new(Ulid::from_parts(1, 3));
        assert!(
            blob::artifact(&ws, &run_id, &art, &name)
                .starts_with(&format!("workspaces/{ws}/runs/{run_id}/artifacts/"))
        );
    }

    #[test]
    fn an_artifact_key_names_its_workspace_run_and_artifact() {
        let ws = WorkspaceId::new(Ulid::from_parts(1, 1));
        let run_id = RunId::new(Ulid::from_parts(1, 2));
        let art = ArtifactId::new(Ulid::from_parts(1, 3));
        let name = ArtifactName::try_from("docs/plan.json".to_owned()).unwrap();
        let key = blob::artifact(&ws, &run_id, &art, &name);
        assert_eq!(
            blob::parse_artifact(&key),
            Some((ws.clone(), run_id.clone(), art))
        );
        assert_eq!(
            blob::parse_artifact(&blob::run_task_spec(&ws, &run_id)),
            None
        );
        let task = TaskId::new(Ulid::from_parts(1, 4));
        assert_eq!(blob::parse_artifact(&blob::task_spec(&ws, &task)), None);
        assert_eq!(
            blob::parse_artifact(&blob::artifacts_prefix(&ws, &run_id)),
            None
        );
        assert_eq!(
            blob::parse_artifact("workspaces/x/runs/y/artifacts/z/a"),
            None
        );
    }

    #[test]
    fn a_users_counters_and_keys_never_match_the_prefix_of_their_workspaces() {
        let user = UserId::new(Ulid::from_parts(1, 4));
        let key = KeyId::new(Ulid::from_parts(1, 5));
        let day = crate::time::Timestamp::from_unix_millis(1_795_000_000_000).utc_date();
        let workspaces = workspaces_of(&user);
        for item in [
            user_key(&user, &key),
            user_daily_quota(&user, day),
            workspaces_owned(&user),
        ] {
            assert_eq!(item.pk, workspaces.pk);
            assert!(!item.sk.starts_with(&workspaces.sk_prefix), "{item:?}");
        }
        assert!(
            user_key(&user, &key)
                .sk
                .starts_with(&keys_of(&user).sk_prefix)
        );
    }

    #[test]
    fn step_keys_sort_numerically() {
        let run_id = RunId::new(Ulid::from_parts(1, 2));
        assert!(run_step(&run_id, 9).sk < run_step(&run_id, 10).sk);
        assert!(run_step(&run_id, 99_999).sk < run_step(&run_id, 100_000).sk);
    }
}
