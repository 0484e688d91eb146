//! Creating a workspace (counted against its owner's limit), storing an archive, and the
//! workspace's usage counters those writes and artifact settlements keep.

use tlao_domain::{Archive, Membership, UserId, Workspace, WorkspaceId, keys};
use tlao_ports::{AttrValue, Condition, Item, Update, WriteOp};

use crate::attrs::{self, kind};
use crate::codec::{Lookup, LookupOf, UserWorkspace};
use crate::store::{Store, StoreError};
use crate::transaction::Transaction;

/// Why [`create_workspace`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CreateWorkspaceError {
    /// The owner owns as many workspaces as one user may.
    #[error("the owner owns as many workspaces as one user may")]
    LimitReached,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a new `workspace` with its owner's `membership` (both sides of it), and its
/// usage item, marked as counting everything from the start; counts it on the owner's
/// counter of workspaces owned, on the condition that they own fewer than
/// `max_owned` (a missing counter counts none: [`seed_workspaces_owned`] writes it
/// first for owners from before the counter).
pub async fn create_workspace(
    store: &Store,
    workspace: &Workspace,
    membership: &Membership,
    max_owned: u32,
) -> Result<(), CreateWorkspaceError> {
    let mut tx = Transaction::new();
    tx.guarded(
        WriteOp::Update {
            key: keys::workspaces_owned(&workspace.owner),
            update: Update::new()
                .add(attrs::OWNED, 1)
                .set(attrs::KIND, AttrValue::S(kind::OWNED.into())),
            condition: Some(Condition::Or(vec![
                Condition::AttrMissing(attrs::OWNED.into()),
                Condition::LessThan(attrs::OWNED.into(), i64::from(max_owned)),
            ])),
        },
        CreateWorkspaceError::LimitReached,
    )
    .insert(workspace)?
    .insert(membership)?
    .insert(&UserWorkspace(membership.clone()))?
    .push(WriteOp::Put {
        item: Item::new(keys::workspace_usage(&workspace.workspace_id))
            .with(attrs::USAGE_COMPLETE, AttrValue::Bool(true)),
        condition: Some(Condition::NotExists),
    });
    tx.commit(store).await
}

/// How many workspaces `user` owns by their counter; `None` when they have none yet.
pub async fn workspaces_owned(store: &Store, user: &UserId) -> Result<Option<u64>, StoreError> {
    Ok(store
        .get_item(&keys::workspaces_owned(user))
        .await?
        .and_then(|item| item.n(attrs::OWNED))
        .map(|n| u64::try_from(n).unwrap_or(0)))
}

/// Writes the counter of workspaces `user` owns as `owned` unless a counter exists:
/// for owners of workspaces from before the counter, who would otherwise start at
/// none. Whoever writes it first wins; a counter that exists is never changed here.
pub async fn seed_workspaces_owned(
    store: &Store,
    user: &UserId,
    owned: u64,
) -> Result<(), StoreError> {
    let item = Item::new(keys::workspaces_owned(user))
        .with(attrs::KIND, AttrValue::S(kind::OWNED.into()))
        .with(
            attrs::OWNED,
            AttrValue::N(i64::try_from(owned).unwrap_or(i64::MAX)),
        );
    match store.put_item(item, Some(Condition::NotExists)).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Stores the record of an uploaded `archive` with its lookup item, and counts it in
/// its workspace's usage.
pub async fn store_archive(store: &Store, archive: &Archive) -> Result<(), StoreError> {
    let ws = &archive.workspace_id;
    let mut tx = Transaction::new();
    tx.insert(archive)?
        .insert(&Lookup {
            of: LookupOf::Archive(archive.archive_id.clone()),
            workspace_id: ws.clone(),
        })?
        .push(count(
            ws,
            attrs::ARCHIVE_BYTES,
            attrs::ARCHIVE_COUNT,
            archive.size,
        ));
    tx.commit(store).await
}

/// The write that counts an artifact of `size` bytes that became available, for the
/// transaction that settles it.
pub(crate) fn count_artifact(ws: &WorkspaceId, size: u64) -> WriteOp {
    count(ws, attrs::ARTIFACT_BYTES, attrs::ARTIFACT_COUNT, size)
}

fn count(ws: &WorkspaceId, bytes: &str, items: &str, size: u64) -> WriteOp {
    WriteOp::Update {
        key: keys::workspace_usage(ws),
        update: Update::new()
            .add(bytes, i64::try_from(size).unwrap_or(i64::MAX))
            .add(items, 1),
        condition: None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tlao_domain::{Guardrails, Name, Role};

    use super::*;
    use crate::transactions::testing::World;

    fn workspace_of(world: &World, owner: &UserId) -> (Workspace, Membership) {
        let core = world.core();
        let workspace = Workspace {
            workspace_id: WorkspaceId::new(core.new_ulid()),
            name: Name::try_from("mine".to_owned()).expect("a name"),
            owner: owner.clone(),
            created_at: core.now(),
        };
        let membership = Membership {
            workspace_id: workspace.workspace_id.clone(),
            user_id: owner.clone(),
            role: Role::Owner,
            created_at: core.now(),
        };
        (workspace, membership)
    }

    #[tokio::test]
    async fn a_workspace_beyond_the_owners_limit_is_refused_as_limit_reached() {
        let world = World::new(Guardrails::default());
        let store = &world.core().store;
        let owner = UserId::new(world.core().new_ulid());
        for _ in 0..2 {
            let (workspace, membership) = workspace_of(&world, &owner);
            create_workspace(store, &workspace, &membership, 2)
                .await
                .expect("within the limit");
        }

        let (workspace, membership) = workspace_of(&world, &owner);
        let refused = create_workspace(store, &workspace, &membership, 2).await;

        assert!(
            matches!(refused, Err(CreateWorkspaceError::LimitReached)),
            "{refused:?}"
        );
        assert_eq!(
            workspaces_owned(store, &owner).await.expect("a read"),
            Some(2)
        );
        assert!(
            store
                .get_item(&keys::workspace(&workspace.workspace_id))
                .await
                .expect("a read")
                .is_none(),
            "nothing of the refused workspace is stored"
        );
    }

    #[tokio::test]
    async fn a_race_of_creates_against_the_limit_admits_exactly_the_limit() {
        let world = Arc::new(World::new(Guardrails::default()));
        let owner = UserId::new(world.core().new_ulid());
        let attempts = (0..25).map(|_| {
            let world = world.clone();
            let (workspace, membership) = workspace_of(&world, &owner);
            tokio::spawn(async move {
                create_workspace(&world.core().store, &workspace, &membership, 10).await
            })
        });
        let outcomes = futures::future::join_all(attempts).await;

        let admitted = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(Ok(()))))
            .count();
        let refused = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(Err(CreateWorkspaceError::LimitReached))))
            .count();
        assert_eq!((admitted, refused), (10, 15), "{outcomes:?}");
        let store = &world.core().store;
        assert_eq!(
            workspaces_owned(store, &owner).await.expect("a read"),
            Some(10)
        );
    }

    #[tokio::test]
    async fn a_seeded_counter_counts_the_workspaces_from_before_it_and_is_never_reseeded() {
        let world = World::new(Guardrails::default());
        let store = &world.core().store;
        let owner = UserId::new(world.core().new_ulid());
        seed_workspaces_owned(store, &owner, 3)
            .await
            .expect("seeded");
        seed_workspaces_owned(store, &owner, 0)
            .await
            .expect("a no-op");

        let (workspace, membership) = workspace_of(&world, &owner);
        let refused = create_workspace(store, &workspace, &membership, 3).await;

        assert!(
            matches!(refused, Err(CreateWorkspaceError::LimitReached)),
            "{refused:?}"
        );
        assert_eq!(
            workspaces_owned(store, &owner).await.expect("a read"),
            Some(3)
        );
    }
}
