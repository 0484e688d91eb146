//! The backlog as a CloudWatch metric: every `metrics.emf_interval_seconds`, `tlao serve`
//! writes one line of CloudWatch embedded metric format (EMF) to standard output with
//! the runs queued and running. On ECS the `awslogs` driver sends each line to
//! CloudWatch Logs as one event, and CloudWatch extracts the metrics from it; the
//! deployment scales its workers on them (deploy/aws/template.yaml).
//!
//! The line is printed as it is, outside the logger: EMF must be the whole log event.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tlao_orchestrator::{Backlog, Core};

use crate::settings::MetricsSettings;

/// The metric of the runs waiting in the queues.
pub const QUEUED_RUNS: &str = "QueuedRuns";
/// The metric of the runs being executed.
pub const RUNNING_RUNS: &str = "RunningRuns";
/// The dimension naming the deployment (its value: `metrics.deployment`).
pub const DEPLOYMENT_DIMENSION: &str = "Deployment";

/// One EMF document: `backlog` at `unix_millis`, in `namespace`, for `deployment`.
pub fn emf_line(settings: &MetricsSettings, backlog: Backlog, unix_millis: i64) -> Value {
    json!({
        "_aws": {
            "Timestamp": unix_millis,
            "CloudWatchMetrics": [{
                "Namespace": settings.namespace,
                "Dimensions": [[DEPLOYMENT_DIMENSION]],
                "Metrics": [
                    {"Name": QUEUED_RUNS, "Unit": "Count", "StorageResolution": 60},
                    {"Name": RUNNING_RUNS, "Unit": "Count", "StorageResolution": 60}
                ]
            }]
        },
        DEPLOYMENT_DIMENSION: settings.deployment,
        QUEUED_RUNS: backlog.queued,
        RUNNING_RUNS: backlog.running
    })
}

/// Publishes the backlog every `settings.emf_interval_seconds` until the task is
/// dropped; a failed measure is logged and skipped (no line, rather than a false zero
/// that would scale the workers in).
pub async fn publish(core: Arc<Core>, settings: MetricsSettings) {
    let every = Duration::from_secs(settings.emf_interval_seconds.max(1));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match Backlog::measure(&core).await {
            Ok(backlog) => {
                let line = emf_line(&settings, backlog, core.now().unix_millis());
                let mut out = std::io::stdout().lock();
                // A closed stdout loses a data point, not the server.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
            Err(error) => {
                tracing::error!(operation = "metrics", error = %error, "could not measure the backlog");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MetricsSettings {
        MetricsSettings {
            emf_interval_seconds: 60,
            namespace: "TLAO".into(),
            deployment: "prod".into(),
        }
    }

    #[test]
    fn the_line_declares_each_metric_it_carries_under_the_deployment_dimension() {
        let line = emf_line(
            &settings(),
            Backlog {
                queued: 3,
                running: 2,
            },
            1_700_000_000_000,
        );

        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(directive["Namespace"], "TLAO");
        assert_eq!(directive["Dimensions"], json!([["Deployment"]]));
        assert_eq!(line["Deployment"], "prod");
        let declared: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|metric| metric["Name"].as_str().unwrap())
            .collect();
        assert_eq!(declared, [QUEUED_RUNS, RUNNING_RUNS]);
        // Every declared metric and dimension is a member of the root, as EMF requires.
        for name in declared.iter().chain([&DEPLOYMENT_DIMENSION]) {
            assert!(line.get(name).is_some(), "{name} is declared but absent");
        }
        assert_eq!(line[QUEUED_RUNS], 3);
        assert_eq!(line[RUNNING_RUNS], 2);
        assert!(!line.to_string().contains('\n'), "one line per event");
    }
}
