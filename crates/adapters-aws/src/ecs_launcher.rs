//! [`EcsLauncher`]: the run launcher port on ECS/Fargate — one single-job worker task per
//! leased run (`RunTask`), its container told which run and lease to execute.
//!
//! The task definition carries the worker image, its role and its log group; the
//! launcher overrides only the container's command (`tlao worker --run ID --lease ID`,
//! after the configured prefix) and adds environment variables (the API URL, ...). The
//! worker token should come from the task definition's secrets, not from here, so it
//! never shows in `DescribeTasks`.
//!
//! When a run is over without its worker (lost, or the server stopping), the launcher
//! stops the task it started for it (`StopTask`); ECS then ends the whole task, every
//! process in its containers included.
//!
//! The alternative needs no launcher at all: an ECS service running N copies of
//! `tlao worker --once`, each leasing one run over HTTP, exiting, and replaced by ECS
//! with a fresh container (see docs/deploy-aws.md).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType,
    NetworkConfiguration, TaskOverride,
};
use tlao_domain::RunId;
use tlao_ports::{Launch, LaunchError, RunLauncher, StopError, WorkerExit};

use crate::connection::AwsConnection;
use crate::sdk_error::{Failure, classify};

/// What tags the tasks this launcher starts (`startedBy`, at most 36 characters).
pub const STARTED_BY: &str = "tlao-dispatcher";
/// Why the launcher stops a task (`StopTask`'s reason, shown in its `stoppedReason`).
pub const STOP_REASON: &str = "stopped by the tlao dispatcher: its run is over";

/// Where and how worker tasks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsLauncherConfig {
    /// The cluster's name or ARN.
    pub cluster: String,
    /// The worker task definition (`family`, `family:revision` or ARN).
    pub task_definition: String,
    /// The worker container's name in the task definition.
    pub container: String,
    /// The command before `--run ID --lease ID` (e.g. `["worker"]` when the image's
    /// entry point is `tlao`).
    pub command_prefix: Vec<String>,
    /// Subnets of the tasks' network interfaces (awsvpc, required by Fargate).
    pub subnets: Vec<String>,
    /// Security groups of the tasks' network interfaces.
    pub security_groups: Vec<String>,
    /// Whether tasks get a public IP (public subnets without a NAT gateway need one to
    /// reach the API and S3).
    pub assign_public_ip: bool,
    /// Environment variables added to the container (`TLAO_API_URL`, ...).
    pub env: Vec<(String, String)>,
    /// The most tasks running at once.
    pub max_tasks: usize,
    /// How often a started task's status is checked, to notice it stopped.
    pub poll_interval: Duration,
}

impl EcsLauncherConfig {
    /// A configuration with the defaults: command prefix `worker`, container `worker`,
    /// no public IP, at most 4 tasks, checked every 15 seconds.
    pub fn new(cluster: impl Into<String>, task_definition: impl Into<String>) -> Self {
        EcsLauncherConfig {
            cluster: cluster.into(),
            task_definition: task_definition.into(),
            container: "worker".into(),
            command_prefix: vec!["worker".into()],
            subnets: Vec::new(),
            security_groups: Vec::new(),
            assign_public_ip: false,
            env: Vec::new(),
            max_tasks: 4,
            poll_interval: Duration::from_secs(15),
        }
    }
}

/// Starts one Fargate task per run.
#[derive(Debug, Clone)]
pub struct EcsLauncher {
    client: Client,
    config: Arc<EcsLauncherConfig>,
    running: Arc<AtomicUsize>,
    /// The tasks started and not yet seen stopped, by run.
    tasks: Arc<Mutex<HashMap<RunId, String>>>,
}

/// A reserved task slot, released when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EcsLauncher {
    /// A launcher over `connection`.
    pub async fn connect(connection: &AwsConnection, config: EcsLauncherConfig) -> EcsLauncher {
        let shared = connection.sdk_config().await;
        EcsLauncher {
            client: Client::new(&shared),
            config: Arc::new(EcsLauncherConfig {
                max_tasks: config.max_tasks.max(1),
                ..config
            }),
            running: Arc::new(AtomicUsize::new(0)),
            tasks: Arc::default(),
        }
    }

    /// Asks ECS to stop `task_arn`.
    async fn stop_task(&self, task_arn: &str) -> Result<(), StopError> {
        self.client
            .stop_task()
            .cluster(&self.config.cluster)
            .task(task_arn)
            .reason(STOP_REASON)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match classify("StopTask", e) {
                Failure::Transient(e) => StopError::Transient(format!("{e:#}")),
                Failure::Service(f) => StopError::Failed(f.to_string()),
                Failure::Unexpected(e) => StopError::Failed(format!("{e:#}")),
            })
    }

    /// Tasks started and not yet seen stopped.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The container command for a launch.
    fn command(&self, launch: &Launch) -> Vec<String> {
        let mut command = self.config.command_prefix.clone();
        command.extend([
            "--run".to_owned(),
            launch.run_id.to_string(),
            "--lease".to_owned(),
            launch.lease_id.to_string(),
        ]);
        command
    }

    fn overrides(&self, launch: &Launch) -> TaskOverride {
        let environment = self
            .config
            .env
            .iter()
            .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
            .collect();
        TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(&self.config.container)
                    .set_command(Some(self.command(launch)))
                    .set_environment(Some(environment))
                    .build(),
            )
            .build()
    }

    fn network(&self) -> Result<Option<NetworkConfiguration>, LaunchError> {
        if self.config.subnets.is_empty() {
            return Ok(None);
        }
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(self.config.subnets.clone()))
            .set_security_groups(Some(self.config.security_groups.clone()))
            .assign_public_ip(if self.config.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|e| LaunchError::Failed(format!("invalid network configuration: {e}")))?;
        Ok(Some(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        ))
    }
}

/// Polls a task until ECS reports it stopped, and says how it ended.
async fn await_stop(client: Client, cluster: String, task_arn: String, every: Duration) -> String {
    loop {
        tokio::time::sleep(every).await;
        let described = client
            .describe_tasks()
            .cluster(&cluster)
            .tasks(&task_arn)
            .send()
            .await;
        let output = match described {
            Ok(output) => output,
            Err(e) => {
                // The reaper's heartbeat timeout covers a task we can no longer see.
                let error = match classify("DescribeTasks", e) {
                    Failure::Service(f) => f.describe(),
                    Failure::Transient(e) | Failure::Unexpected(e) => e,
                };
                tracing::warn!(task = %task_arn, error = %error, operation = "launcher.describe", "could not check a worker task");
                continue;
            }
        };
        if let Some(task) = output.tasks().first() {
            if task.last_status() == Some("STOPPED") {
                let exit = task
                    .containers()
                    .iter()
                    .find_map(|c| c.exit_code())
                    .map(|code| format!(", exit code {code}"))
                    .unwrap_or_default();
                return format!(
                    "task {task_arn} stopped: {}{exit}",
                    task.stopped_reason().unwrap_or("no reason given")
                );
            }
        } else if !output.failures().is_empty() {
            return format!("task {task_arn} is gone ({:?})", output.failures());
        }
    }
}

#[async_trait]
impl RunLauncher for EcsLauncher {
    fn capacity(&self) -> usize {
        self.config.max_tasks.saturating_sub(self.running())
    }

    async fn launch(&self, launch: &Launch) -> Result<WorkerExit, LaunchError> {
        let previous = self.running.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(self.running.clone());
        if previous >= self.config.max_tasks {
            return Err(LaunchError::Busy(format!(
                "{} worker tasks are running",
                self.config.max_tasks
            )));
        }
        let started = self
            .client
            .run_task()
            .cluster(&self.config.cluster)
            .task_definition(&self.config.task_definition)
            .launch_type(LaunchType::Fargate)
            .count(1)
            .started_by(STARTED_BY)
            .set_network_configuration(self.network()?)
            .overrides(self.overrides(launch))
            .send()
            .await
            .map_err(|e| match classify("RunTask", e) {
                Failure::Transient(e) => LaunchError::Busy(format!("{e:#}")),
                Failure::Service(f) => LaunchError::Failed(f.to_string()),
                Failure::Unexpected(e) => LaunchError::Failed(format!("{e:#}")),
            })?;
        let Some(task_arn) = started
            .tasks()
            .first()
            .and_then(|task| task.task_arn())
            .map(str::to_owned)
        else {
            let reasons: Vec<String> = started
                .failures()
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.reason().unwrap_or("unknown"),
                        f.detail().unwrap_or("")
                    )
                })
                .collect();
            return Err(LaunchError::Failed(format!(
                "ECS started no task: {}",
                reasons.join("; ")
            )));
        };
        tracing::info!(run_id = %launch.run_id, task = %task_arn, operation = "launcher.launch", "started a worker task");
        lock(&self.tasks).insert(launch.run_id.clone(), task_arn.clone());
        let client = self.client.clone();
        let cluster = self.config.cluster.clone();
        let every = self.config.poll_interval;
        let tasks = self.tasks.clone();
        let run_id = launch.run_id.clone();
        Ok(Box::pin(async move {
            let how = await_stop(client, cluster, task_arn.clone(), every).await;
            let mut tasks = lock(&tasks);
            if tasks.get(&run_id) == Some(&task_arn) {
                tasks.remove(&run_id);
            }
            drop(tasks);
            drop(slot);
            how
        }))
    }

    async fn stop(&self, run_id: &RunId) -> Result<bool, StopError> {
        let Some(task_arn) = lock(&self.tasks).get(run_id).cloned() else {
            return Ok(false);
        };
        self.stop_task(&task_arn).await?;
        tracing::info!(run_id = %run_id, task = %task_arn, operation = "launcher.stop", "asked ECS to stop a worker task");
        Ok(true)
    }

    async fn stop_all(&self) -> Result<usize, StopError> {
        let tasks: Vec<String> = lock(&self.tasks).values().cloned().collect();
        let mut stopped = 0;
        let mut first_error = None;
        for task_arn in tasks {
            match self.stop_task(&task_arn).await {
                Ok(()) => stopped += 1,
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(stopped),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
