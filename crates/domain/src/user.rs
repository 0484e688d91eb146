//! Users and their API keys. Keys are stored only as hashes (`PK=KEY#{hash}`), each with
//! an id (`key_...`) that lists and revokes it without showing it.

use serde::{Deserialize, Serialize};

use crate::id::{KeyId, Ulid, UserId};
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
#[serde(rename_all = "camelCase", from = "StoredApiKey")]
pub struct ApiKeyRecord {
    /// The lower-case hex SHA-256 of the key.
    pub key_hash: String,
    /// Its id, which names it in lists and revocations.
    pub key_id: KeyId,
    /// Whose key it is.
    pub user_id: UserId,
    /// When it was issued.
    pub created_at: Timestamp,
}

/// An API key record as stored: keys issued before keys had ids lack `keyId`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredApiKey {
    key_hash: String,
    #[serde(default)]
    key_id: Option<KeyId>,
    user_id: UserId,
    created_at: Timestamp,
}

impl From<StoredApiKey> for ApiKeyRecord {
    fn from(stored: StoredApiKey) -> Self {
        let key_id = stored
            .key_id
            .unwrap_or_else(|| legacy_key_id(&stored.key_hash, stored.created_at));
        ApiKeyRecord {
            key_hash: stored.key_hash,
            key_id,
            user_id: stored.user_id,
            created_at: stored.created_at,
        }
    }
}

/// The id of a key issued before keys had ids: its creation time and 80 bits of its
/// hash, so every reader derives the same id for it.
pub fn legacy_key_id(key_hash: &str, created_at: Timestamp) -> KeyId {
    let random = key_hash
        .chars()
        .filter_map(|c| c.to_digit(16))
        .take(20)
        .fold(0u128, |acc, digit| (acc << 4) | u128::from(digit));
    KeyId::new(Ulid::from_parts(
        created_at.unix_millis().max(0) as u64,
        random,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_stored_without_an_id_gets_the_same_id_on_every_read() {
        let doc = serde_json::json!({
            "keyHash": "ab".repeat(32),
            "userId": UserId::new(Ulid::from_parts(1, 1)).to_string(),
            "createdAt": "2026-11-26T10:00:00Z",
        });
        let first: ApiKeyRecord = serde_json::from_value(doc.clone()).expect("a record");
        let second: ApiKeyRecord = serde_json::from_value(doc).expect("a record");
        assert_eq!(first.key_id, second.key_id);
        assert_eq!(
            first.key_id.ulid().unix_millis() as i64,
            first.created_at.unix_millis()
        );
    }

    #[test]
    fn a_stored_key_id_is_kept() {
        let record = ApiKeyRecord {
            key_hash: "cd".repeat(32),
            key_id: KeyId::new(Ulid::from_parts(5, 6)),
            user_id: UserId::new(Ulid::from_parts(1, 1)),
            created_at: Timestamp::from_unix_millis(7),
        };
        let json = serde_json::to_value(&record).expect("json");
        let back: ApiKeyRecord = serde_json::from_value(json).expect("a record");
        assert_eq!(back, record);
    }
}
