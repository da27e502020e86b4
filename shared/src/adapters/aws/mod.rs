//! AWS SDK adapters for the [`crate::ports`] traits, one cargo feature per service.

#[cfg(feature = "dynamodb")]
pub mod defender;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "eventbridge")]
pub mod eventbridge;
#[cfg(feature = "iam")]
pub mod iam;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "secretsmanager")]
pub mod secretsmanager;
#[cfg(all(feature = "sns", feature = "dynamodb"))]
pub mod sns;
