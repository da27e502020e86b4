//! User administration: the use cases behind `ferry user …` (and any later entry point, such as a
//! web console). Every change reads the stored record, applies the change, judges the result with
//! the record parser the auth function uses, and writes it only if it passes; attributes the
//! model does not know survive every rewrite. Prompts, files and printing stay with the caller.

pub mod import;

use crate::app::now_epoch;
use crate::app::verdicts::judge_record;
use crate::domain::keyring::Keyring;
use crate::domain::password::{HashError, Password, hash_password};
use crate::domain::policy_checks::RecordRules;
use crate::domain::ssh_key::{fingerprint, key_identity};
use crate::domain::user::{KeyEntry, RecordError, Status, StoredRecord, UserRecord, attr};
use crate::domain::username::Username;
use crate::ports::{
    LegacyUsers, NoLegacy, PolicySource, SaltSource, StoreError, UserAdmin, UserStore,
};

/// What a new user gets when the operator names no bucket or policy (the data folder has its
/// own; on AWS there is none).
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub bucket: Option<String>,
    pub policy_arn: Option<String>,
}

/// The attributes an operator sets when adding or updating a user. `None` or an empty list
/// leaves what is stored alone.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub bucket: Option<String>,
    pub home: Option<String>,
    pub policy_arn: Option<String>,
    pub role_arn: Option<String>,
    pub chroot: Option<bool>,
    /// OpenSSH public keys, replacing the stored ones.
    pub keys: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub servers: Vec<String>,
    pub protocols: Vec<String>,
    pub expires_at: Option<i64>,
    /// The user's own inactivity limit in days (`Some(0)`: none, whatever the default);
    /// `Some(None)` removes it, so the default applies again.
    pub disable_after_inactive_days: Option<Option<u32>>,
    /// The user's own password maximum age in days, as above.
    pub password_max_age_days: Option<Option<u32>>,
    /// Sets the access lists (allowed sources, servers, protocols) as given, an empty list
    /// included: for a form that shows every list and so can say "none" (the console's edit).
    pub replace_lists: bool,
}

/// What happens to the password.
#[derive(Debug)]
pub enum PasswordChange {
    Set(Password),
    /// Keys only from now on.
    Remove,
    /// An update keeps the stored password.
    Keep,
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
}

/// A stored key, by its number in the listing (from 1) or its `SHA256:` fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    Number(usize),
    Fingerprint(String),
}

/// Keys added to a user, and keys skipped because the user already had them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysAdded {
    pub added: usize,
    pub skipped: usize,
}

/// Why an administrative change was refused. The record stays as it was.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user {0}")]
    NoSuchUser(Username),
    #[error("user {0} already exists")]
    AlreadyExists(Username),
    /// A new user lacks an attribute (named as stored: `bucket`, `home`, `iamPolicyArn`).
    #[error("{0} is required for a new user")]
    Required(&'static str),
    #[error("a new user needs a password or a public key")]
    NoCredential,
    #[error("{user} has no key number {number}")]
    NoKeyNumber { user: Username, number: usize },
    #[error("{user} has no key with fingerprint {fingerprint}")]
    NoKeyFingerprint { user: Username, fingerprint: String },
    #[error("the stored record of {user} cannot be read: {reason}")]
    Unreadable { user: Username, reason: String },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hashing the password failed: {0}")]
    Hash(#[from] HashError),
    /// Enabling a user whose record fails the policy validator's checks.
    #[error("{user} fails validation and stays as it is: {reason}")]
    FailsValidation { user: Username, reason: String },
}

/// The administration use cases over a user store and the salt keyring.
#[derive(Debug)]
pub struct Admin<U, S> {
    users: U,
    salts: S,
    defaults: Defaults,
}

impl<U, S> Admin<U, S> {
    pub fn new(users: U, salts: S, defaults: Defaults) -> Self {
        Self {
            users,
            salts,
            defaults,
        }
    }

    /// The user store, for the reads callers make themselves (show, list).
    pub fn users(&self) -> &U {
        &self.users
    }
}

impl<U: UserAdmin + UserStore, S: SaltSource> Admin<U, S> {
    /// Creates a user, or with `update` changes an existing one.
    pub async fn add(
        &self,
        username: &Username,
        changes: Changes,
        password: PasswordChange,
        update: bool,
    ) -> Result<Written, AdminError> {
        let mut record = if update {
            self.existing(username).await?
        } else {
            // Created now: the inactivity clock of a user who never logs in starts here.
            StoredRecord {
                enabled_at: Some(now_epoch()),
                ..StoredRecord::default()
            }
        };
        let changes = if update {
            changes
        } else {
            self.with_defaults(changes)
        };
        apply(&mut record, username, changes)?;
        match password {
            PasswordChange::Set(p) => {
                let keyring = self.salts.load_keyring().await?;
                put_hash(&mut record, &keyring, &p)?;
            }
            PasswordChange::Remove => {
                record.password_hash = None;
                record.salt_version = None;
            }
            PasswordChange::Keep => {}
        }
        if !self.write(record, update).await? {
            return Err(AdminError::AlreadyExists(username.clone()));
        }
        Ok(if update {
            Written::Updated
        } else {
            Written::Created
        })
    }

    /// A new password, hashed under the keyring's current salt.
    pub async fn set_password(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<(), AdminError> {
        let mut record = self.existing(username).await?;
        let keyring = self.salts.load_keyring().await?;
        put_hash(&mut record, &keyring, password)?;
        self.write(record, true).await?;
        Ok(())
    }

    /// Enables a user, only if the record passes the policy validator's checks (the same checks
    /// the validator runs on every change): a user marked `invalid`, or changed while disabled,
    /// is not let back in unchecked. `enabledAt` becomes now, which restarts the inactivity clock:
    /// this is how an operator lets a user refused as inactive back in.
    pub async fn enable<P: PolicySource>(
        &self,
        username: &Username,
        policies: &P,
        rules: &RecordRules,
    ) -> Result<(), AdminError> {
        let mut record = self.existing(username).await?;
        let json = serde_json::to_value(&record).map_err(|e| AdminError::Unreadable {
            user: username.clone(),
            reason: e.to_string(),
        })?;
        if let Err(reason) = judge_record(json, policies, rules).await? {
            return Err(AdminError::FailsValidation {
                user: username.clone(),
                reason,
            });
        }
        record.status = Some(Status::Active);
        record.enabled_at = Some(now_epoch());
        record.extra.insert(
            attr::STATUS_REASON.to_owned(),
            serde_json::Value::from("ok"),
        );
        self.write(record, true).await?;
        Ok(())
    }

    /// Sets a user's status as it is (disabling needs no check).
    pub async fn set_status(&self, username: &Username, status: Status) -> Result<(), AdminError> {
        let mut record = self.existing(username).await?;
        record.status = Some(status);
        self.write(record, true).await?;
        Ok(())
    }

    /// Makes a directory source verify the user (`Some`), or ferry's own hash again (`None`):
    /// the record's `identitySource`. Everything else in the record stays, and keeps deciding.
    pub async fn set_identity_source(
        &self,
        username: &Username,
        source: Option<&crate::domain::directory::SourceName>,
    ) -> Result<(), AdminError> {
        let mut record = self.existing(username).await?;
        let key = crate::domain::user::attr::IDENTITY_SOURCE.to_owned();
        match source {
            Some(name) => {
                record
                    .extra
                    .insert(key, serde_json::Value::String(name.as_str().to_owned()));
            }
            None => {
                record.extra.remove(&key);
            }
        }
        self.write(record, true).await?;
        Ok(())
    }

    pub async fn remove(&self, username: &Username) -> Result<(), AdminError> {
        self.remove_with_legacy(username, &NoLegacy)
            .await
            .map(|_| ())
    }

    /// Removes a user from the users table and every item of theirs from the seed design's
    /// table: a leftover legacy item (one a migration failed to delete) would otherwise let the
    /// old password bring the user back. Returns how many legacy items went.
    pub async fn remove_with_legacy<L: LegacyUsers>(
        &self,
        username: &Username,
        legacy: &L,
    ) -> Result<usize, AdminError> {
        let mut legacy_items = 0;
        if legacy.enabled() {
            for (key, _) in legacy.items_of(username.as_str()).await? {
                legacy.remove(&key).await?;
                legacy_items += 1;
            }
        }
        let removed = self.users.delete_user(username).await?;
        if !removed && legacy_items == 0 {
            return Err(AdminError::NoSuchUser(username.clone()));
        }
        Ok(legacy_items)
    }

    /// Disables a user. A user still only in the seed design's table gets a record of their own,
    /// disabled and without a password, so that their old password can no longer migrate them;
    /// enabled again, their next login with the old password sets it (see
    /// `app::login::migration`).
    pub async fn disable_with_legacy<L: LegacyUsers>(
        &self,
        username: &Username,
        legacy: &L,
    ) -> Result<(), AdminError> {
        match self.stored(username).await? {
            Some(mut record) => {
                record.status = Some(Status::Disabled);
                self.write(record, true).await?;
                Ok(())
            }
            None => {
                let items = if legacy.enabled() {
                    legacy.items_of(username.as_str()).await?
                } else {
                    Vec::new()
                };
                let Some((_, seed)) = items.into_iter().next() else {
                    return Err(AdminError::NoSuchUser(username.clone()));
                };
                let record = StoredRecord {
                    username: username.as_str().to_owned(),
                    bucket: Some(seed.bucket),
                    home: Some(seed.home),
                    iam_policy_arn: Some(seed.policy_arn),
                    status: Some(Status::Disabled),
                    extra: [(
                        attr::LEGACY_PENDING.to_owned(),
                        serde_json::Value::Bool(true),
                    )]
                    .into(),
                    ..StoredRecord::default()
                };
                // Not over a record made meanwhile: that one is judged by what it says.
                if !self.write(record, false).await? {
                    return Box::pin(self.disable_with_legacy(username, legacy)).await;
                }
                Ok(())
            }
        }
    }

    /// The user's stored keys, in listing order.
    pub async fn keys(&self, username: &Username) -> Result<Vec<KeyEntry>, AdminError> {
        Ok(self.existing(username).await?.public_keys)
    }

    /// Adds keys (a key the user already has, whatever its comment, is skipped).
    pub async fn add_keys(
        &self,
        username: &Username,
        keys: &[String],
        expires_at: Option<i64>,
    ) -> Result<KeysAdded, AdminError> {
        let mut record = self.existing(username).await?;
        let mut result = KeysAdded {
            added: 0,
            skipped: 0,
        };
        for key in keys {
            let known = record
                .public_keys
                .iter()
                .any(|e| key_identity(e.key()) == key_identity(key));
            if known {
                result.skipped += 1;
                continue;
            }
            record
                .public_keys
                .push(KeyEntry::new(key.clone(), expires_at));
            result.added += 1;
        }
        self.write(record, true).await?;
        Ok(result)
    }

    /// Removes one key.
    pub async fn remove_key(&self, username: &Username, which: &KeyRef) -> Result<(), AdminError> {
        let mut record = self.existing(username).await?;
        match which {
            KeyRef::Number(n) => {
                if *n == 0 || *n > record.public_keys.len() {
                    return Err(AdminError::NoKeyNumber {
                        user: username.clone(),
                        number: *n,
                    });
                }
                record.public_keys.remove(n - 1);
            }
            KeyRef::Fingerprint(fp) => {
                let before = record.public_keys.len();
                record
                    .public_keys
                    .retain(|e| fingerprint(e.key()).as_deref() != Some(fp.as_str()));
                if record.public_keys.len() == before {
                    return Err(AdminError::NoKeyFingerprint {
                        user: username.clone(),
                        fingerprint: fp.clone(),
                    });
                }
            }
        }
        self.write(record, true).await?;
        Ok(())
    }

    /// The stored record, loosely typed; `None` when there is no such user.
    async fn stored(&self, username: &Username) -> Result<Option<StoredRecord>, AdminError> {
        match self.users.get_raw(username).await? {
            None => Ok(None),
            Some(json) => {
                serde_json::from_value(json)
                    .map(Some)
                    .map_err(|e| AdminError::Unreadable {
                        user: username.clone(),
                        reason: e.to_string(),
                    })
            }
        }
    }

    async fn existing(&self, username: &Username) -> Result<StoredRecord, AdminError> {
        self.stored(username)
            .await?
            .ok_or_else(|| AdminError::NoSuchUser(username.clone()))
    }

    /// Judges the record with the auth function's parser, then writes it. `Ok(false)`: without
    /// `overwrite`, the user existed already.
    async fn write(&self, record: StoredRecord, overwrite: bool) -> Result<bool, AdminError> {
        let user = UserRecord::from_stored(record)?;
        Ok(self.users.put_user(&user, overwrite).await?)
    }

    fn with_defaults(&self, mut changes: Changes) -> Changes {
        changes.bucket = changes.bucket.or_else(|| self.defaults.bucket.clone());
        changes.policy_arn = changes
            .policy_arn
            .or_else(|| self.defaults.policy_arn.clone());
        changes
    }
}

/// Writes `changes` over `record` and checks that a new user has what it needs.
fn apply(record: &mut StoredRecord, username: &Username, c: Changes) -> Result<(), AdminError> {
    fn set<T>(slot: &mut Option<T>, value: Option<T>) {
        if value.is_some() {
            *slot = value;
        }
    }
    fn set_list(slot: &mut Vec<String>, value: Vec<String>) {
        if !value.is_empty() {
            *slot = value;
        }
    }
    record.username = username.as_str().to_owned();
    set(&mut record.bucket, c.bucket);
    set(&mut record.home, c.home);
    set(&mut record.iam_policy_arn, c.policy_arn);
    set(&mut record.role_arn, c.role_arn);
    set(&mut record.chroot, c.chroot);
    let protocols = c.protocols.iter().map(|p| p.to_ascii_uppercase()).collect();
    if c.replace_lists {
        record.allowed_ips = c.allowed_ips;
        record.allowed_servers = c.servers;
        record.protocols = protocols;
    } else {
        set_list(&mut record.allowed_ips, c.allowed_ips);
        set_list(&mut record.allowed_servers, c.servers);
        set_list(&mut record.protocols, protocols);
    }
    set(&mut record.expires_at, c.expires_at);
    if let Some(days) = c.disable_after_inactive_days {
        record.disable_after_inactive_days = days;
    }
    if let Some(days) = c.password_max_age_days {
        record.password_max_age_days = days;
    }
    if !c.keys.is_empty() {
        record.public_keys = c.keys.into_iter().map(|k| KeyEntry::new(k, None)).collect();
    }
    record.status.get_or_insert(Status::Active);
    for (value, name) in [
        (record.bucket.is_some(), attr::BUCKET),
        (record.home.is_some(), attr::HOME),
        (record.iam_policy_arn.is_some(), attr::IAM_POLICY_ARN),
    ] {
        if !value {
            return Err(AdminError::Required(name));
        }
    }
    Ok(())
}

/// Hashes `password` under the keyring's current salt into the record, and notes when
/// (`passwordChangedAt`, which the password maximum age counts from).
fn put_hash(
    record: &mut StoredRecord,
    keyring: &Keyring,
    password: &Password,
) -> Result<(), AdminError> {
    record.password_hash = Some(hash_password(keyring.current_salt(), password)?);
    record.salt_version = Some(keyring.current_version().to_owned());
    record.password_changed_at = Some(now_epoch());
    Ok(())
}

#[cfg(test)]
mod tests;
