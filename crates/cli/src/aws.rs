//! The AWS adapters, as the composition root opens them: a DynamoDB table and an S3
//! bucket named by `[storage]` and `[blobs]`. Built with the default `aws` feature; a
//! build without it (`--no-default-features`, faster to compile) says so instead.

use std::sync::Arc;

use tlao_ports::{BlobStore, RunLauncher, Table};

use crate::settings::{BlobSettings, EcsSettings, StorageSettings};

#[cfg(feature = "aws")]
mod enabled {
    use std::sync::Arc;

    use anyhow::Context;
    use tlao_adapters_aws::{
        AwsConnection, DynamoTable, EcsLauncher, Provisioned, S3BlobStore, SecretWriter,
    };
    use tlao_ports::{BlobStore, RunLauncher, Table};

    use crate::settings::{BlobSettings, EcsSettings, StorageSettings};

    fn table_of(storage: &StorageSettings) -> AwsConnection {
        AwsConnection::new(storage.endpoint.clone(), storage.region.clone())
    }

    fn bucket_of(blobs: &BlobSettings) -> AwsConnection {
        AwsConnection::new(blobs.endpoint.clone(), blobs.region.clone())
    }

    pub async fn open_table(storage: &StorageSettings) -> anyhow::Result<Arc<dyn Table>> {
        let table = DynamoTable::connect(&table_of(storage), &storage.table).await;
        table.ping().await.with_context(|| {
            format!(
                "cannot reach the DynamoDB table {:?} (create it with `tlao admin init-aws`)",
                storage.table
            )
        })?;
        Ok(Arc::new(table))
    }

    pub async fn open_blobs(blobs: &BlobSettings) -> anyhow::Result<Arc<dyn BlobStore>> {
        let store = S3BlobStore::connect(&bucket_of(blobs), &blobs.bucket).await;
        store.ping().await.with_context(|| {
            format!(
                "cannot reach the S3 bucket {:?} (create it with `tlao admin init-aws`)",
                blobs.bucket
            )
        })?;
        Ok(Arc::new(store))
    }

    pub async fn open_launcher(
        ecs: &EcsSettings,
        api_url: Option<&str>,
    ) -> anyhow::Result<Arc<dyn RunLauncher>> {
        let config = super::ecs_config(ecs, api_url)?;
        let connection = AwsConnection::new(ecs.endpoint.clone(), ecs.region.clone());
        Ok(Arc::new(EcsLauncher::connect(&connection, config).await))
    }

    pub async fn store_secret(
        storage: &StorageSettings,
        secret_id: &str,
        value: &str,
    ) -> anyhow::Result<()> {
        SecretWriter::connect(&table_of(storage))
            .await
            .put(secret_id, value)
            .await
    }

    fn said(provisioned: Provisioned) -> &'static str {
        match provisioned {
            Provisioned::Created => "created",
            Provisioned::Existing => "already there",
        }
    }

    pub async fn init(storage: &StorageSettings, blobs: &BlobSettings) -> anyhow::Result<()> {
        let table = DynamoTable::connect(&table_of(storage), &storage.table).await;
        let provisioned = table
            .ensure_table()
            .await
            .with_context(|| format!("creating the DynamoDB table {:?}", storage.table))?;
        println!("table {}: {}", storage.table, said(provisioned));
        let store = S3BlobStore::connect(&bucket_of(blobs), &blobs.bucket).await;
        let provisioned = store
            .ensure_bucket()
            .await
            .with_context(|| format!("creating the S3 bucket {:?}", blobs.bucket))?;
        println!("bucket {}: {}", blobs.bucket, said(provisioned));
        Ok(())
    }
}

#[cfg(not(feature = "aws"))]
mod enabled {
    use std::sync::Arc;

    use anyhow::bail;
    use tlao_ports::{BlobStore, RunLauncher, Table};

    use crate::settings::{BlobSettings, EcsSettings, StorageSettings};

    const MISSING: &str = "this build of tlao has no AWS adapters: build it with the `aws` feature (`cargo install --path crates/cli --features aws`)";

    pub async fn open_table(_: &StorageSettings) -> anyhow::Result<Arc<dyn Table>> {
        bail!("storage.kind = \"dynamodb\": {MISSING}")
    }

    pub async fn open_blobs(_: &BlobSettings) -> anyhow::Result<Arc<dyn BlobStore>> {
        bail!("blobs.kind = \"s3\": {MISSING}")
    }

    pub async fn init(_: &StorageSettings, _: &BlobSettings) -> anyhow::Result<()> {
        bail!("{MISSING}")
    }

    pub async fn store_secret(_: &StorageSettings, _: &str, _: &str) -> anyhow::Result<()> {
        bail!("storing a key in Secrets Manager: {MISSING}")
    }

    pub async fn open_launcher(
        _: &EcsSettings,
        _: Option<&str>,
    ) -> anyhow::Result<Arc<dyn RunLauncher>> {
        bail!("launcher.kind = \"ecs\": {MISSING}")
    }
}

/// The DynamoDB table `[storage]` names, checked reachable.
pub async fn open_table(storage: &StorageSettings) -> anyhow::Result<Arc<dyn Table>> {
    enabled::open_table(storage).await
}

/// The S3 bucket `[blobs]` names, checked reachable.
pub async fn open_blobs(blobs: &BlobSettings) -> anyhow::Result<Arc<dyn BlobStore>> {
    enabled::open_blobs(blobs).await
}

/// Stores `value` as the current value of the existing Secrets Manager secret
/// `secret_id` (name or ARN), in the region (and through the endpoint override) of the
/// table `[storage]` names.
pub async fn store_secret(
    storage: &StorageSettings,
    secret_id: &str,
    value: &str,
) -> anyhow::Result<()> {
    enabled::store_secret(storage, secret_id, value).await
}

/// Creates the table and the bucket when missing (idempotent), saying what it found.
pub async fn init(storage: &StorageSettings, blobs: &BlobSettings) -> anyhow::Result<()> {
    enabled::init(storage, blobs).await
}

/// The launcher of one Fargate task per run that `[launcher.ecs]` describes, its tasks
/// told to reach the API at `api_url` (`None`: their task definition says where).
pub async fn open_launcher(
    ecs: &EcsSettings,
    api_url: Option<&str>,
) -> anyhow::Result<Arc<dyn RunLauncher>> {
    enabled::open_launcher(ecs, api_url).await
}

/// The [`tlao_adapters_aws::EcsLauncherConfig`] of `[launcher.ecs]`. The worker token is not among the
/// container overrides (they are visible to anyone who may describe the task): the task
/// definition injects `TLAO_WORKER_TOKEN` from Secrets Manager, as
/// `deploy/aws/template.yaml` does.
#[cfg(feature = "aws")]
fn ecs_config(
    ecs: &EcsSettings,
    api_url: Option<&str>,
) -> anyhow::Result<tlao_adapters_aws::EcsLauncherConfig> {
    let (Some(cluster), Some(task_definition)) = (&ecs.cluster, &ecs.task_definition) else {
        anyhow::bail!("launcher.ecs needs both cluster and task_definition");
    };
    let mut config = tlao_adapters_aws::EcsLauncherConfig::new(cluster, task_definition);
    config.container = ecs.container.clone();
    config.subnets = ecs.subnets.clone();
    config.security_groups = ecs.security_groups.clone();
    config.assign_public_ip = ecs.assign_public_ip;
    config.max_tasks = ecs.max_tasks;
    config.env = api_url
        .map(|url| ("TLAO_API_URL".to_owned(), url.to_owned()))
        .into_iter()
        .collect();
    Ok(config)
}
