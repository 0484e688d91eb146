//! Users and their API keys. Keys are stored only as hashes (`PK=KEY#{hash}`).

use serde::{Deserialize, Serialize};

use crate::id::UserId;
use crate::time::Timestamp;
use crate::workspace::Name;

/// A person or a service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Its id.
    pub user_id: UserId,
    /// Its display name.
    pub name: Name,
    /// Whether it may manage users and executors.
    pub admin: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

/// An API key, known only by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    /// The lower-case hex SHA-256 of the key.
    pub key_hash: String,
    /// Whose key it is.
    pub user_id: UserId,
    /// When it was issued.
    pub created_at: Timestamp,
}
