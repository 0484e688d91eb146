//! Storing a secret value in AWS Secrets Manager: how `tlao admin bootstrap` hands the
//! first administrator's API key to whoever may read one secret, instead of printing it
//! where a deployment's logs would keep it (the CloudFormation stack runs the bootstrap
//! as a one-off task).

use aws_sdk_secretsmanager::Client;

use crate::connection::AwsConnection;
use crate::sdk_error::{Failure, classify};

/// Writes values into existing Secrets Manager secrets.
#[derive(Debug, Clone)]
pub struct SecretWriter {
    client: Client,
}

impl SecretWriter {
    /// A writer over `connection` (region, endpoint override, standard credentials).
    pub async fn connect(connection: &AwsConnection) -> SecretWriter {
        SecretWriter {
            client: Client::new(&connection.sdk_config().await),
        }
    }

    /// Makes `value` the current value of the secret `secret_id` (its name or ARN), as a
    /// new version. The secret must exist; the caller needs
    /// `secretsmanager:PutSecretValue` on it. Errors name the secret and, for a
    /// refusal, the AWS error code and request id (retryable failures were already
    /// retried by the SDK).
    pub async fn put(&self, secret_id: &str, value: &str) -> anyhow::Result<()> {
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .secret_string(value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match classify("PutSecretValue", e) {
                Failure::Service(refusal) => {
                    anyhow::anyhow!("storing a value in secret {secret_id:?}: {refusal}")
                }
                Failure::Transient(e) | Failure::Unexpected(e) => {
                    e.context(format!("storing a value in secret {secret_id:?}"))
                }
            })
    }
}
