//! Entity ↔ item encoding for the single table, written once.
//!
//! An entity is stored as one item at the key the domain's key layout gives it, with:
//! - `kind`: what the item is (`run`, `task`, ...), checked on decode;
//! - `doc`: the entity as JSON (camelCase, the same shape the API speaks);
//! - projections: the few fields that conditional writes test (`status`, `leaseId`).
//!
//! Counters (a workspace's active runs, a day's quota, a run's next event number) are
//! separate numeric attributes changed only by `Update`s, never by re-putting `doc`, so a
//! document write cannot clobber a counter. Every attribute's name is in [`crate::attrs`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use tlao_domain::{
    ApiKeyRecord, Archive, ArchiveId, Artifact, ArtifactId, ExecutorDescriptor, Key, Membership,
    Run, RunEvent, RunId, Task, TaskId, User, Workspace, WorkspaceId, keys,
};
use tlao_ports::{AttrValue, Attrs, Item};

use crate::attrs::{DOC, KIND, LEASE, STATUS};

/// The largest `doc` accepted, in bytes: DynamoDB's item limit is 400 KB and the key and
/// projections need some of it.
pub const MAX_DOC_BYTES: usize = 350 * 1024;

/// Why an item could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The item holds another kind of entity.
    #[error("item {pk}/{sk} is a {found:?}, expected a {expected}")]
    WrongKind {
        /// Partition key.
        pk: String,
        /// Sort key.
        sk: String,
        /// The kind asked for.
        expected: &'static str,
        /// The kind stored, if any.
        found: Option<String>,
    },
    /// The document is missing or does not parse as the entity.
    #[error("item {pk}/{sk} does not hold a valid {expected}: {reason}")]
    Malformed {
        /// Partition key.
        pk: String,
        /// Sort key.
        sk: String,
        /// The kind asked for.
        expected: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The entity is too large for one item.
    #[error("a {kind} of {bytes} bytes exceeds the {MAX_DOC_BYTES}-byte item budget")]
    TooLarge {
        /// The kind.
        kind: &'static str,
        /// Its encoded size.
        bytes: usize,
    },
}

/// A domain value stored as one item.
pub trait Entity: Serialize + DeserializeOwned {
    /// The `kind` attribute.
    const KIND: &'static str;

    /// Where it is stored.
    fn key(&self) -> Key;

    /// Attributes projected out of the document for conditions.
    fn projections(&self, _attrs: &mut Attrs) {}
}

/// Encodes an entity into an item.
pub fn encode<E: Entity>(entity: &E) -> Result<Item, CodecError> {
    let doc = serde_json::to_string(entity).map_err(|e| CodecError::Malformed {
        pk: entity.key().pk,
        sk: entity.key().sk,
        expected: E::KIND,
        reason: e.to_string(),
    })?;
    if doc.len() > MAX_DOC_BYTES {
        return Err(CodecError::TooLarge {
            kind: E::KIND,
            bytes: doc.len(),
        });
    }
    let mut item = Item::new(entity.key())
        .with(KIND, AttrValue::S(E::KIND.to_owned()))
        .with(DOC, AttrValue::S(doc));
    entity.projections(&mut item.attrs);
    Ok(item)
}

/// The attributes an update must set so the stored entity becomes `entity` (its
/// document and projections), leaving counters alone.
pub fn document_attrs<E: Entity>(entity: &E) -> Result<Attrs, CodecError> {
    Ok(encode(entity)?.attrs)
}

/// Decodes an item into an entity, checking its kind.
pub fn decode<E: Entity>(item: &Item) -> Result<E, CodecError> {
    let found = item.s(KIND);
    if found != Some(E::KIND) {
        return Err(CodecError::WrongKind {
            pk: item.key.pk.clone(),
            sk: item.key.sk.clone(),
            expected: E::KIND,
            found: found.map(str::to_owned),
        });
    }
    let malformed = |reason: String| CodecError::Malformed {
        pk: item.key.pk.clone(),
        sk: item.key.sk.clone(),
        expected: E::KIND,
        reason,
    };
    let doc = item
        .s(DOC)
        .ok_or_else(|| malformed("no doc attribute".into()))?;
    serde_json::from_str(doc).map_err(|e| malformed(e.to_string()))
}

impl Entity for Workspace {
    const KIND: &'static str = "workspace";
    fn key(&self) -> Key {
        keys::workspace(&self.workspace_id)
    }
}

impl Entity for Membership {
    const KIND: &'static str = "membership";
    fn key(&self) -> Key {
        keys::membership(&self.workspace_id, &self.user_id)
    }
}

/// The user-side copy of a membership, so a user's workspaces are one query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UserWorkspace(pub Membership);

impl Entity for UserWorkspace {
    const KIND: &'static str = "user_workspace";
    fn key(&self) -> Key {
        keys::user_workspace(&self.0.user_id, &self.0.workspace_id)
    }
}

impl Entity for Task {
    const KIND: &'static str = "task";
    fn key(&self) -> Key {
        keys::task(&self.workspace_id, &self.task_id)
    }
}

impl Entity for Run {
    const KIND: &'static str = "run";
    fn key(&self) -> Key {
        keys::run(&self.workspace_id, &self.run_id)
    }
    fn projections(&self, attrs: &mut Attrs) {
        attrs.insert(STATUS.into(), AttrValue::S(self.status.as_str().into()));
        if let Some(lease) = &self.lease_id {
            attrs.insert(LEASE.into(), AttrValue::S(lease.to_string()));
        }
    }
}

impl Entity for Artifact {
    const KIND: &'static str = "artifact";
    fn key(&self) -> Key {
        keys::artifact(&self.workspace_id, &self.artifact_id)
    }
    fn projections(&self, attrs: &mut Attrs) {
        attrs.insert(STATUS.into(), AttrValue::S(self.status.as_str().into()));
    }
}

impl Entity for Archive {
    const KIND: &'static str = "archive";
    fn key(&self) -> Key {
        keys::archive(&self.workspace_id, &self.archive_id)
    }
}

impl Entity for ExecutorDescriptor {
    const KIND: &'static str = "executor";
    fn key(&self) -> Key {
        keys::executor(&self.name)
    }
}

impl Entity for User {
    const KIND: &'static str = "user";
    fn key(&self) -> Key {
        keys::user(&self.user_id)
    }
}

impl Entity for ApiKeyRecord {
    const KIND: &'static str = "api_key";
    fn key(&self) -> Key {
        keys::api_key(&self.key_hash)
    }
}

/// An API key as listed on its user's side (`USER#{user}/KEY#{keyId}`), next to its
/// `KEY#{hash}` item, which authenticates it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UserKey(pub ApiKeyRecord);

impl Entity for UserKey {
    const KIND: &'static str = "user_key";
    fn key(&self) -> Key {
        keys::user_key(&self.0.user_id, &self.0.key_id)
    }
}

/// One event of a run, stored at `RUN#{run}/STEP#{seq}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The run it belongs to.
    pub run_id: RunId,
    /// The event.
    #[serde(flatten)]
    pub event: RunEvent,
}

impl Entity for Step {
    const KIND: &'static str = "step";
    fn key(&self) -> Key {
        keys::run_step(&self.run_id, self.event.seq)
    }
}

/// What a lookup item points from: an id whose workspace must be found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", tag = "of", content = "id")]
pub enum LookupOf {
    /// A run id.
    Run(RunId),
    /// A task id.
    Task(TaskId),
    /// An artifact id.
    Artifact(ArtifactId),
    /// An archive id.
    Archive(ArchiveId),
}

/// A lookup item (`{ID}/REF`): finds the workspace of an entity from its id alone, so
/// `GET /runs/{id}` is two point reads and never a scan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lookup {
    /// The id looked up.
    #[serde(flatten)]
    pub of: LookupOf,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
}

impl LookupOf {
    /// Where the lookup item of this id is stored.
    pub fn key(&self) -> Key {
        match self {
            LookupOf::Run(id) => keys::run_ref(id),
            LookupOf::Task(id) => keys::task_ref(id),
            LookupOf::Artifact(id) => keys::artifact_ref(id),
            LookupOf::Archive(id) => keys::archive_ref(id),
        }
    }
}

impl Entity for Lookup {
    const KIND: &'static str = "lookup";
    fn key(&self) -> Key {
        self.of.key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlao_domain::{Name, Timestamp, Ulid, UserId};

    fn workspace() -> Workspace {
        Workspace {
            workspace_id: WorkspaceId::new(Ulid::from_parts(1, 1)),
            name: Name::try_from("demo".to_owned()).unwrap(),
            owner: UserId::new(Ulid::from_parts(1, 2)),
            created_at: Timestamp::from_unix_millis(5),
        }
    }

    #[test]
    fn decoding_another_kind_is_refused() {
        let item = encode(&workspace()).unwrap();
        match decode::<Task>(&item) {
            Err(CodecError::WrongKind {
                expected: "task",
                found: Some(found),
                ..
            }) => {
                assert_eq!(found, "workspace")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_corrupt_document_is_reported_with_its_key() {
        let mut item = encode(&workspace()).unwrap();
        item.attrs
            .insert(DOC.into(), AttrValue::S("{\"workspaceId\": 1}".into()));
        let error = decode::<Workspace>(&item).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("does not hold a valid workspace"),
            "{error}"
        );
        assert!(error.to_string().contains(&item.key.pk), "{error}");
    }
}
