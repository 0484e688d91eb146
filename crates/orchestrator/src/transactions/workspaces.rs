//! Creating a workspace, storing an archive, and the workspace's usage counters those
//! writes and artifact settlements keep.

use tlao_domain::{Archive, Membership, Workspace, WorkspaceId, keys};
use tlao_ports::{AttrValue, Condition, Item, Update, WriteOp};

use crate::attrs;
use crate::codec::{Lookup, LookupOf, UserWorkspace};
use crate::store::{Store, StoreError};
use crate::transaction::Transaction;

/// Stores a new `workspace` with its owner's `membership` (both sides of it), and its
/// usage item, marked as counting everything from the start.
pub async fn create_workspace(
    store: &Store,
    workspace: &Workspace,
    membership: &Membership,
) -> Result<(), StoreError> {
    let mut tx = Transaction::new();
    tx.insert(workspace)?
        .insert(membership)?
        .insert(&UserWorkspace(membership.clone()))?
        .push(WriteOp::Put {
            item: Item::new(keys::workspace_usage(&workspace.workspace_id))
                .with(attrs::USAGE_COMPLETE, AttrValue::Bool(true)),
            condition: Some(Condition::NotExists),
        });
    tx.commit(store).await
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
