//! The salt keyring in Secrets Manager, always read at stage AWSCURRENT.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use tracing::instrument;

use crate::keyring::Keyring;
use crate::ports::{SaltSource, StoreError};

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
