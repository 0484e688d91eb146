//! Artifacts: what a run produced (plan, patch, documents, transcript, files).
//!
//! An artifact record is created `pending` before its bytes are stored, and becomes
//! `available` once they are, or `upload_failed` when every retry of the upload failed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::{ArtifactId, RunId, WorkspaceId};
use crate::time::Timestamp;

/// The longest artifact name accepted, in bytes.
pub const MAX_ARTIFACT_NAME_BYTES: usize = 255;

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactType {
    /// An execution plan (`plan.json` of a `spec.generate` run).
    Plan,
    /// A unified diff of the workspace (`changes.patch`).
    Patch,
    /// A document the agent wrote.
    Document,
    /// The agent's full transcript.
    Transcript,
    /// Any other file the executor wrote to its output directory.
    File,
}

impl ArtifactType {
    /// Every artifact type.
    pub const ALL: [ArtifactType; 5] = [
        ArtifactType::Plan,
        ArtifactType::Patch,
        ArtifactType::Document,
        ArtifactType::Transcript,
        ArtifactType::File,
    ];

    /// The wire name, e.g. `plan`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactType::Plan => "plan",
            ArtifactType::Patch => "patch",
            ArtifactType::Document => "document",
            ArtifactType::Transcript => "transcript",
            ArtifactType::File => "file",
        }
    }
}

impl fmt::Display for ArtifactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not an artifact type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("artifactType {0:?} is not one of plan, patch, document, transcript, file")]
pub struct UnknownArtifactType(pub String);

impl FromStr for ArtifactType {
    type Err = UnknownArtifactType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ArtifactType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| UnknownArtifactType(text.to_owned()))
    }
}

/// Where an artifact's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactStatus {
    /// The record exists; the bytes are not stored yet.
    Pending,
    /// The bytes are stored and can be downloaded.
    Available,
    /// Every attempt to store the bytes failed.
    UploadFailed,
}

impl ArtifactStatus {
    /// The wire name, e.g. `upload_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactStatus::Pending => "pending",
            ArtifactStatus::Available => "available",
            ArtifactStatus::UploadFailed => "upload_failed",
        }
    }
}

/// A relative, portable file name for an artifact: no empty, `.` or `..` segments, no
/// leading `/`, no backslashes or control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtifactName(String);

/// Why an artifact name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactNameError {
    /// Empty.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_ARTIFACT_NAME_BYTES`].
    #[error("is longer than {MAX_ARTIFACT_NAME_BYTES} bytes")]
    TooLong,
    /// Not a safe relative path.
    #[error(
        "must be a relative path without empty, '.' or '..' segments, backslashes or control characters"
    )]
    Unsafe,
}

impl ArtifactName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last path segment, e.g. `plan.json` of `docs/plan.json`.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl TryFrom<String> for ArtifactName {
    type Error = ArtifactNameError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text.is_empty() {
            return Err(ArtifactNameError::Empty);
        }
        if text.len() > MAX_ARTIFACT_NAME_BYTES {
            return Err(ArtifactNameError::TooLong);
        }
        let safe_chars = !text.chars().any(|c| c.is_control() || c == '\\');
        let safe_segments = text
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
        if safe_chars && safe_segments {
            Ok(ArtifactName(text))
        } else {
            Err(ArtifactNameError::Unsafe)
        }
    }
}

impl From<ArtifactName> for String {
    fn from(name: ArtifactName) -> String {
        name.0
    }
}

/// An output of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Its id.
    pub artifact_id: ArtifactId,
    /// The run that produced it.
    pub run_id: RunId,
    /// The run's workspace.
    pub workspace_id: WorkspaceId,
    /// What it is.
    pub artifact_type: ArtifactType,
    /// Its file name, relative to the run's output.
    pub name: ArtifactName,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type, e.g. `application/json`.
    pub content_type: String,
    /// The lower-case hex SHA-256 of its bytes.
    pub sha256: String,
    /// Where its bytes are.
    pub status: ArtifactStatus,
    /// The blob key of its bytes, under `workspaces/{ws}/runs/{run}/artifacts/`.
    pub key: String,
    /// When the record was created.
    pub created_at: Timestamp,
    /// Why the upload failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An artifact status change that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("artifact is {from}; it cannot become {to}", from = .from.as_str(), to = .to.as_str())]
pub struct ArtifactTransitionError {
    /// The current status.
    pub from: ArtifactStatus,
    /// The status asked for.
    pub to: ArtifactStatus,
}

impl Artifact {
    /// Marks the bytes as stored. Only a `pending` artifact can become `available`.
    pub fn mark_available(&mut self) -> Result<(), ArtifactTransitionError> {
        self.transition(ArtifactStatus::Available)?;
        self.error = None;
        Ok(())
    }

    /// Marks the upload as failed for good, with the reason.
    pub fn mark_upload_failed(&mut self, reason: String) -> Result<(), ArtifactTransitionError> {
        self.transition(ArtifactStatus::UploadFailed)?;
        self.error = Some(reason);
        Ok(())
    }

    fn transition(&mut self, to: ArtifactStatus) -> Result<(), ArtifactTransitionError> {
        if self.status != ArtifactStatus::Pending {
            return Err(ArtifactTransitionError {
                from: self.status,
                to,
            });
        }
        self.status = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_must_be_safe_relative_paths() {
        for good in ["plan.json", "docs/README.md", "a/b/c.txt", "..hidden"] {
            assert!(ArtifactName::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a\\b",
            "./a",
            "a/",
            "tab\there",
        ] {
            assert!(ArtifactName::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        let name = ArtifactName::try_from("docs/plan.json".to_owned()).unwrap();
        assert_eq!(name.file_name(), "plan.json");
    }

    #[test]
    fn unknown_artifact_types_name_the_allowed_ones() {
        let error = "zip".parse::<ArtifactType>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "artifactType \"zip\" is not one of plan, patch, document, transcript, file"
        );
    }
}
