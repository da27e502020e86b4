//! Salt rotation: Secrets Manager's four-step protocol for the salt keyring. Rotating the salt is
//! versioning: the new keyring adds a fresh salt as current and keeps every older salt some user's
//! hash still uses (the current and the previous always), so no user is ever locked out; users
//! move to the new salt as they log in (see [`crate::app::login`]).
//!
//! Every step first checks the secret (rotation enabled, token known, already current is a no-op,
//! not pending is an error), is safe to repeat, and changes nothing when it fails.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;
use tracing::info;

use crate::domain::keyring::Keyring;
use crate::domain::password::{Password, Verifier, hash_password, pepper};
use crate::ports::{RotatingSecret, SaltUsage, StoreError};

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";

/// Random bytes in a new salt (encoded as base64 text in the keyring).
pub const SALT_BYTES: usize = 32;
/// The shortest salt text testSecret accepts: 32 bytes in unpadded base64.
const MIN_SALT_CHARS: usize = 43;

/// One of the four steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "createSecret",
            Self::Set => "setSecret",
            Self::Test => "testSecret",
            Self::Finish => "finishSecret",
        }
    }
}

/// A rotation request as Secrets Manager sends it. `RotationToken` (cross-account rotation) is
/// never read, so it can never be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationEvent {
    pub step: Step,
    pub secret_id: String,
    pub token: String,
}

/// Why a step failed. Carries no salt and no token.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("bad rotation event: {0}")]
    BadEvent(String),
    #[error("unknown rotation step {0:?}")]
    UnknownStep(String),
    #[error("rotation is not enabled for this secret")]
    RotationDisabled,
    #[error("the token is not a version of this secret")]
    UnknownToken,
    #[error("the token's version is not staged AWSPENDING")]
    NotPending,
    #[error("the secret has no AWSCURRENT version")]
    NoCurrent,
    #[error("the token's AWSPENDING version has no value (createSecret has not run)")]
    NoPending,
    #[error("the {0} keyring is unusable: {1}")]
    BadKeyring(&'static str, String),
    #[error("testSecret: {0}")]
    TestFailed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The token is already AWSCURRENT: nothing to do.
    AlreadyCurrent,
    /// createSecret staged a new keyring; `dropped` are the versions it pruned.
    Created {
        version: String,
        kept: Vec<String>,
        dropped: Vec<String>,
    },
    /// createSecret found its keyring already staged.
    AlreadyCreated,
    Set,
    Tested,
    Finished,
}

impl RotationEvent {
    /// Reads `{"Step", "SecretId", "ClientRequestToken"}`.
    pub fn parse(event: &Value) -> Result<Self, RotationError> {
        let field = |name: &str| {
            event
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    RotationError::BadEvent(format!("{name} is missing or not a string"))
                })
        };
        let step = match field("Step")?.as_str() {
            "createSecret" => Step::Create,
            "setSecret" => Step::Set,
            "testSecret" => Step::Test,
            "finishSecret" => Step::Finish,
            other => return Err(RotationError::UnknownStep(other.chars().take(64).collect())),
        };
        Ok(Self {
            step,
            secret_id: field("SecretId")?,
            token: field("ClientRequestToken")?,
        })
    }
}

/// Salt usage that counts the seed design's users as users of version "0" (the plain legacy
/// salt), so a rotation never drops the salt a pending migration needs.
#[derive(Debug, Clone)]
pub struct WithLegacy<U, L> {
    pub users: U,
    pub legacy: L,
}

impl<U: SaltUsage, L: crate::ports::LegacyUsers> SaltUsage for WithLegacy<U, L> {
    async fn in_use(&self, version: &str) -> Result<bool, StoreError> {
        if self.users.in_use(version).await? {
            return Ok(true);
        }
        Ok(version == crate::domain::keyring::LEGACY_VERSION
            && self.legacy.enabled()
            && self.legacy.count().await? > 0)
    }

    async fn count(&self, version: &str) -> Result<u64, StoreError> {
        self.users.count(version).await
    }
}

/// Runs one step against `secret`, asking `usage` which salt versions users still need.
pub async fn run_step<S: RotatingSecret, U: SaltUsage>(
    secret: &S,
    usage: &U,
    step: Step,
    token: &str,
) -> Result<Outcome, RotationError> {
    let state = secret.describe().await?;
    if !state.rotation_enabled {
        return Err(RotationError::RotationDisabled);
    }
    let stages = state.stages.get(token).ok_or(RotationError::UnknownToken)?;
    if stages.iter().any(|s| s == AWSCURRENT) {
        return Ok(Outcome::AlreadyCurrent);
    }
    if !stages.iter().any(|s| s == AWSPENDING) {
        return Err(RotationError::NotPending);
    }
    match step {
        Step::Create => create(secret, usage, token).await,
        Step::Set => {
            pending(secret, token).await?;
            info!(
                step = "setSecret",
                "the pending keyring parses; a salt has nothing external to set"
            );
            Ok(Outcome::Set)
        }
        Step::Test => {
            let current = current(secret).await?;
            let pending = pending(secret, token).await?;
            test(&current, &pending, usage).await?;
            info!(
                step = "testSecret",
                version = pending.current_version(),
                "the pending keyring passed every check"
            );
            Ok(Outcome::Tested)
        }
        Step::Finish => {
            let previous = state
                .stages
                .iter()
                .find(|(_, s)| s.iter().any(|s| s == AWSCURRENT))
                .map(|(id, _)| id.clone())
                .ok_or(RotationError::NoCurrent)?;
            secret.make_current(token, &previous).await?;
            info!(step = "finishSecret", "AWSCURRENT moved to the new keyring");
            Ok(Outcome::Finished)
        }
    }
}

async fn current<S: RotatingSecret>(secret: &S) -> Result<Keyring, RotationError> {
    let text = secret
        .value(AWSCURRENT, None)
        .await?
        .ok_or(RotationError::NoCurrent)?;
    Keyring::parse(&text).map_err(|e| RotationError::BadKeyring("current", e.to_string()))
}

async fn pending<S: RotatingSecret>(secret: &S, token: &str) -> Result<Keyring, RotationError> {
    let text = secret
        .value(AWSPENDING, Some(token))
        .await?
        .ok_or(RotationError::NoPending)?;
    Keyring::parse(&text).map_err(|e| RotationError::BadKeyring("pending", e.to_string()))
}

/// Whether `pending` is a keyring this rotation made from `current`: a new current version,
/// with the old current salt kept as it was.
fn is_successor(current: &Keyring, pending: &Keyring) -> bool {
    current.salt(pending.current_version()).is_none()
        && pending.salt(current.current_version()) == Some(current.current_salt())
}

async fn create<S: RotatingSecret, U: SaltUsage>(
    secret: &S,
    usage: &U,
    token: &str,
) -> Result<Outcome, RotationError> {
    let current = current(secret).await?;
    // Idempotent: a keyring this rotation already staged is kept. (A pending version holding
    // anything else, such as an emulator's copy of the current value, is replaced.)
    if let Some(text) = secret.value(AWSPENDING, Some(token)).await?
        && Keyring::parse(&text).is_ok_and(|p| is_successor(&current, &p))
    {
        info!(
            step = "createSecret",
            "the pending keyring is already staged"
        );
        return Ok(Outcome::AlreadyCreated);
    }
    let mut in_use = BTreeMap::new();
    for version in current.versions() {
        in_use.insert(version.to_owned(), usage.in_use(version).await?);
    }
    let (next, kept, dropped) = next_keyring(&current, &in_use, &new_salt())?;
    secret.put_pending(token, &next.to_secret_string()).await?;
    info!(
        step = "createSecret",
        version = next.current_version(),
        ?kept,
        ?dropped,
        "staged a new keyring as AWSPENDING"
    );
    Ok(Outcome::Created {
        version: next.current_version().to_owned(),
        kept,
        dropped,
    })
}

/// A fresh salt: [`SALT_BYTES`] from the OS CSPRNG as unpadded base64.
///
/// # Panics
/// If the OS random source fails: there is no safe fallback.
pub fn new_salt() -> String {
    let mut bytes = [0u8; SALT_BYTES];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// The keyring after `current`: version largest + 1 holding `salt`, as current; the old current
/// and the one before it always kept; any other version kept only if `in_use` says a user still
/// needs it. Returns the keyring, the versions kept and the versions dropped.
pub fn next_keyring(
    current: &Keyring,
    in_use: &BTreeMap<String, bool>,
    salt: &str,
) -> Result<(Keyring, Vec<String>, Vec<String>), RotationError> {
    let numbers: Vec<u64> = current
        .versions()
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let largest = numbers.iter().copied().max().unwrap_or(0);
    let next = largest
        .checked_add(1)
        .ok_or_else(|| RotationError::BadKeyring("current", "version ids are exhausted".into()))?;
    let current_number: u64 = current.current_version().parse().unwrap_or(largest);
    let previous = numbers
        .iter()
        .copied()
        .filter(|n| *n < current_number)
        .max();
    let mut salts = BTreeMap::new();
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for version in current.versions() {
        let number: Option<u64> = version.parse().ok();
        let always = number == Some(current_number) || number == previous;
        if always || in_use.get(version).copied().unwrap_or(true) {
            salts.insert(
                version.to_owned(),
                current.salt(version).unwrap_or_default().to_owned(),
            );
            kept.push(version.to_owned());
        } else {
            dropped.push(version.to_owned());
        }
    }
    salts.insert(next.to_string(), salt.to_owned());
    let keyring = Keyring::new(next.to_string(), salts)
        .map_err(|e| RotationError::BadKeyring("new", e.to_string()))?;
    Ok((keyring, kept, dropped))
}

/// testSecret's checks: every version users need is there unchanged, the new salt is new and
/// long enough, and a hash made under it verifies (and fails under any other salt).
pub async fn test<U: SaltUsage>(
    current: &Keyring,
    pending: &Keyring,
    usage: &U,
) -> Result<(), RotationError> {
    let fail = |m: String| Err(RotationError::TestFailed(m));
    if current.salt(pending.current_version()).is_some() {
        return fail(format!(
            "the new version {} already exists in the current keyring",
            pending.current_version()
        ));
    }
    if pending.current_salt().len() < MIN_SALT_CHARS {
        return fail("the new salt is shorter than 32 random bytes".into());
    }
    if current
        .versions()
        .iter()
        .any(|v| current.salt(v) == Some(pending.current_salt()))
    {
        return fail("the new salt is not new".into());
    }
    if pending.salt(current.current_version()) != Some(current.current_salt()) {
        return fail(format!(
            "the current version {} is missing or changed",
            current.current_version()
        ));
    }
    for version in current.versions() {
        if usage.in_use(version).await? && pending.salt(version) != current.salt(version) {
            return fail(format!(
                "version {version} is still used by users but missing or changed"
            ));
        }
    }
    let probe = Password::parse("ferry rotation probe")
        .map_err(|e| RotationError::TestFailed(e.to_string()))?;
    let salt = pending.current_salt().to_owned();
    let old_salt = current.current_salt().to_owned();
    let checked = tokio::task::spawn_blocking(move || {
        let hash = hash_password(&salt, &probe).map_err(|e| e.to_string())?;
        let verifier = Verifier::new();
        let right = verifier
            .verify(&hash, &pepper(&salt, &probe))
            .map_err(|e| e.to_string())?;
        let wrong = verifier
            .verify(&hash, &pepper(&old_salt, &probe))
            .map_err(|e| e.to_string())?;
        Ok::<bool, String>(right && !wrong)
    })
    .await
    .map_err(|e| RotationError::TestFailed(e.to_string()))?
    .map_err(RotationError::TestFailed)?;
    if !checked {
        return fail("a hash made under the new salt did not verify as it should".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(current: &str, versions: &[(&str, &str)]) -> Keyring {
        Keyring::new(
            current.into(),
            versions
                .iter()
                .map(|(v, s)| ((*v).to_owned(), (*s).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn the_next_keyring_keeps_current_previous_and_used_versions_and_drops_the_rest() {
        let k = keyring(
            "4",
            &[("1", "one"), ("2", "two"), ("3", "three"), ("4", "four")],
        );
        let in_use = BTreeMap::from([
            ("1".to_owned(), true),
            ("2".to_owned(), false),
            ("3".to_owned(), false),
            ("4".to_owned(), false),
        ]);
        let (next, kept, dropped) = next_keyring(&k, &in_use, "fresh").unwrap();
        assert_eq!(next.current_version(), "5");
        assert_eq!(next.current_salt(), "fresh");
        assert_eq!(kept, ["1", "3", "4"]);
        assert_eq!(dropped, ["2"]);
        assert_eq!(next.salt("4"), Some("four"));
        assert_eq!(next.salt("1"), Some("one"));
        assert!(is_successor(&k, &next));
        assert!(!is_successor(&k, &k));
    }

    #[test]
    fn a_legacy_plain_salt_becomes_version_zero_and_is_kept_beside_version_one() {
        let k = Keyring::parse("the-old-plain-salt").unwrap();
        let (next, kept, dropped) = next_keyring(&k, &BTreeMap::new(), "fresh").unwrap();
        assert_eq!(next.current_version(), "1");
        assert_eq!(next.salt("0"), Some("the-old-plain-salt"));
        assert_eq!(kept, ["0"]);
        assert!(dropped.is_empty());
    }

    #[test]
    fn new_salts_are_long_random_and_distinct() {
        let (a, b) = (new_salt(), new_salt());
        assert_eq!(a.len(), MIN_SALT_CHARS);
        assert_ne!(a, b);
    }

    #[test]
    fn events_are_read_strictly_and_never_keep_the_rotation_token() {
        let e = RotationEvent::parse(&serde_json::json!({
            "Step": "testSecret", "SecretId": "arn:s", "ClientRequestToken": "t-1", "RotationToken": "secret"
        }))
        .unwrap();
        assert_eq!(e.step, Step::Test);
        assert!(!format!("{e:?}").contains("secret\""));
        assert!(matches!(
            RotationEvent::parse(
                &serde_json::json!({"Step": "dance", "SecretId": "s", "ClientRequestToken": "t"})
            ),
            Err(RotationError::UnknownStep(_))
        ));
        for bad in [
            serde_json::json!(null),
            serde_json::json!({"Step": "createSecret", "SecretId": "s"}),
            serde_json::json!({"Step": 1, "SecretId": "s", "ClientRequestToken": "t"}),
        ] {
            assert!(matches!(
                RotationEvent::parse(&bad),
                Err(RotationError::BadEvent(_))
            ));
        }
    }
}
