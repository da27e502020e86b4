//! Logins verified by a directory source (LDAP, Active Directory) instead of ferry's own hash.
//!
//! Which source a user belongs to is data: a record with `identitySource` is that source's user,
//! and **the record decides** everything but the credential: status, expiry, inactivity, the
//! address, server and protocol lists, role, policy and home all come from the record, checked
//! before the directory is asked (a refused record costs the directory nothing); the directory
//! then checks the password (a bind as the user) or, for a key login, the account state and
//! groups, and adds its keys to the record's. A user with no record is offered to the sources
//! that have a default profile, in order; the first that knows the user decides, and the answer
//! is built from the profile and the mapped attributes. A user unknown to all of them is judged
//! as any unknown user (one Argon2 run, and the legacy table if configured).
//!
//! Every directory failure (down, slow past the source's deadline, a certificate that does not
//! verify, an unusable entry) is a denial like any other: the same `{}`, an audit reason
//! (`directory_unavailable`), and, being nothing the caller did, no defender charge. The cause is
//! logged, never the password. Every refused directory password also pays the one Argon2 run any
//! password denial pays (`Authenticator::paced`), so a directory user's wrong password is not
//! answered sooner than a local user's.

use std::time::Duration;

use tracing::warn;

use super::{
    Authenticator, Decision, DenyReason, Lookup, account_denial, denial_for, log_store_error,
    restriction_denial,
};
use crate::app::now_epoch;
use crate::domain::defender::Flow;
use crate::domain::directory::profile_record;
use crate::domain::password::Password;
use crate::domain::policy_checks::{RecordRules, check_user};
use crate::domain::transfer::AuthRequest;
use crate::domain::user::UserRecord;
use crate::ports::{
    DirectoryAnswer, DirectoryFuture, DirectoryRefusal, DirectorySource, FailureStore, LegacyUsers,
    PolicySource, SaltSource, StoreError, UserStore,
};

/// What a directory's refusal is, as a login's denial.
fn refusal_reason(refusal: DirectoryRefusal) -> DenyReason {
    match refusal {
        DirectoryRefusal::UnknownUser => DenyReason::UnknownUser,
        DirectoryRefusal::Ambiguous => DenyReason::AmbiguousUser,
        DirectoryRefusal::WrongPassword => DenyReason::WrongPassword,
        DirectoryRefusal::NotInGroup => DenyReason::NotInGroup,
        DirectoryRefusal::Disabled => DenyReason::Disabled,
        DirectoryRefusal::Locked => DenyReason::Locked,
    }
}

/// Runs one directory call within the source's deadline: a directory that does not answer in
/// time is one that failed (the adapter's own timeouts should fire first; this is the bound the
/// login can rely on whatever the adapter does).
async fn within(
    deadline: Duration,
    call: DirectoryFuture<'_>,
) -> Result<DirectoryAnswer, StoreError> {
    match tokio::time::timeout(deadline, call).await {
        Ok(answer) => answer,
        Err(elapsed) => Err(StoreError::Unavailable {
            what: "directory (past its deadline)",
            source: Box::new(elapsed),
        }),
    }
}

fn unavailable(source: &DirectorySource, e: &StoreError) -> Decision {
    warn!(source = %source.name, "directory source failed; the login is denied");
    log_store_error(e, "directory unavailable");
    Decision::Deny(DenyReason::DirectoryUnavailable)
}

impl<U: UserStore, S: SaltSource, P: PolicySource, L: LegacyUsers, D: FailureStore>
    Authenticator<U, S, P, L, D>
{
    /// A record built from a default profile is in no table, so the policy validator never sees
    /// it: its checks (role, home, and the policy the answer would carry: nothing outside the
    /// home) run here, on every such login, with the policy from the warm cache the answer uses
    /// too. The profile and the directory's mapped attributes make the record, so a policy ARN
    /// mapped from a directory attribute is checked as well.
    async fn unvalidated(
        &self,
        source: &DirectorySource,
        record: &UserRecord,
    ) -> Option<DenyReason> {
        let doc = match self.policy(&record.policy_arn).await {
            Ok(doc) => doc,
            Err(e) => {
                log_store_error(&e, "policy unavailable");
                return Some(denial_for(&e, Lookup::Policy));
            }
        };
        match check_user(record, &doc, &RecordRules::default()) {
            Ok(()) => None,
            Err(reason) => {
                warn!(source = %source.name, reason = %reason, "a default profile's record fails the policy validator's checks; the login is denied");
                Some(DenyReason::Invalid)
            }
        }
    }

    fn source_named(&self, name: &str) -> Option<&DirectorySource> {
        self.directories.iter().find(|d| d.name.as_str() == name)
    }

    /// A password login of a user whose record names a directory source.
    pub(super) async fn directory_password_login(
        &self,
        req: &AuthRequest,
        password: &Password,
        record: &UserRecord,
    ) -> Decision {
        let Some(source) = record.identity_source().and_then(|n| self.source_named(n)) else {
            return Decision::Deny(DenyReason::UnknownSource);
        };
        if let Some(denied) = account_denial(record, &self.lifecycle, Flow::Password)
            .or_else(|| restriction_denial(record, req))
        {
            return Decision::Deny(denied);
        }
        let call = source
            .directory
            .verify_password(req.username.as_str(), password);
        match within(source.deadline, call).await {
            Ok(DirectoryAnswer::Verified(_)) => self.respond(record, None).await,
            Ok(DirectoryAnswer::Refused(r)) => Decision::Deny(refusal_reason(r)),
            Err(e) => unavailable(source, &e),
        }
    }

    /// A password login of a user with no record, offered to the sources with a default
    /// profile. `None`: no source knows the user (the caller judges them as any unknown user).
    pub(super) async fn unlisted_password_login(
        &self,
        req: &AuthRequest,
        password: &Password,
    ) -> Option<Decision> {
        for source in self.directories.iter() {
            let Some(profile) = &source.default_profile else {
                continue;
            };
            let call = source
                .directory
                .verify_password(req.username.as_str(), password);
            let user = match within(source.deadline, call).await {
                Ok(DirectoryAnswer::Verified(user)) => user,
                Ok(DirectoryAnswer::Refused(DirectoryRefusal::UnknownUser)) => continue,
                Ok(DirectoryAnswer::Refused(r)) => return Some(Decision::Deny(refusal_reason(r))),
                Err(e) => return Some(unavailable(source, &e)),
            };
            let record = match profile_record(profile, &req.username, Some(&source.name), &user) {
                Ok(record) => record,
                Err(e) => {
                    warn!(source = %source.name, error = %e, "directory attributes make no valid record");
                    return Some(Decision::Deny(DenyReason::InvalidRecord));
                }
            };
            if let Some(denied) = restriction_denial(&record, req) {
                return Some(Decision::Deny(denied));
            }
            if let Some(denied) = self.unvalidated(source, &record).await {
                return Some(Decision::Deny(denied));
            }
            // No record to write `lastLoginAt` to: the answer alone.
            return Some(self.answer(&record, None).await);
        }
        None
    }

    /// A key login of a user whose record names a directory source: the record's keys and the
    /// directory's, once the directory says the account may log in.
    pub(super) async fn directory_key_login(
        &self,
        req: &AuthRequest,
        record: &UserRecord,
    ) -> Decision {
        let Some(source) = record.identity_source().and_then(|n| self.source_named(n)) else {
            self.pace_like_an_allow(Some(&record.policy_arn)).await;
            return Decision::Deny(DenyReason::UnknownSource);
        };
        if let Some(denied) = account_denial(record, &self.lifecycle, Flow::PublicKey)
            .or_else(|| restriction_denial(record, req))
        {
            self.pace_like_an_allow(Some(&record.policy_arn)).await;
            return Decision::Deny(denied);
        }
        let call = source.directory.look_up(req.username.as_str());
        let user = match within(source.deadline, call).await {
            Ok(DirectoryAnswer::Verified(user)) => user,
            Ok(DirectoryAnswer::Refused(r)) => {
                self.pace_like_an_allow(Some(&record.policy_arn)).await;
                return Decision::Deny(refusal_reason(r));
            }
            Err(e) => return unavailable(source, &e),
        };
        let mut keys = record.live_keys(now_epoch());
        for key in user.public_keys {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            self.pace_like_an_allow(Some(&record.policy_arn)).await;
            return Decision::Deny(DenyReason::NoKeys);
        }
        self.respond(record, Some(keys)).await
    }

    /// A key login of a user with no record, offered to the sources with a default profile.
    pub(super) async fn unlisted_key_login(&self, req: &AuthRequest) -> Decision {
        for source in self.directories.iter() {
            let Some(profile) = &source.default_profile else {
                continue;
            };
            let call = source.directory.look_up(req.username.as_str());
            let user = match within(source.deadline, call).await {
                Ok(DirectoryAnswer::Verified(user)) => user,
                Ok(DirectoryAnswer::Refused(DirectoryRefusal::UnknownUser)) => continue,
                Ok(DirectoryAnswer::Refused(r)) => {
                    self.pace_like_an_allow(None).await;
                    return Decision::Deny(refusal_reason(r));
                }
                Err(e) => return unavailable(source, &e),
            };
            let keys = user.public_keys.clone();
            let record = match profile_record(profile, &req.username, Some(&source.name), &user) {
                Ok(record) => record,
                Err(e) => {
                    warn!(source = %source.name, error = %e, "directory attributes make no valid record");
                    return Decision::Deny(DenyReason::InvalidRecord);
                }
            };
            let denied = match restriction_denial(&record, req)
                .or_else(|| keys.is_empty().then_some(DenyReason::NoKeys))
            {
                Some(denied) => Some(denied),
                None => self.unvalidated(source, &record).await,
            };
            if let Some(denied) = denied {
                self.pace_like_an_allow(Some(&record.policy_arn)).await;
                return Decision::Deny(denied);
            }
            return self.answer(&record, Some(keys)).await;
        }
        self.pace_like_an_allow(None).await;
        Decision::Deny(DenyReason::UnknownUser)
    }
}

#[cfg(test)]
mod tests;
