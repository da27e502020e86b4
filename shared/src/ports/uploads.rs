//! What the upload processor needs from outside: the object operations (S3, or the data folder),
//! a notifier, and where users' own rules are kept.

use std::future::Future;

use serde_json::Value;

use super::StoreError;
use crate::domain::upload_rules::{UserRules, user_rules};

/// An object as HEAD sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub etag: String,
    pub version_id: Option<String>,
}

/// How a conditional copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyResult {
    Copied,
    /// The source is no longer the object that was hashed (replaced or gone).
    SourceChanged,
}

/// A conditional copy to the processed or quarantine area.
#[derive(Debug, Clone, Copy)]
pub struct CopyRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// The ETag that was hashed: the copy happens only if the source still has it.
    pub etag: &'a str,
    pub size: u64,
    pub to_bucket: &'a str,
    pub to_key: &'a str,
    /// Replace the copy's tags.
    pub tags: &'a [(String, String)],
}

/// Streams an object's bytes.
pub trait BodyStream: Send {
    fn next_chunk(
        &mut self,
    ) -> impl Future<Output = Result<Option<bytes::Bytes>, StoreError>> + Send;
}

/// The object operations the processor needs (S3, or the local stack's files).
pub trait UploadStore: Send + Sync {
    type Body: BodyStream;
    fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Head>, StoreError>> + Send;
    fn tags(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// The body of the object whose ETag is `etag` (fails if it was replaced meanwhile).
    fn body(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> impl Future<Output = Result<Option<Self::Body>, StoreError>> + Send;
    /// Copies the object, only if its ETag is still the one given, with new tags.
    fn copy(
        &self,
        req: &CopyRequest<'_>,
    ) -> impl Future<Output = Result<CopyResult, StoreError>> + Send;
    fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn delete(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Announces a processed file (SNS on AWS, a JSON line locally).
pub trait Notifier: Send + Sync {
    fn notify(
        &self,
        message: &Value,
        attributes: &[(&str, &str)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Finds a user's own upload rules (the users table on AWS).
pub trait RulesSource: Send + Sync {
    fn rules_for(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Option<UserRules>, StoreError>> + Send;
}

/// No per-user rules: the configured ones apply to everybody.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUserRules;

impl RulesSource for NoUserRules {
    async fn rules_for(&self, _user: &str) -> Result<Option<UserRules>, StoreError> {
        Ok(None)
    }
}

// An optional source: without one (no users table configured), nobody has rules of their own.
impl<R: RulesSource> RulesSource for Option<R> {
    async fn rules_for(&self, user: &str) -> Result<Option<UserRules>, StoreError> {
        match self {
            Some(r) => r.rules_for(user).await,
            None => Ok(None),
        }
    }
}

impl<R: RulesSource + ?Sized> RulesSource for std::sync::Arc<R> {
    fn rules_for(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Option<UserRules>, StoreError>> + Send {
        (**self).rules_for(user)
    }
}

/// A user's own rules as stored in their record; a folder name that is no valid username
/// belongs to nobody, and the configured rules apply. Shared by every user store.
pub async fn rules_of<U: crate::ports::UserAdmin>(
    users: &U,
    user: &str,
) -> Result<Option<UserRules>, StoreError> {
    let Ok(username) = crate::domain::username::Username::parse(user) else {
        return Ok(None);
    };
    match users.get_raw(&username).await? {
        Some(record) => {
            user_rules(&record).map_err(|e| StoreError::Malformed(format!("uploadRules: {e}")))
        }
        None => Ok(None),
    }
}
