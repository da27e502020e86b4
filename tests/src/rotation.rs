//! Salt rotation as the Lambda runs it, one step at a time (moto cannot run the Lambda itself),
//! for the rotation and fault suites.

use ferry_core::adapters::aws::dynamodb::{DynamoLegacyUsers, DynamoUserStore};
use ferry_core::adapters::aws::secretsmanager::SecretsManagerRotation;
use ferry_core::app::rotation::{
    Outcome, RotationError, RotationEvent, Step, WithLegacy, run_step,
};
use serde_json::json;

use crate::Fixture;

/// The four steps, in the order Secrets Manager calls them.
pub const STEPS: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

/// The salt usage the rotation prunes by: the users table, and the seed table when there is one.
pub type Usage = WithLegacy<DynamoUserStore, DynamoLegacyUsers>;

/// The usage of `f`'s users table and, if named, a seed-design table.
pub fn usage(f: &Fixture, legacy_table: Option<&str>) -> Usage {
    WithLegacy {
        users: DynamoUserStore::new(f.ddb.clone(), &f.table),
        legacy: DynamoLegacyUsers::new(f.ddb.clone(), legacy_table.map(str::to_owned)),
    }
}

/// One step, as the Lambda runs it: the event Secrets Manager would send, parsed, then run.
pub async fn step(
    f: &Fixture,
    usage: &Usage,
    step: Step,
    token: &str,
) -> Result<Outcome, RotationError> {
    let event = RotationEvent::parse(&json!({
        "Step": step.as_str(),
        "SecretId": f.secret_id,
        "ClientRequestToken": token,
        "RotationToken": "cross-account-token-never-read",
    }))?;
    let secret = SecretsManagerRotation::new(f.secrets.clone(), &event.secret_id);
    run_step(&secret, usage, event.step, &event.token).await
}
