//! Workspaces: the user-scoped context that owns tasks, runs, archives and artifacts.

use serde::{Deserialize, Serialize};

use crate::id::{ArchiveId, UserId, WorkspaceId};
use crate::time::Timestamp;

/// The longest workspace name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A display name: 1 to 100 characters, not blank, no control characters. Used for
/// workspaces and users.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty or only white space.
    #[error("must not be blank")]
    Blank,
    /// Longer than [`MAX_NAME_CHARS`].
    #[error("must be at most {MAX_NAME_CHARS} characters")]
    TooLong,
    /// Contains a control character.
    #[error("must not contain control characters")]
    Control,
}

impl Name {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            Err(NameError::Blank)
        } else if trimmed.chars().count() > MAX_NAME_CHARS {
            Err(NameError::TooLong)
        } else if trimmed.chars().any(char::is_control) {
            Err(NameError::Control)
        } else {
            Ok(Name(trimmed.to_owned()))
        }
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

/// A workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    /// Its id.
    pub workspace_id: WorkspaceId,
    /// Its display name.
    pub name: Name,
    /// The user who created it.
    pub owner: UserId,
    /// When it was created.
    pub created_at: Timestamp,
}

/// How a user belongs to a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Created it; may do anything in it.
    Owner,
    /// May create tasks and runs and read everything.
    Member,
}

/// A user's membership of a workspace (stored on both sides so either can be listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The user.
    pub user_id: UserId,
    /// How they belong.
    pub role: Role,
    /// Since when.
    pub created_at: Timestamp,
}

/// An uploaded workspace archive (a tar.gz of a repository).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    /// Its id.
    pub archive_id: ArchiveId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// The blob key, `workspaces/{ws}/archives/{archiveId}.tar.gz`.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// The lower-case hex SHA-256 of its bytes.
    pub sha256: String,
    /// Who uploaded it.
    pub uploaded_by: UserId,
    /// When.
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(
            Name::try_from("  demo ".to_owned()).unwrap().as_str(),
            "demo"
        );
        assert_eq!(Name::try_from("   ".to_owned()), Err(NameError::Blank));
        assert_eq!(
            Name::try_from("a\u{7}b".to_owned()),
            Err(NameError::Control)
        );
        assert_eq!(Name::try_from("x".repeat(101)), Err(NameError::TooLong));
        assert!(Name::try_from("é".repeat(100)).is_ok());
    }
}
