//! The `kiro` executor: runs `kiro-cli chat --no-interactive` headless.
//!
//! `kiro-cli chat --no-interactive --trust-all-tools --wrap never [--agent NAME]
//! [extraArgs…] <prompt>` runs in the working directory with `TLAO_OUTPUT_DIR` set to
//! the output directory (and `KIRO_API_KEY` passed through). Headless kiro-cli prints a
//! human transcript with ANSI colours and no JSON: the lines are cleaned, and the
//! `▸ Credits: 0.42 • Time: 5s` line it prints on stderr becomes the run's usage
//! (unmeasured when absent, never a fake zero). Its documented exit codes become clear
//! errors: 1 a failure, 3 an MCP server that failed to start, 4 an agent not found.
//! With `preflight`, `kiro-cli whoami` runs first, so a worker that is not logged in
//! fails the run with instructions rather than a confusing transcript.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tlao_domain::{
    ExecutionContext, ExecutionOutcome, ExecutionStatus, Executor, KiroConfig, LogStream, RunError,
    RunErrorCode, TaskSpec, Usage,
};

use crate::confine::Confinement;
use crate::outcome::{exit_failure, failed_early, outcome, system, unavailable};
use crate::process::{GroupCommand, run_in_group};
use crate::prompt::build_prompt;

/// How long `kiro-cli whoami` may take.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(60);
/// What to tell an operator whose worker has no kiro-cli.
const INSTALL_HINT: &str =
    "install kiro-cli on this worker, or set the executor's config.binary to its full path";

/// Runs TaskSpecs with the Kiro CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KiroExecutor {
    config: KiroConfig,
    confinement: Option<Arc<Confinement>>,
}

impl KiroExecutor {
    /// An executor with the registry record's configuration.
    pub fn new(config: KiroConfig) -> KiroExecutor {
        KiroExecutor {
            config,
            confinement: None,
        }
    }

    /// The same executor, running kiro-cli in `confinement` (its run's sandbox).
    pub fn confined(mut self, confinement: Arc<Confinement>) -> KiroExecutor {
        self.confinement = Some(confinement);
        self
    }

    /// The `kiro-cli chat` command for `prompt` (written to its standard input).
    pub fn chat_command(&self, prompt: &str, context: &ExecutionContext<'_>) -> GroupCommand {
        let mut command = GroupCommand::new(&self.config.binary, context.workdir);
        let mut args: Vec<OsString> = [
            "chat",
            "--no-interactive",
            "--trust-all-tools",
            "--wrap",
            "never",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        if let Some(agent) = &self.config.agent {
            args.push("--agent".into());
            args.push(agent.into());
        }
        args.extend(self.config.extra_args.iter().map(OsString::from));
        // The prompt goes to standard input (kiro-cli reads it there when no argument
        // is given), not the command line, where every local user could read it in
        // `ps` and where its length is bounded.
        command.stdin = Some(prompt.to_owned());
        command.args = args;
        command.env = self.env(context);
        command.confinement = self.confinement.clone();
        command
    }

    fn env(
        &self,
        context: &ExecutionContext<'_>,
    ) -> std::collections::BTreeMap<OsString, OsString> {
        let mut env = std::collections::BTreeMap::new();
        env.insert(
            "TLAO_OUTPUT_DIR".into(),
            context.outdir.as_os_str().to_owned(),
        );
        if let Some(key) = std::env::var_os("KIRO_API_KEY") {
            env.insert("KIRO_API_KEY".into(), key);
        }
        env
    }

    /// Runs `kiro-cli whoami`; an error when kiro-cli is missing or not logged in.
    async fn preflight(&self, context: &ExecutionContext<'_>) -> Result<(), RunError> {
        let mut command = GroupCommand::new(&self.config.binary, context.workdir);
        command.args = vec!["whoami".into()];
        command.env = self.env(context);
        command.confinement = self.confinement.clone();
        let mut ignore = |_: LogStream, _: &str| {};
        let run = run_in_group(&command, context.events, &mut ignore);
        let finished = match tokio::time::timeout(PREFLIGHT_TIMEOUT, run).await {
            Err(_) => {
                return Err(RunError {
                    code: RunErrorCode::ExecutorUnavailable,
                    message: format!(
                        "`{} whoami` did not answer within {} s",
                        self.config.binary,
                        PREFLIGHT_TIMEOUT.as_secs()
                    ),
                    exit_code: None,
                });
            }
            Ok(Err(error)) => return Err(unavailable(&self.config.binary, &error, INSTALL_HINT)),
            Ok(Ok(finished)) => finished,
        };
        match finished.exit_code() {
            Some(0) => Ok(()),
            Some(1) => Err(RunError {
                code: RunErrorCode::ExecutorUnavailable,
                message: format!(
                    "kiro-cli is not logged in on this worker: run `{} login` on the worker (or give it a KIRO_API_KEY) and try again",
                    self.config.binary
                ),
                exit_code: Some(1),
            }),
            _ => {
                let mut error = exit_failure(
                    &format!("`{} whoami` failed", self.config.binary),
                    &finished,
                    &finished.stderr_text(|_| false),
                );
                error.code = RunErrorCode::ExecutorUnavailable;
                Err(error)
            }
        }
    }
}

#[async_trait]
impl Executor for KiroExecutor {
    async fn execute(&self, spec: &TaskSpec, context: ExecutionContext<'_>) -> ExecutionOutcome {
        if self.config.preflight {
            if let Err(error) = self.preflight(&context).await {
                return failed_early(error, context.outdir, context.events);
            }
            system(context.events, "kiro-cli is logged in".to_owned());
        }
        let prompt = build_prompt(spec, context.outdir);
        let command = self.chat_command(&prompt, &context);
        let mut usage_line: Option<String> = None;
        let mut observe = |stream: LogStream, line: &str| {
            if stream == LogStream::Stderr && parse_usage(line).is_some() {
                usage_line = Some(line.to_owned());
            }
        };
        let result = run_in_group(&command, context.events, &mut observe).await;
        let finished = match result {
            Ok(finished) => finished,
            Err(error) => {
                return failed_early(
                    unavailable(&self.config.binary, &error, INSTALL_HINT),
                    context.outdir,
                    context.events,
                );
            }
        };
        let usage = usage_line
            .as_deref()
            .and_then(parse_usage)
            .unwrap_or(Usage::Unmeasured);
        let status = if finished.status.success() {
            ExecutionStatus::Completed
        } else {
            let tail = finished.stderr_text(|line| parse_usage(line).is_some());
            let what = match finished.exit_code() {
                Some(code) => exit_meaning(code, self.config.agent.as_deref()),
                None => "kiro-cli was killed".to_owned(),
            };
            ExecutionStatus::Failed(exit_failure(&what, &finished, &tail))
        };
        outcome(
            status,
            finished.transcript,
            usage,
            context.outdir,
            context.events,
        )
    }
}

/// What a kiro-cli exit code means.
pub fn exit_meaning(code: i32, agent: Option<&str>) -> String {
    match code {
        1 => "kiro-cli failed".to_owned(),
        3 => "kiro-cli failed: an MCP server failed to start".to_owned(),
        4 => match agent {
            Some(agent) => format!("kiro-cli failed: the requested agent {agent:?} was not found"),
            None => "kiro-cli failed: the requested agent was not found".to_owned(),
        },
        other => format!("kiro-cli exited with the undocumented code {other}"),
    }
}

/// The usage a `▸ Credits: 0.42 • Time: 5s` line reports; `None` for other lines.
pub fn parse_usage(line: &str) -> Option<Usage> {
    let (_, after) = line.split_once("Credits:")?;
    let credits: String = after
        .trim_start()
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '•')
        .collect();
    Some(Usage::reported(
        (!credits.is_empty()).then_some(credits),
        line.trim(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credits_line_is_parsed() {
        assert_eq!(
            parse_usage("▸ Credits: 0.42 • Time: 1s"),
            Some(Usage::reported(
                Some("0.42".into()),
                "▸ Credits: 0.42 • Time: 1s"
            ))
        );
        assert_eq!(parse_usage("all good"), None);
    }

    #[test]
    fn exit_codes_have_meanings() {
        assert_eq!(
            exit_meaning(3, None),
            "kiro-cli failed: an MCP server failed to start"
        );
        assert!(exit_meaning(4, Some("x")).contains("agent \"x\" was not found"));
    }
}
