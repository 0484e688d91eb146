//! The TaskSpec: the contract every executor accepts.
//!
//! A TaskSpec says what to do (`taskType`), with what (`input.prompt`, optionally an
//! uploaded `input.archiveId`), within which limits (`constraints`) and what to hand back
//! (`expectedOutput`). [`TaskSpec::parse`] turns an untrusted JSON document into a valid
//! spec or the full list of what is wrong with it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::artifact::ArtifactType;
use crate::id::{ArchiveId, WorkspaceId};
use crate::validation::{Collector, ValidationErrors, join, kind};

/// The longest prompt accepted, in bytes.
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;

/// The largest `constraints.tokenBudget`: the largest integer the API takes.
pub const MAX_TOKEN_BUDGET: u64 = crate::validation::MAX_API_INTEGER;

/// What kind of work a task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskType {
    /// Generate a specification or execution plan (`spec.generate`).
    #[serde(rename = "spec.generate")]
    SpecGenerate,
    /// Change code in the workspace (`code.change`).
    #[serde(rename = "code.change")]
    CodeChange,
    /// Write documentation (`doc.write`).
    #[serde(rename = "doc.write")]
    DocWrite,
    /// Deploy infrastructure (`deploy.run`).
    #[serde(rename = "deploy.run")]
    DeployRun,
}

impl TaskType {
    /// Every registered task type.
    pub const ALL: [TaskType; 4] = [
        TaskType::SpecGenerate,
        TaskType::CodeChange,
        TaskType::DocWrite,
        TaskType::DeployRun,
    ];

    /// The wire name, e.g. `spec.generate`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::SpecGenerate => "spec.generate",
            TaskType::CodeChange => "code.change",
            TaskType::DocWrite => "doc.write",
            TaskType::DeployRun => "deploy.run",
        }
    }

    /// The allowed names, comma separated, for messages.
    pub fn allowed() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a registered task type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("taskType {0:?} is not one of {allowed}", allowed = TaskType::allowed())]
pub struct UnknownTaskType(pub String);

impl FromStr for TaskType {
    type Err = UnknownTaskType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TaskType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| UnknownTaskType(text.to_owned()))
    }
}

/// A non-blank prompt of at most [`MAX_PROMPT_BYTES`], without control characters
/// other than tab, newline and carriage return (a NUL cannot reach an agent's command
/// line, and escape sequences cannot reach a terminal or a log).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prompt(String);

/// Why a prompt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// Empty or only white space.
    #[error("must not be blank")]
    Blank,
    /// Longer than [`MAX_PROMPT_BYTES`].
    #[error("is {0} bytes; the limit is {MAX_PROMPT_BYTES} bytes")]
    TooLong(usize),
    /// Holds a control character other than tab, newline and carriage return.
    #[error(
        "contains the control character U+{code:04X} at byte {at}; only tab, newline and carriage return are allowed"
    )]
    ControlCharacter {
        /// The character's code point.
        code: u32,
        /// Its byte offset in the prompt.
        at: usize,
    },
}

impl Prompt {
    /// The prompt text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Prompt {
    type Error = PromptError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text.trim().is_empty() {
            Err(PromptError::Blank)
        } else if text.len() > MAX_PROMPT_BYTES {
            Err(PromptError::TooLong(text.len()))
        } else if let Some((at, c)) = text
            .char_indices()
            .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            Err(PromptError::ControlCharacter {
                code: u32::from(c),
                at,
            })
        } else {
            Ok(Prompt(text))
        }
    }
}

impl From<Prompt> for String {
    fn from(prompt: Prompt) -> String {
        prompt.0
    }
}

/// What the executor works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    /// The instruction to the agent.
    pub prompt: Prompt,
    /// The uploaded workspace archive to work in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_id: Option<ArchiveId>,
    /// Where the archive was packed from, when it was packed from a git repository:
    /// what `tlao apply` checks a repository against before applying the run's patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRevision>,
}

/// The git commit a workspace archive was packed from, and whether the working tree
/// had changes the commit does not hold (then the archive is that commit plus them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevision {
    /// The commit checked out when the archive was packed.
    pub commit: CommitId,
    /// Whether the packed tree differed from the commit (uncommitted or untracked files).
    pub dirty: bool,
}

/// A full git object name: 40 (SHA-1) or 64 (SHA-256) lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitId(String);

/// Why a commit id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a full git commit id (40 or 64 lowercase hexadecimal digits)")]
pub struct CommitIdError(pub String);

impl CommitId {
    /// The commit id's hexadecimal digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CommitId {
    type Error = CommitIdError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let hex = text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex && matches!(text.len(), 40 | 64) {
            Ok(CommitId(text))
        } else {
            Err(CommitIdError(text))
        }
    }
}

impl FromStr for CommitId {
    type Err = CommitIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CommitId::try_from(text.to_owned())
    }
}

impl From<CommitId> for String {
    fn from(commit: CommitId) -> String {
        commit.0
    }
}

/// Limits the task asks for, within the server's guardrails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraints {
    /// A run duration limit below the server's guardrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_seconds: Option<u32>,
    /// A token budget passed on to executors that can honour it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u64>,
}

impl Constraints {
    /// Whether no constraint is set.
    pub fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

/// What the caller expects back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedOutput {
    /// The artifact types the caller wants, e.g. `plan`, `patch`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_types: Vec<ArtifactType>,
    /// A free-text description of the expected result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A valid TaskSpec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// What kind of work.
    pub task_type: TaskType,
    /// The prompt and workspace.
    pub input: TaskInput,
    /// Limits within the guardrails.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    /// What to hand back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_output: Option<ExpectedOutput>,
}

/// The body of `POST /tasks`: a workspace and a TaskSpec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// The workspace the task belongs to.
    pub workspace_id: WorkspaceId,
    /// The validated spec.
    pub spec: TaskSpec,
}

const SPEC_FIELDS: [&str; 4] = ["taskType", "input", "constraints", "expectedOutput"];

impl NewTask {
    /// Parses a `POST /tasks` body, reporting every bad or missing field.
    pub fn parse(body: &Value) -> Result<NewTask, ValidationErrors> {
        let mut errors = Collector::new();
        let Some(map) = errors.object("", body) else {
            return errors.finish(None);
        };
        let mut allowed = SPEC_FIELDS.to_vec();
        allowed.push("workspaceId");
        errors.reject_unknown("", map, &allowed);
        let workspace_id = errors
            .string("", map, "workspaceId", true)
            .and_then(|text| errors.check("workspaceId", text.parse::<WorkspaceId>()));
        let spec = parse_spec_fields(&mut errors, map);
        let task = workspace_id
            .zip(spec)
            .map(|(workspace_id, spec)| NewTask { workspace_id, spec });
        errors.finish(task)
    }
}

impl TaskSpec {
    /// Parses a TaskSpec document, reporting every bad or missing field.
    pub fn parse(body: &Value) -> Result<TaskSpec, ValidationErrors> {
        let mut errors = Collector::new();
        let spec = errors.object("", body).and_then(|map| {
            errors.reject_unknown("", map, &SPEC_FIELDS);
            parse_spec_fields(&mut errors, map)
        });
        errors.finish(spec)
    }
}

fn parse_spec_fields(errors: &mut Collector, map: &Map<String, Value>) -> Option<TaskSpec> {
    let task_type = errors
        .string("", map, "taskType", true)
        .and_then(|text| errors.check("taskType", text.parse::<TaskType>()));
    let input = match map.get("input") {
        None | Some(Value::Null) => {
            errors.push("input", "is required");
            errors.push("input.prompt", "is required");
            None
        }
        Some(value) => parse_input(errors, value),
    };
    let constraints = match map.get("constraints") {
        None | Some(Value::Null) => Some(Constraints::default()),
        Some(value) => parse_constraints(errors, value),
    };
    let expected_output = match map.get("expectedOutput") {
        None | Some(Value::Null) => Some(None),
        Some(value) => parse_expected_output(errors, value).map(Some),
    };
    Some(TaskSpec {
        task_type: task_type?,
        input: input?,
        constraints: constraints?,
        expected_output: expected_output?,
    })
}

fn parse_input(errors: &mut Collector, value: &Value) -> Option<TaskInput> {
    let map = errors.object("input", value)?;
    errors.reject_unknown("input", map, &["prompt", "archiveId", "source"]);
    let prompt = errors
        .string("input", map, "prompt", true)
        .and_then(|text| errors.check("input.prompt", Prompt::try_from(text.to_owned())));
    let archive_id = match errors.string("input", map, "archiveId", false) {
        None => Some(None),
        Some(text) => errors
            .check("input.archiveId", text.parse::<ArchiveId>())
            .map(Some),
    };
    let source = match map.get("source") {
        None | Some(Value::Null) => Some(None),
        Some(value) => parse_source(errors, value).map(Some),
    };
    Some(TaskInput {
        prompt: prompt?,
        archive_id: archive_id?,
        source: source?,
    })
}

fn parse_source(errors: &mut Collector, value: &Value) -> Option<SourceRevision> {
    let map = errors.object("input.source", value)?;
    errors.reject_unknown("input.source", map, &["commit", "dirty"]);
    let commit = errors
        .string("input.source", map, "commit", true)
        .and_then(|text| errors.check("input.source.commit", text.parse::<CommitId>()));
    let dirty = match map.get("dirty") {
        Some(Value::Bool(dirty)) => Some(*dirty),
        None | Some(Value::Null) => {
            errors.push("input.source.dirty", "is required");
            None
        }
        Some(other) => {
            errors.push(
                "input.source.dirty",
                format!("must be a boolean, found {}", kind(other)),
            );
            None
        }
    };
    Some(SourceRevision {
        commit: commit?,
        dirty: dirty?,
    })
}

fn parse_constraints(errors: &mut Collector, value: &Value) -> Option<Constraints> {
    let map = errors.object("constraints", value)?;
    errors.reject_unknown("constraints", map, &["maxRunSeconds", "tokenBudget"]);
    let before = errors.len();
    let max_run_seconds = match errors.unsigned("constraints", map, "maxRunSeconds") {
        Some(0) => {
            errors.push("constraints.maxRunSeconds", "must be at least 1");
            None
        }
        Some(n) => match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push("constraints.maxRunSeconds", "is too large");
                None
            }
        },
        None => None,
    };
    // An `int64` in the API's document: no larger than that format allows.
    let token_budget = match errors.unsigned("constraints", map, "tokenBudget") {
        Some(budget) if budget > MAX_TOKEN_BUDGET => {
            errors.push(
                "constraints.tokenBudget",
                format!("must be at most {MAX_TOKEN_BUDGET}"),
            );
            None
        }
        budget => budget,
    };
    (errors.len() == before).then_some(Constraints {
        max_run_seconds,
        token_budget,
    })
}

fn parse_expected_output(errors: &mut Collector, value: &Value) -> Option<ExpectedOutput> {
    let map = errors.object("expectedOutput", value)?;
    errors.reject_unknown("expectedOutput", map, &["artifactTypes", "description"]);
    let description = errors
        .string("expectedOutput", map, "description", false)
        .map(str::to_owned);
    let mut ok = true;
    let mut artifact_types = Vec::new();
    match map.get("artifactTypes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("expectedOutput.artifactTypes[{i}]");
                let parsed = match item {
                    Value::String(text) => errors.check(&field, text.parse::<ArtifactType>()),
                    other => {
                        errors.push(field, format!("must be a string, found {}", kind(other)));
                        None
                    }
                };
                match parsed {
                    Some(t) => artifact_types.push(t),
                    None => ok = false,
                }
            }
        }
        Some(other) => {
            ok = false;
            errors.push(
                join("expectedOutput", "artifactTypes"),
                format!("must be an array, found {}", kind(other)),
            );
        }
    }
    ok.then_some(ExpectedOutput {
        artifact_types,
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WS: &str = "ws_01ARZ3NDEKTSV4RRFFQ69G5FAV";

    #[test]
    fn a_minimal_task_parses() {
        let task = NewTask::parse(&json!({
            "workspaceId": WS, "taskType": "spec.generate", "input": {"prompt": "plan it"}
        }))
        .unwrap();
        assert_eq!(task.spec.task_type, TaskType::SpecGenerate);
        assert_eq!(task.spec.input.prompt.as_str(), "plan it");
        assert!(task.spec.constraints.is_empty());
    }

    #[test]
    fn an_unknown_task_type_names_the_allowed_ones() {
        let errors =
            TaskSpec::parse(&json!({"taskType": "foo", "input": {"prompt": "x"}})).unwrap_err();
        assert_eq!(errors.errors().len(), 1);
        assert_eq!(errors.errors()[0].field, "taskType");
        assert_eq!(
            errors.errors()[0].message,
            "taskType \"foo\" is not one of spec.generate, code.change, doc.write, deploy.run"
        );
    }

    #[test]
    fn a_token_budget_is_at_most_the_largest_int64() {
        let spec = |budget: u64| {
            TaskSpec::parse(&json!({
                "taskType": "spec.generate",
                "input": {"prompt": "x"},
                "constraints": {"tokenBudget": budget}
            }))
        };
        let largest = spec(MAX_TOKEN_BUDGET).unwrap();
        assert_eq!(largest.constraints.token_budget, Some(MAX_TOKEN_BUDGET));
        let errors = spec(MAX_TOKEN_BUDGET + 1).unwrap_err();
        assert_eq!(errors.errors().len(), 1);
        assert_eq!(errors.errors()[0].field, "constraints.tokenBudget");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = NewTask::parse(&json!({
            "workspaceId": "nope",
            "input": {"prompt": "   ", "archiveId": 3},
            "constraints": {"maxRunSeconds": 0, "tokenBudget": -1},
            "expectedOutput": {"artifactTypes": ["plan", "zip"]},
            "extra": true
        }))
        .unwrap_err();
        for field in [
            "workspaceId",
            "taskType",
            "input.prompt",
            "input.archiveId",
            "constraints.maxRunSeconds",
            "constraints.tokenBudget",
            "expectedOutput.artifactTypes[1]",
            "extra",
        ] {
            assert!(errors.mentions(field), "{field} missing from {errors}");
        }
    }

    #[test]
    fn a_prompt_with_a_nul_or_an_escape_is_refused_naming_the_character() {
        for (text, code, at) in [
            ("a\0b", 0, 1),
            ("red \u{1b}[31m", 0x1b, 4),
            ("\u{7f}", 0x7f, 0),
        ] {
            let errors =
                TaskSpec::parse(&json!({"taskType": "doc.write", "input": {"prompt": text}}))
                    .unwrap_err();
            assert_eq!(errors.errors()[0].field, "input.prompt");
            assert_eq!(
                errors.errors()[0].message,
                format!(
                    "contains the control character U+{code:04X} at byte {at}; only tab, newline and carriage return are allowed"
                )
            );
        }
    }

    #[test]
    fn a_prompt_keeps_tabs_and_line_ends() {
        let prompt = Prompt::try_from("one\ttwo\r\nthree\n".to_owned()).unwrap();
        assert_eq!(prompt.as_str(), "one\ttwo\r\nthree\n");
    }

    #[test]
    fn a_source_revision_is_kept_and_a_bad_one_is_refused_naming_each_field() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let spec = TaskSpec::parse(&json!({"taskType": "code.change", "input": {
            "prompt": "fix", "source": {"commit": commit, "dirty": true}}}))
        .unwrap();
        let source = spec.input.source.clone().unwrap();
        assert_eq!(source.commit.as_str(), commit);
        assert!(source.dirty);
        let stored = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            stored["input"]["source"],
            json!({"commit": commit, "dirty": true})
        );

        let errors = TaskSpec::parse(&json!({"taskType": "code.change", "input": {
            "prompt": "fix", "source": {"commit": "HEAD", "dirty": "no", "path": "x"}}}))
        .unwrap_err();
        for field in [
            "input.source.commit",
            "input.source.dirty",
            "input.source.path",
        ] {
            assert!(errors.mentions(field), "{field} missing from {errors}");
        }
        assert!(commit.to_uppercase().parse::<CommitId>().is_err());
        assert!(commit[..39].parse::<CommitId>().is_err());
    }

    #[test]
    fn a_missing_input_reports_the_prompt_too() {
        let errors = TaskSpec::parse(&json!({"taskType": "doc.write"})).unwrap_err();
        assert!(errors.mentions("input.prompt"));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        let errors = TaskSpec::parse(&json!([1, 2])).unwrap_err();
        assert_eq!(
            errors.errors()[0].message,
            "must be an object, found an array"
        );
    }

    #[test]
    fn a_full_spec_round_trips_through_json() {
        let spec = TaskSpec::parse(&json!({
            "taskType": "code.change",
            "input": {"prompt": "fix", "archiveId": "arc_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
            "constraints": {"maxRunSeconds": 60, "tokenBudget": 1000},
            "expectedOutput": {"artifactTypes": ["patch"], "description": "a diff"}
        }))
        .unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(TaskSpec::parse(&json).unwrap(), spec);
        let back: TaskSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
    }
}
