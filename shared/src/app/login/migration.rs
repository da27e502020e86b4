//! Migration from the seed design: with a legacy table configured, a password login that would be
//! denied also looks up the seed key SHA-256(salt ‖ password ‖ username), and a hit for an
//! unknown user creates their record under the current salt, answers the login and removes the
//! legacy item. Every denied password login pays for the same lookup, so the legacy table does
//! not tell unknown users from wrong passwords.

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::{
    Authenticator, Decision, DenyReason, log_store_error, restriction_denial, store_denial,
};
use crate::app::now_epoch;
use crate::domain::keyring::{Keyring, LEGACY_VERSION};
use crate::domain::password::Password;
use crate::domain::transfer::AuthRequest;
use crate::domain::user::{Status, StoredRecord, UserRecord, attr};
use crate::ports::{FailureStore, LegacyUsers, PolicySource, SaltSource, UserStore};

impl<U: UserStore, S: SaltSource, P: PolicySource, L: LegacyUsers, D: FailureStore>
    Authenticator<U, S, P, L, D>
{
    /// A password login judged by the users table alone, for a user that a concurrent login has
    /// just migrated.
    async fn judge_stored(&self, req: &AuthRequest, password: &Password) -> Decision {
        match self.check_password(req, password, None).await {
            Ok((user, _)) => match restriction_denial(&user, req) {
                Some(denied) => Decision::Deny(denied),
                None => self.respond(&user, None).await,
            },
            Err((reason, _)) => Decision::Deny(reason),
        }
    }

    /// A seed-design user an operator disabled before their first login has a record of their
    /// own, marked `legacyPending`, without a password. Enabled again, their old password (a hit
    /// in the legacy table) sets the record's first hash, conditionally, and the login is judged
    /// by the record. A record without that mark (a keys-only user) is never given a password
    /// this way. `None`: the denial stands.
    async fn claim(
        &self,
        req: &AuthRequest,
        password: &Password,
        keyring: &Keyring,
        key: &str,
    ) -> Option<Decision> {
        let pending = match self.users.get_user(&req.username).await {
            Ok(Some(u)) => {
                u.extra.get(attr::LEGACY_PENDING) == Some(&serde_json::Value::Bool(true))
            }
            _ => false,
        };
        if !pending {
            return None;
        }
        let hash = self.hash_current(password, keyring).await?;
        match self
            .users
            .set_first_hash(&req.username, &hash, keyring.current_version(), now_epoch())
            .await
        {
            Ok(true) => {
                info!(username = %req.username, "legacy user's password moved to their record");
            }
            // Someone set a password meanwhile: the record decides.
            Ok(false) => {}
            Err(e) => return Some(store_denial(e, "setting the migrated password failed")),
        }
        if let Err(e) = self.legacy.remove(key).await {
            log_store_error(&e, "removing the migrated legacy item failed");
        }
        Some(self.judge_stored(req, password).await)
    }

    /// The seed design's lookup for a denied password login; a hit for an unknown user migrates
    /// that user and answers the login. `None`: the denial stands.
    pub(super) async fn migrate(
        &self,
        req: &AuthRequest,
        password: &Password,
        keyring: &Keyring,
        reason: DenyReason,
    ) -> Option<Decision> {
        let salt = keyring.salt(LEGACY_VERSION)?;
        let key = legacy_key(salt, password, req.username.as_str());
        let found = match self.legacy.find(&key).await {
            Ok(found) => found,
            Err(e) => {
                log_store_error(&e, "legacy lookup failed");
                return None;
            }
        };
        // Only an unknown user migrates: a user already in the table is judged there.
        let Some(legacy) = found.filter(|l| l.username == req.username.as_str()) else {
            // A concurrent first login may have migrated this user, and removed the item, between
            // our read of the users table and this lookup. Read again, on every miss so that
            // denials keep one timing, and judge an unknown user that now exists by what is
            // stored; otherwise a right password would be refused.
            let now = self.users.get_user(&req.username).await;
            if reason == DenyReason::UnknownUser && matches!(now, Ok(Some(_))) {
                info!(username = %req.username, "user migrated by a concurrent login; judged again");
                return Some(self.judge_stored(req, password).await);
            }
            return None;
        };
        match reason {
            DenyReason::UnknownUser => {}
            DenyReason::NoPasswordSet => {
                return Box::pin(self.claim(req, password, keyring, &key)).await;
            }
            _ => return None,
        }
        let hash = self.hash_current(password, keyring).await?;
        let record = StoredRecord {
            username: legacy.username,
            bucket: Some(legacy.bucket),
            home: Some(legacy.home),
            iam_policy_arn: Some(legacy.policy_arn),
            password_hash: Some(hash),
            salt_version: Some(keyring.current_version().to_owned()),
            password_changed_at: Some(now_epoch()),
            status: Some(Status::Active),
            ..StoredRecord::default()
        };
        let user = match UserRecord::from_stored(record) {
            Ok(u) => u,
            Err(e) => {
                warn!(username = %req.username, error = %e, "legacy user cannot be migrated");
                return Some(Decision::Deny(DenyReason::InvalidRecord));
            }
        };
        let decision = match self.users.create_user(&user).await {
            Ok(true) => {
                info!(username = %req.username, salt_version = keyring.current_version(), "legacy user migrated");
                if let Some(denied) = restriction_denial(&user, req) {
                    Decision::Deny(denied)
                } else {
                    self.respond(&user, None).await
                }
            }
            // A concurrent login migrated this user first: judge by what is stored now.
            Ok(false) => self.judge_stored(req, password).await,
            Err(e) => return Some(store_denial(e, "writing the migrated user failed")),
        };
        if let Err(e) = self.legacy.remove(&key).await {
            log_store_error(&e, "removing the migrated legacy item failed");
        }
        Some(decision)
    }
}

/// The seed design's partition key: lowercase hex SHA-256(salt ‖ password ‖ username).
pub fn legacy_key(salt: &str, password: &Password, username: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(password.expose().as_bytes())
        .chain_update(username.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
