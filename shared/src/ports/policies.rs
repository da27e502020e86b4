//! Managed scope-down policies (IAM on AWS, policy files locally).

use std::future::Future;

use super::StoreError;
use crate::domain::policy::PolicyDocument;

/// Reads the default version of a managed policy.
pub trait PolicySource: Send + Sync {
    fn load_policy(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<PolicyDocument, StoreError>> + Send;
}

impl<T: PolicySource + ?Sized> PolicySource for &T {
    fn load_policy(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<PolicyDocument, StoreError>> + Send {
        (**self).load_policy(arn)
    }
}

impl<T: PolicySource + ?Sized> PolicySource for std::sync::Arc<T> {
    fn load_policy(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<PolicyDocument, StoreError>> + Send {
        (**self).load_policy(arn)
    }
}
