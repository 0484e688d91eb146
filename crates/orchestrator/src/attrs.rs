//! The names of the attributes an item carries besides its key, and the `kind` values of
//! the items that are not entities, in one place.
//!
//! An entity's item holds its `kind`, its JSON `doc` and a few projections that
//! conditional writes test ([`crate::codec`] writes them). Counters (a workspace's active
//! runs, a day's quota, a run's next event number, a workspace's storage) are separate
//! numeric attributes that only `Update`s change, so re-putting a document never clobbers
//! one. The services read counters and the named transactions
//! ([`crate::transactions`]) write them, both by these names.

/// What the item is (`run`, `task`, `quota`, ...), checked when an entity is decoded.
pub const KIND: &str = "kind";
/// The entity as JSON.
pub const DOC: &str = "doc";
/// The projected status of a run or an artifact.
pub const STATUS: &str = "status";
/// The projected lease of a running run.
pub const LEASE: &str = "leaseId";
/// A run item's revision, incremented by each write of it.
pub const REV: &str = "rev";
/// A run item's event counter: the last sequence number used.
pub const NEXT_SEQ: &str = "nextSeq";
/// A workspace item's count of its running runs.
pub const ACTIVE_RUNS: &str = "activeRuns";
/// A daily quota item's count of the day's runs (a workspace's, or a user's across
/// their workspaces).
pub const QUOTA_COUNT: &str = "count";
/// A user's count of the workspaces they own.
pub const OWNED: &str = "owned";
/// When an API key last got a token, in milliseconds since the epoch (on its
/// `KEY#{hash}` item; written at most once a minute).
pub const LAST_USED_AT: &str = "lastUsedAt";
/// When an item expires, in seconds since the epoch (DynamoDB's TTL attribute; other
/// engines keep the item and its readers treat it as absent).
pub const EXPIRES_AT: &str = "expiresAt";
/// The workspace a queue entry or an active-run entry belongs to.
pub const WORKSPACE_ID: &str = "workspaceId";
/// The executor a workspace's queue entry waits for.
pub const EXECUTOR: &str = "executor";
/// The user a session, or the bootstrap marker, names.
pub const USER_ID: &str = "userId";
/// Whether a session's user is an administrator.
pub const ADMIN: &str = "admin";
/// When a session started, in milliseconds since the epoch.
pub const CREATED_AT: &str = "createdAt";
/// The hash of the request an idempotency record answers.
pub const REQUEST_HASH: &str = "requestHash";
/// The response an idempotency record replays, as JSON.
pub const RESPONSE: &str = "response";
/// A workspace usage item's mark that its counters cover every archive and artifact:
/// written when the workspace is created. Workspaces from before the counters lack it.
pub const USAGE_COMPLETE: &str = "complete";
/// Bytes of a workspace's available artifacts.
pub const ARTIFACT_BYTES: &str = "artifactBytes";
/// How many of a workspace's artifacts are available.
pub const ARTIFACT_COUNT: &str = "artifactCount";
/// Bytes of a workspace's uploaded archives.
pub const ARCHIVE_BYTES: &str = "archiveBytes";
/// How many archives a workspace has.
pub const ARCHIVE_COUNT: &str = "archiveCount";

/// When an executor sighting was last reported, in milliseconds since the epoch.
pub const LAST_SEEN_AT: &str = "lastSeenAt";
/// The version an executor sighting reported.
pub const VERSION: &str = "version";

/// The [`KIND`] values of items that are not entities (entities name theirs in
/// [`crate::codec::Entity::KIND`]).
pub mod kind {
    /// A day's quota counter of a workspace or of a user.
    pub const QUOTA: &str = "quota";
    /// A user's counter of the workspaces they own.
    pub const OWNED: &str = "owned";
    /// An entry of an executor's queue.
    pub const QUEUE: &str = "queue";
    /// An entry of a workspace's queue.
    pub const QUEUED: &str = "queued";
    /// An entry of the index of running runs.
    pub const ACTIVE: &str = "active";
    /// An idempotency record.
    pub const IDEMPOTENCY: &str = "idempotency";
    /// A console session.
    pub const SESSION: &str = "session";
    /// A worker's report that an executor's program is found.
    pub const EXECUTOR_SEEN: &str = "execseen";
}
