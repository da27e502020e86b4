//! Support for ferry's cross-crate suites: connections to the real local services the test
//! script starts (DynamoDB Local, moto), per-test fixtures with unique names, and a small Lambda
//! Runtime API so the real `auth` binary can be invoked as Lambda would.

pub mod fixture;
pub mod runtime_api;

pub use fixture::{Fixture, aws_config, services_available};
