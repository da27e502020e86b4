//! Managed policies from IAM: GetPolicy for the default version, then GetPolicyVersion.

use aws_sdk_iam::Client;
use aws_sdk_iam::error::SdkError;
use tracing::instrument;

use crate::domain::policy::PolicyDocument;
use crate::ports::{PolicySource, StoreError};

/// Reads the default version of managed policies.
#[derive(Debug, Clone)]
pub struct IamPolicySource {
    client: Client,
}

impl IamPolicySource {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn classify<E>(arn: &str, e: SdkError<E>) -> StoreError
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let SdkError::ServiceError(se) = &e
        && se.err().code() == Some("NoSuchEntity")
    {
        return StoreError::NotFound(format!("policy {arn}"));
    }
    StoreError::Unavailable {
        what: "IAM",
        source: Box::new(e),
    }
}

impl PolicySource for IamPolicySource {
    #[instrument(skip(self))]
    async fn load_policy(&self, arn: &str) -> Result<PolicyDocument, StoreError> {
        let policy = self
            .client
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| classify(arn, e))?;
        let version = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .ok_or_else(|| StoreError::Malformed(format!("policy {arn} has no default version")))?;
        let out = self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| classify(arn, e))?;
        let document = out
            .policy_version()
            .and_then(|v| v.document())
            .ok_or_else(|| {
                StoreError::Malformed(format!("policy {arn} version {version} has no document"))
            })?;
        PolicyDocument::from_iam(document).map_err(|e| StoreError::Malformed(e.to_string()))
    }
}
