//! The salt keyring in Secrets Manager, always read at stage AWSCURRENT; and the same secret as
//! the rotation function sees it (versions, stages, pending values).

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use tracing::instrument;

use crate::domain::keyring::Keyring;
use crate::ports::{RotatingSecret, SaltSource, SecretState, StoreError};

/// Reads the keyring secret.
#[derive(Debug, Clone)]
pub struct SecretsManagerSaltSource {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSaltSource {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

impl SaltSource for SecretsManagerSaltSource {
    #[instrument(skip(self), fields(secret_id = %self.secret_id))]
    async fn load_keyring(&self) -> Result<Keyring, StoreError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            // Explicit stage: correct on AWS, and moto returns a stale version without it.
            .version_stage("AWSCURRENT")
            .send()
            .await
            .map_err(|e| match e {
                SdkError::ServiceError(ref se)
                    if matches!(se.err(), GetSecretValueError::ResourceNotFoundException(_)) =>
                {
                    StoreError::NotFound(format!("secret {}", self.secret_id))
                }
                e => StoreError::Unavailable {
                    what: "Secrets Manager",
                    source: Box::new(e),
                },
            })?;
        let secret = out
            .secret_string()
            .ok_or_else(|| StoreError::Malformed("salt secret has no SecretString".into()))?;
        Keyring::parse(secret).map_err(|e| StoreError::Malformed(e.to_string()))
    }
}

/// The keyring secret under rotation.
#[derive(Debug, Clone)]
pub struct SecretsManagerRotation {
    client: Client,
    secret_id: String,
}

impl SecretsManagerRotation {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable {
        what: "Secrets Manager",
        source: Box::new(e),
    }
}

impl RotatingSecret for SecretsManagerRotation {
    #[instrument(skip(self), fields(secret_id = %self.secret_id))]
    async fn describe(&self) -> Result<SecretState, StoreError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(SecretState {
            rotation_enabled: out.rotation_enabled().unwrap_or(false),
            stages: out
                .version_ids_to_stages()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })
    }

    // The version id is the rotation's token: kept out of the span.
    #[instrument(skip(self, version_id), fields(secret_id = %self.secret_id))]
    async fn value(
        &self,
        stage: &str,
        version_id: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.secret_string().map(str::to_owned)),
            Err(SdkError::ServiceError(ref se))
                if matches!(se.err(), GetSecretValueError::ResourceNotFoundException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    #[instrument(skip_all, fields(secret_id = %self.secret_id))]
    async fn put_pending(&self, token: &str, value: &str) -> Result<(), StoreError> {
        self.client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .client_request_token(token)
            .secret_string(value)
            .version_stages("AWSPENDING")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    #[instrument(skip_all, fields(secret_id = %self.secret_id))]
    async fn make_current(&self, token: &str, previous: &str) -> Result<(), StoreError> {
        self.client
            .update_secret_version_stage()
            .secret_id(&self.secret_id)
            .version_stage("AWSCURRENT")
            .move_to_version_id(token)
            .remove_from_version_id(previous)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
