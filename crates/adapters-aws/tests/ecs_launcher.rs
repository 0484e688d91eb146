//! [`EcsLauncher`] against moto's ECS: moto runs no containers, but it records the tasks
//! `RunTask` starts (launch type, network, overrides) and stops them on `StopTask`, which
//! is what the launcher is responsible for: it starts them, notices them stop, and stops
//! them when told to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use tlao_adapters_aws::{EcsLauncher, EcsLauncherConfig, STARTED_BY, STOP_REASON};
use tlao_domain::{LeaseId, RunId, Ulid};
use tlao_ports::{Launch, LaunchError, RunLauncher};

/// An ECS client of the test itself, to set the stage and look at what the launcher did.
async fn ecs() -> aws_sdk_ecs::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(common::endpoint())
        .region(Region::new("us-east-1"))
        .load()
        .await;
    aws_sdk_ecs::Client::new(&config)
}

/// The first `<tag>` value of moto's EC2 answer to `action`. moto checks that a task's
/// subnets and security groups exist, so the test uses the default VPC's; an EC2 query
/// call is simple enough to make by hand (moto reads the service from the credential
/// scope and checks no signature), which spares the tests the EC2 SDK.
async fn ec2_first(action: &str, tag: &str) -> String {
    let body = reqwest::Client::new()
        .post(common::endpoint())
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ec2/aws4_request, \
             SignedHeaders=host, Signature=unchecked",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("Action={action}&Version=2016-11-15"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open = format!("<{tag}>");
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {body}"))
        + open.len();
    let end = start + body[start..].find('<').unwrap();
    body[start..end].to_owned()
}

/// A cluster with a Fargate worker task definition; returns (cluster, family).
async fn stage(ecs: &aws_sdk_ecs::Client) -> (String, String) {
    let ns = tlao_ports::testsuite::namespace("ecs");
    let cluster = format!("tlao-{ns}");
    let family = format!("tlao-worker-{ns}");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family(&family)
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("worker")
                .image("tlao-worker:test")
                .memory(512)
                .essential(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    (cluster, family)
}

#[tokio::test]
async fn a_launch_starts_one_fargate_task_told_its_run_and_lease_and_notices_it_stop() {
    let ecs = ecs().await;
    let (cluster, family) = stage(&ecs).await;
    let mut config = EcsLauncherConfig::new(&cluster, &family);
    config.subnets = vec![ec2_first("DescribeSubnets", "subnetId").await];
    config.security_groups = vec![ec2_first("DescribeSecurityGroups", "groupId").await];
    config.env = vec![("TLAO_API_URL".into(), "http://api.internal:7411".into())];
    config.max_tasks = 1;
    config.poll_interval = Duration::from_millis(100);
    let launcher = EcsLauncher::connect(&common::connection(), config).await;
    let launch = Launch {
        run_id: RunId::new(Ulid::from_parts(1_800_000_000_000, 7)),
        lease_id: LeaseId::new(Ulid::from_parts(1_800_000_000_000, 8)),
    };

    assert_eq!(launcher.capacity(), 1);
    let exit = launcher.launch(&launch).await.unwrap();
    assert_eq!(launcher.capacity(), 0);
    match launcher.launch(&launch).await {
        Err(LaunchError::Busy(_)) => {}
        Err(other) => panic!("expected Busy, got {other:?}"),
        Ok(_) => panic!("expected Busy, got a second task"),
    }

    let arns = ecs
        .list_tasks()
        .cluster(&cluster)
        .send()
        .await
        .unwrap()
        .task_arns
        .unwrap_or_default();
    assert_eq!(arns.len(), 1, "{arns:?}");
    let described = ecs
        .describe_tasks()
        .cluster(&cluster)
        .tasks(&arns[0])
        .send()
        .await
        .unwrap();
    let task = &described.tasks()[0];
    assert_eq!(task.launch_type().map(|t| t.as_str()), Some("FARGATE"));
    assert_eq!(task.started_by(), Some(STARTED_BY));
    assert!(
        task.task_definition_arn()
            .unwrap_or_default()
            .contains(&family),
        "{task:?}"
    );
    let container = &task.overrides().expect("overrides").container_overrides()[0];
    assert_eq!(container.name(), Some("worker"));
    assert_eq!(
        container.command(),
        [
            "worker",
            "--run",
            launch.run_id.as_ref(),
            "--lease",
            launch.lease_id.as_ref()
        ]
    );
    let env: Vec<(&str, &str)> = container
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap_or(""), kv.value().unwrap_or("")))
        .collect();
    assert_eq!(env, [("TLAO_API_URL", "http://api.internal:7411")]);

    ecs.stop_task()
        .cluster(&cluster)
        .task(&arns[0])
        .reason("the run ended")
        .send()
        .await
        .unwrap();
    let how = tokio::time::timeout(Duration::from_secs(10), exit)
        .await
        .expect("the launcher notices the task stopped");
    assert!(how.contains("stopped: the run ended"), "{how}");
    assert_eq!(launcher.capacity(), 1, "the slot is free again");
}

#[tokio::test]
async fn stopping_a_run_stops_its_task_and_frees_its_slot() {
    let ecs = ecs().await;
    let (cluster, family) = stage(&ecs).await;
    let mut config = EcsLauncherConfig::new(&cluster, &family);
    config.subnets = vec![ec2_first("DescribeSubnets", "subnetId").await];
    config.security_groups = vec![ec2_first("DescribeSecurityGroups", "groupId").await];
    config.max_tasks = 2;
    config.poll_interval = Duration::from_millis(100);
    let launcher = EcsLauncher::connect(&common::connection(), config).await;
    let launches: Vec<Launch> = (0..2)
        .map(|n| Launch {
            run_id: RunId::new(Ulid::from_parts(1_800_000_000_000, 20 + n)),
            lease_id: LeaseId::new(Ulid::from_parts(1_800_000_000_000, 30 + n)),
        })
        .collect();
    let first = launcher.launch(&launches[0]).await.unwrap();
    let second = launcher.launch(&launches[1]).await.unwrap();
    let unknown = RunId::new(Ulid::from_parts(1_800_000_000_000, 99));

    assert!(launcher.stop(&launches[0].run_id).await.unwrap());
    let how = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the launcher notices the task stopped");

    assert!(how.contains(STOP_REASON), "{how}");
    assert_eq!(launcher.capacity(), 1);
    assert!(
        !launcher.stop(&launches[0].run_id).await.unwrap(),
        "already gone"
    );
    assert!(
        !launcher.stop(&unknown).await.unwrap(),
        "never started here"
    );
    assert_eq!(launcher.stop_all().await.unwrap(), 1);
    tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the launcher notices the last task stopped");
    assert_eq!(launcher.capacity(), 2);
}

#[tokio::test]
async fn a_missing_cluster_fails_the_launch_with_the_services_reason() {
    let launcher = EcsLauncher::connect(
        &common::connection(),
        EcsLauncherConfig::new("tlao-no-such-cluster", "tlao-no-such-family"),
    )
    .await;
    let launch = Launch {
        run_id: RunId::new(Ulid::from_parts(1_800_000_000_000, 9)),
        lease_id: LeaseId::new(Ulid::from_parts(1_800_000_000_000, 10)),
    };
    match launcher.launch(&launch).await {
        Err(LaunchError::Failed(message)) => {
            assert!(message.contains("RunTask"), "{message}")
        }
        Err(other) => panic!("expected Failed, got {other:?}"),
        Ok(_) => panic!("a task started on a missing cluster"),
    }
    assert_eq!(launcher.capacity(), 4, "a failed launch frees its slot");
}
