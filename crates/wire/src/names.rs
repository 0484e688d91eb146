//! The wire's enumerations: each the API's name for a domain enumeration, converted both
//! ways by exhaustive matches (a variant added to the domain does not compile until the
//! wire names it), with its text written once, here, for serde, the OpenAPI document and
//! [`std::fmt::Display`].

use std::fmt;

use serde::{Deserialize, Serialize};
use tlao_domain::{
    ArtifactStatus, ArtifactType, LogStream, PlanStatus, RunErrorCode, RunStatus, TaskType,
    ToolKind, ToolStatus,
};

/// Declares a wire enumeration mirroring a domain one: `Name <=> Domain { Variant = "text" }`.
macro_rules! wire_name {
    (
        $(#[$meta:meta])*
        $name:ident <=> $domain:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Its text on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$domain> for $name {
            fn from(value: $domain) -> Self {
                match value {
                    $($domain::$variant => $name::$variant),+
                }
            }
        }

        impl From<$name> for $domain {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => $domain::$variant),+
                }
            }
        }
    };
}

wire_name! {
    /// A task type.
    TaskTypeName <=> TaskType {
        /// Generate a specification or execution plan.
        SpecGenerate = "spec.generate",
        /// Change code in the workspace.
        CodeChange = "code.change",
        /// Write documentation.
        DocWrite = "doc.write",
        /// Deploy infrastructure.
        DeployRun = "deploy.run",
    }
}

wire_name! {
    /// Where a run is in its life.
    RunStatusName <=> RunStatus {
        /// Waiting for a worker.
        Queued = "queued",
        /// A worker is executing it.
        Running = "running",
        /// The executor finished successfully.
        Completed = "completed",
        /// The executor, the worker or the platform failed.
        Failed = "failed",
        /// It ran past its deadline.
        TimedOut = "timed_out",
        /// Somebody cancelled it.
        Cancelled = "cancelled",
    }
}

impl RunStatusName {
    /// Whether the run is over; a terminal status never changes again.
    pub fn is_terminal(self) -> bool {
        RunStatus::from(self).is_terminal()
    }
}

wire_name! {
    /// Why a run failed, for programs.
    RunErrorCodeName <=> RunErrorCode {
        /// The executor exited with an error.
        ExecutorFailed = "executor_failed",
        /// The executor could not be started or is not set up.
        ExecutorUnavailable = "executor_unavailable",
        /// The worker stopped sending heartbeats.
        WorkerLost = "worker_lost",
        /// No worker leased the run before its time in the queue ran out.
        QueueTimeout = "queue_timeout",
        /// The workspace archive could not be fetched or was refused.
        InvalidArchive = "invalid_archive",
        /// An artifact could not be stored.
        UploadFailed = "upload_failed",
        /// Anything else.
        Internal = "internal",
    }
}

wire_name! {
    /// What an artifact is.
    ArtifactTypeName <=> ArtifactType {
        /// An execution plan.
        Plan = "plan",
        /// A unified diff of the workspace.
        Patch = "patch",
        /// A document the agent wrote.
        Document = "document",
        /// The agent's transcript.
        Transcript = "transcript",
        /// Any other file.
        File = "file",
    }
}

wire_name! {
    /// Where an artifact's bytes are.
    ArtifactStatusName <=> ArtifactStatus {
        /// Not stored yet.
        Pending = "pending",
        /// Stored; downloadable.
        Available = "available",
        /// Every attempt to store the bytes failed.
        UploadFailed = "upload_failed",
    }
}

wire_name! {
    /// Which output a log line came from.
    LogStreamName <=> LogStream {
        /// The executor's standard output.
        Stdout = "stdout",
        /// The executor's standard error.
        Stderr = "stderr",
        /// The worker itself (setup, artifact upload, ...).
        System = "system",
    }
}

/// The kinds of executor built into the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKindName {
    /// The Kiro CLI: `config = {"binary", "agent"?, "extraArgs"?, "preflight"?, "maxRunSeconds"?, "harness"?}`
    /// (`harness`: `"v2"`, the default, or `"v3"`; always passed to kiro-cli explicitly).
    Kiro,
    /// Any CLI from an argv template: `config = {"command", "env"?, "promptVia"?, "maxRunSeconds"?}`.
    Command,
    /// An agent speaking the Agent Client Protocol: `config = {"command", "permission"?,
    /// "mode"?, "model"?, "env"?, "maxRunSeconds"?}`.
    Acp,
    /// An agent CLI printing a JSON event stream: `config = {"format", "command"?, "env"?, "maxRunSeconds"?}`.
    Stream,
}

impl ExecutorKindName {
    /// Its text on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKindName::Kiro => "kiro",
            ExecutorKindName::Command => "command",
            ExecutorKindName::Acp => "acp",
            ExecutorKindName::Stream => "stream",
        }
    }
}

impl fmt::Display for ExecutorKindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The wire's text of every value is the domain's serde text today; the test pins
    /// it so a change on either side is a decision, not an accident.
    fn same_text<W: Serialize, D: Serialize>(wire: W, domain: D) {
        assert_eq!(
            serde_json::to_value(wire).unwrap(),
            serde_json::to_value(domain).unwrap()
        );
    }

    #[test]
    fn every_name_round_trips_and_matches_the_domain_text() {
        for &name in TaskTypeName::ALL {
            assert_eq!(TaskTypeName::from(TaskType::from(name)), name);
            same_text(name, TaskType::from(name));
            assert_eq!(serde_json::to_value(name).unwrap(), name.as_str());
        }
        for &name in RunStatusName::ALL {
            assert_eq!(RunStatusName::from(RunStatus::from(name)), name);
            same_text(name, RunStatus::from(name));
        }
        for &name in RunErrorCodeName::ALL {
            same_text(name, RunErrorCode::from(name));
        }
        for &name in ArtifactTypeName::ALL {
            same_text(name, ArtifactType::from(name));
        }
        for &name in ArtifactStatusName::ALL {
            same_text(name, ArtifactStatus::from(name));
        }
        for &name in LogStreamName::ALL {
            same_text(name, LogStream::from(name));
        }
    }

    #[test]
    fn only_queued_and_running_are_not_terminal() {
        let open: Vec<_> = RunStatusName::ALL
            .iter()
            .filter(|s| !s.is_terminal())
            .collect();
        assert_eq!(open, [&RunStatusName::Queued, &RunStatusName::Running]);
    }
}

#[cfg(all(test, feature = "openapi"))]
mod schema_tests {
    #![allow(clippy::unwrap_used)]

    use utoipa::PartialSchema;

    use super::*;

    fn enum_values<T: PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).unwrap()["enum"].clone()
    }

    #[test]
    fn the_document_lists_the_wire_text_of_every_name() {
        assert_eq!(
            enum_values::<RunStatusName>(),
            serde_json::json!([
                "queued",
                "running",
                "completed",
                "failed",
                "timed_out",
                "cancelled"
            ])
        );
        assert_eq!(
            enum_values::<TaskTypeName>(),
            serde_json::json!(["spec.generate", "code.change", "doc.write", "deploy.run"])
        );
        assert_eq!(
            enum_values::<ArtifactStatusName>(),
            serde_json::json!(["pending", "available", "upload_failed"])
        );
    }
}

wire_name! {
    /// What kind of tool an agent's call uses.
    ToolKindName <=> ToolKind {
        /// Changes files.
        Edit = "edit",
        /// Reads files.
        Read = "read",
        /// Runs a command.
        Execute = "execute",
        /// Searches files or the web.
        Search = "search",
        /// Fetches a URL.
        Fetch = "fetch",
        /// Anything else.
        Other = "other",
    }
}

wire_name! {
    /// Where an agent's tool call is.
    ToolStatusName <=> ToolStatus {
        /// Announced, not started.
        Pending = "pending",
        /// Running.
        InProgress = "in_progress",
        /// Finished successfully.
        Completed = "completed",
        /// Failed, or was refused.
        Failed = "failed",
    }
}

wire_name! {
    /// Where an entry of an agent's plan is.
    PlanStatusName <=> PlanStatus {
        /// Not started.
        Pending = "pending",
        /// Being done.
        InProgress = "in_progress",
        /// Done.
        Completed = "completed",
    }
}
