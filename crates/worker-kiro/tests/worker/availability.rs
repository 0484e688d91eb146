//! The worker reports which executor programs it can run (requirement 2.2): with the
//! heartbeats of a run (the assigned executor, probed on its PATH with its version) and,
//! once it knows executors, with every lease request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use support::fake_api::{FakeApi, TOKEN};
use support::stand_in;
use tlao_domain::{ExecutorConfig, KiroConfig, RunStatus, TaskType};
use tlao_worker_kiro::run_once;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_later_leases_carry_what_the_worker_found() {
    let tmp = tempfile::tempdir().unwrap();
    let binary = stand_in();
    let api = FakeApi::start(
        TaskType::SpecGenerate,
        ExecutorConfig::Kiro(KiroConfig {
            binary: binary.to_str().unwrap().to_owned(),
            agent: None,
            extra_args: Vec::new(),
            preflight: false,
            max_run_seconds: None,
            harness: Default::default(),
        }),
        "plan the work",
        None,
        60_000,
    );
    let mut config = support::sandboxed_worker(&api.url, TOKEN, &tmp.path().join("runs"));
    config.worker_id = "test-host-1".into();

    let summary = run_once(&config, Duration::ZERO)
        .await
        .unwrap()
        .expect("a run");
    assert_eq!(summary.status, Some(RunStatus::Completed));
    let none_yet = run_once(&config, Duration::ZERO).await.unwrap();
    assert!(none_yet.is_none(), "the fake leases once");

    api.with(|s| {
        assert_eq!(s.lease_requests.len(), 2);
        assert_eq!(
            s.lease_requests[0].availability, None,
            "a fresh worker knows no executor yet"
        );
        let leased = s.lease_requests[1]
            .availability
            .as_ref()
            .expect("the second lease reports what the first run taught it");
        let heartbeat = s.availability.first().expect("a heartbeat reported it");
        for report in [leased, heartbeat] {
            assert_eq!(report.worker, "test-host-1");
            assert_eq!(report.executors.len(), 1);
            let probe = &report.executors[0];
            assert_eq!(probe.name.as_str(), "test-executor");
            assert_eq!(probe.program, binary.to_str().unwrap());
            assert!(probe.found);
            assert_eq!(probe.version.as_deref(), Some("kiro-cli 0.0.0 (stand-in)"));
        }
    });
}
