//! The authenticator: one login in, one Transfer Family answer out. Every entry point (the
//! Lambda, API Gateway, the local SFTP server, `ferry login`) runs this same code.
//!
//! Every password failure runs exactly one Argon2 verification (against a dummy hash when there
//! is no real one), so an unknown user, a disabled one and a wrong password cost the same time
//! and get the same `{}`; only the audit log says which it was.
//!
//! After a successful password login a hash made under an older salt version, or with weaker
//! Argon2 parameters, is replaced (conditionally: a concurrent change wins). A user already on a
//! salt newer than the cached keyring makes the keyring reload once, so a login right after a
//! rotation never fails. With a legacy table configured, a password login that would be denied
//! also looks up the seed design's key, and a hit migrates the user.
//!
//! With a defender configured ([`Authenticator::with_defender`]; `crate::domain::defender` holds
//! its rules), every login first reads its source's, pair's and account's tallies in one call: a
//! banned source or a throttled pair is refused on the spot, with no lookup, no Argon2 and no
//! policy read, and answered as any denial is; a slowed account's password attempts wait before
//! they are judged. Afterwards a refusal is counted and a right password clears its pair.
//!
//! The account lifecycle (`crate::domain::lifecycle`, limits from [`Authenticator::with_lifecycle`]
//! and the record): an inactive account is refused in both flows, a password past its maximum age
//! in the password flow, both judged where status and expiry are (after the one Argon2 run of a
//! password login; before the pacing policy read of a key login). An allowed login records
//! `lastLoginAt` when the stored one is missing or an hour old, with a conditional write made
//! while the answer's policy is read; a write that loses or fails leaves the login as it was.
//!
//! With [`Settings::verified_cache`] above zero, a right password is remembered for that long
//! (the `verified` module): the same password for the same stored hash and salt version skips Argon2,
//! and only that; the record is read and judged on every login, and a record that would refuse the
//! login never consults the cache, so every denial still costs its one Argon2 run.

mod directory;
pub mod migration;
mod verified;

pub use verified::VERIFIED_LOGINS_KEPT;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use serde_json::Value;
use tracing::{info, warn};

use crate::app::now_epoch;
use crate::domain::audit::{AuditEvent, DefenderEvent, LoginEvent};
use crate::domain::defender::{
    AttemptKeys, Charge, DefenderConfig, Failure, Flow, Gate, KeyKind, Standing, Tally,
};
use crate::domain::keyring::Keyring;
use crate::domain::lifecycle::{Lifecycle, login_worth_recording};
use crate::domain::password::{
    DUMMY_HASH, Password, Verifier, hash_password, needs_rehash, pepper, verified_login_key,
};
use crate::domain::policy::{PolicyDocument, PolicyError};
use crate::domain::source::is_private;
use crate::domain::transfer::{AuthRequest, AuthResponse, Credential, Partial, read_event, render};
use crate::domain::user::{Home, Status, UserRecord};
use crate::ports::{
    AuditSink, DirectorySource, FailureStore, LegacyUsers, NoDefender, NoLegacy, PolicySource,
    SaltSource, StoreError, UserStore, error_chain,
};

/// Why a login was refused. Logged, never shown to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The request itself was unreadable; the code says which part.
    BadRequest(&'static str),
    UnknownUser,
    WrongPassword,
    /// A password login for a user who has no password (keys only).
    NoPasswordSet,
    /// A key login for a user with no unexpired key.
    NoKeys,
    Disabled,
    Invalid,
    Expired,
    /// No sign of life (login, password set, enable) for as long as the inactivity limit.
    Inactive,
    /// A password login with a password older than its maximum age.
    PasswordExpired,
    IpNotAllowed,
    ServerNotAllowed,
    ProtocolNotAllowed,
    /// The stored record cannot be used (bad attribute, bad hash).
    InvalidRecord,
    /// The user's hash was made with a salt the keyring no longer holds.
    SaltVersionMissing,
    StoreUnavailable,
    KeyringUnavailable,
    PolicyUnavailable,
    PolicyTooLarge,
    PolicyInvalid,
    /// The hashing thread failed (it should not).
    Internal,
    /// The source is banned by the defender: refused before any lookup.
    Banned,
    /// The (username, source) pair is throttled by the defender: refused before any lookup.
    Throttled,
    /// A directory source could not answer (down, slow, a certificate that does not verify,
    /// an entry it cannot read).
    DirectoryUnavailable,
    /// The directory user is in none of the source's allowed groups.
    NotInGroup,
    /// The directory says the account is locked out.
    Locked,
    /// More than one directory entry matches the username.
    AmbiguousUser,
    /// The record names a directory source that is not configured.
    UnknownSource,
}

impl DenyReason {
    /// A stable code for the audit line and for dashboards.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadRequest(code) => code,
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
            Self::NoPasswordSet => "no_password_set",
            Self::NoKeys => "no_keys",
            Self::Disabled => "disabled",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::Inactive => "inactive",
            Self::PasswordExpired => "password_expired",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::ServerNotAllowed => "server_not_allowed",
            Self::ProtocolNotAllowed => "protocol_not_allowed",
            Self::InvalidRecord => "invalid_record",
            Self::SaltVersionMissing => "salt_version_missing",
            Self::StoreUnavailable => "store_unavailable",
            Self::KeyringUnavailable => "keyring_unavailable",
            Self::PolicyUnavailable => "policy_unavailable",
            Self::PolicyTooLarge => "policy_too_large",
            Self::PolicyInvalid => "policy_invalid",
            Self::Internal => "internal",
            Self::Banned => "banned",
            Self::Throttled => "throttled",
            Self::DirectoryUnavailable => "directory_unavailable",
            Self::NotInGroup => "not_in_group",
            Self::Locked => "locked",
            Self::AmbiguousUser => "ambiguous_user",
            Self::UnknownSource => "unknown_source",
        }
    }

    /// What this refusal says about the caller, for the defender's weights (the domain decides
    /// what each kind weighs).
    pub fn failure(self) -> Failure {
        match self {
            Self::UnknownUser => Failure::UnknownUser,
            Self::WrongPassword => Failure::WrongPassword,
            Self::NoPasswordSet
            | Self::NoKeys
            | Self::Disabled
            | Self::Invalid
            | Self::Expired
            | Self::Inactive
            | Self::PasswordExpired
            | Self::InvalidRecord
            | Self::SaltVersionMissing
            | Self::NotInGroup
            | Self::Locked
            | Self::AmbiguousUser
            | Self::UnknownSource => Failure::Refused,
            Self::IpNotAllowed | Self::ServerNotAllowed | Self::ProtocolNotAllowed => {
                Failure::Restricted
            }
            // The services' trouble or a session policy that cannot be served (after a right
            // password): nothing the caller did, and an outage must not turn into bans. A
            // request refused at the boundary never reaches the defender, nor does its own
            // refusal count again (a banned source's attempts cost one read and no write).
            Self::StoreUnavailable
            | Self::KeyringUnavailable
            | Self::PolicyUnavailable
            | Self::PolicyTooLarge
            | Self::PolicyInvalid
            | Self::Internal
            | Self::DirectoryUnavailable
            | Self::BadRequest(_)
            | Self::Banned
            | Self::Throttled => Failure::Ours,
        }
    }
}

/// The outcome of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(AuthResponse),
    Deny(DenyReason),
}

/// Settings that are not adapters.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_role_arn: String,
    pub salt_cache: Duration,
    pub policy_cache: Duration,
    /// How long a right password is remembered, so that the same password for the same stored
    /// hash skips Argon2 (zero: never). The record is still read on every login.
    pub verified_cache: Duration,
}

type Cached<T> = (Instant, Arc<T>);

/// The hashing thread could not run or finished without an answer (it should not happen).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the password hashing task failed")]
struct HashingFailed;

/// One Argon2 job per core: more would only queue on the cores while each holds its memory.
fn default_parallel_hashes() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// How long a salt version that a reload did not find is taken as missing without reloading
/// again. The first miss of a version always reloads (it may have just been made by a rotation);
/// a record naming a version that does not exist would otherwise make every guess at it reload
/// the secret: unbounded cost for the operator, and a slower denial that tells such a user apart.
pub const MISSING_VERSION_RETRY: Duration = Duration::from_secs(10);

/// At most this many missing versions are remembered (a few broken records, not an attack on
/// memory: the oldest are forgotten first).
const MISSING_VERSIONS_KEPT: usize = 64;

/// Authenticates logins against a user store, a salt keyring and a policy source (and, during a
/// migration, the seed design's table; with a defender, its failure store).
#[derive(Debug)]
pub struct Authenticator<U, S, P, L = NoLegacy, D = NoDefender> {
    users: U,
    salts: S,
    policies: P,
    legacy: L,
    defender: D,
    defender_config: DefenderConfig,
    settings: Settings,
    verifier: Arc<Verifier>,
    /// Argon2 runs at once (each holds a 19 MiB block): guesses beyond it wait their turn
    /// instead of each allocating its own block.
    hashing: Arc<Semaphore>,
    keyring: Mutex<Option<Cached<Keyring>>>,
    /// Salt versions a reload did not find, and when.
    missing_versions: Mutex<HashMap<String, Instant>>,
    /// The policy of the last answer (see [`Self::pace_like_an_allow`]).
    last_policy_arn: Mutex<Option<String>>,
    policy_docs: Mutex<HashMap<String, Cached<PolicyDocument>>>,
    /// Passwords verified within [`Settings::verified_cache`].
    verified: verified::VerifiedLogins,
    /// Where audit events go besides the log line (EventBridge, a file); none by default.
    audit_sink: Option<Arc<dyn AuditSink>>,
    /// The default inactivity and password-age limits (none unless set).
    lifecycle: Lifecycle,
    /// Directory identity sources, in the order users without a record are offered to them.
    directories: Vec<DirectorySource>,
}

impl<U: UserStore, S: SaltSource, P: PolicySource> Authenticator<U, S, P> {
    pub fn new(users: U, salts: S, policies: P, settings: Settings) -> Self {
        Self {
            users,
            salts,
            policies,
            legacy: NoLegacy,
            defender: NoDefender,
            defender_config: DefenderConfig::default(),
            verified: verified::VerifiedLogins::new(settings.verified_cache),
            settings,
            verifier: Arc::new(Verifier::new()),
            hashing: Arc::new(Semaphore::new(default_parallel_hashes())),
            keyring: Mutex::new(None),
            missing_versions: Mutex::new(HashMap::new()),
            last_policy_arn: Mutex::new(None),
            policy_docs: Mutex::new(HashMap::new()),
            audit_sink: None,
            lifecycle: Lifecycle::default(),
            directories: Vec::new(),
        }
    }
}

impl<U, S, P, L, D> Authenticator<U, S, P, L, D> {
    /// Hands every login decision and every lock the defender begins to `sink` as an audit
    /// event (besides the log line every login writes anyway).
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit_sink = Some(sink);
        self
    }

    /// At most `n` password hashes or verifications at once (default: one per core). 0 is taken
    /// as 1: a login must be able to make progress.
    pub fn with_parallel_hashes(mut self, n: usize) -> Self {
        self.hashing = Arc::new(Semaphore::new(n.max(1)));
        self
    }

    /// The inactivity and password-age limits of users who set none of their own (default: no
    /// limit). A builder rather than a [`Settings`] field, so that every entry point without
    /// limits (the CLI's `login`, tests) is built as before.
    pub fn with_lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// Verifies the users whose record names one of `sources` against that directory, and
    /// admits users with no record through the sources that have a default profile (tried in
    /// this order). Without this (the default), every user is ferry's own.
    pub fn with_directories(mut self, sources: Vec<DirectorySource>) -> Self {
        self.directories = sources;
        self
    }

    /// Remembers at most `n` verified logins (default [`VERIFIED_LOGINS_KEPT`]; 0: none).
    pub fn with_verified_logins_kept(mut self, n: usize) -> Self {
        self.verified = self.verified.with_capacity(n);
        self
    }
}

impl<U, S, P, D> Authenticator<U, S, P, NoLegacy, D> {
    /// Migrates users of the seed design's table at their first login.
    pub fn with_legacy<L: LegacyUsers>(self, legacy: L) -> Authenticator<U, S, P, L, D> {
        Authenticator {
            users: self.users,
            salts: self.salts,
            policies: self.policies,
            legacy,
            defender: self.defender,
            defender_config: self.defender_config,
            settings: self.settings,
            verifier: self.verifier,
            hashing: self.hashing,
            keyring: self.keyring,
            missing_versions: self.missing_versions,
            last_policy_arn: self.last_policy_arn,
            policy_docs: self.policy_docs,
            verified: self.verified,
            audit_sink: self.audit_sink,
            lifecycle: self.lifecycle,
            directories: self.directories,
        }
    }
}

impl<U, S, P, L> Authenticator<U, S, P, L, NoDefender> {
    /// Guards every login with the defender: its tallies live in `store`, its rules are
    /// `config`. Without this (the default), nothing is counted and nothing refused.
    pub fn with_defender<D: FailureStore>(
        self,
        store: D,
        config: DefenderConfig,
    ) -> Authenticator<U, S, P, L, D> {
        Authenticator {
            users: self.users,
            salts: self.salts,
            policies: self.policies,
            legacy: self.legacy,
            defender: store,
            defender_config: config,
            settings: self.settings,
            verifier: self.verifier,
            hashing: self.hashing,
            keyring: self.keyring,
            missing_versions: self.missing_versions,
            last_policy_arn: self.last_policy_arn,
            policy_docs: self.policy_docs,
            verified: self.verified,
            audit_sink: self.audit_sink,
            lifecycle: self.lifecycle,
            directories: self.directories,
        }
    }
}

impl<U: UserStore, S: SaltSource, P: PolicySource, L: LegacyUsers, D: FailureStore>
    Authenticator<U, S, P, L, D>
{
    /// Handles a raw invocation event of either shape and answers in that shape, writing one
    /// audit line. Never fails: anything unusable is a denial.
    pub async fn handle_event(&self, event: &Value) -> Value {
        let started = Instant::now();
        let (shape, request) = read_event(event);
        let decision = match request {
            Ok(req) => {
                let decision = self.authenticate(&req).await;
                self.audit_decision(&req, &decision, started.elapsed());
                decision
            }
            Err((err, partial)) => {
                let decision = Decision::Deny(DenyReason::BadRequest(err.code()));
                self.record(&decision, &partial, "unknown", started.elapsed());
                decision
            }
        };
        match decision {
            Decision::Allow(response) => render(shape, Some(&response)),
            Decision::Deny(_) => render(shape, None),
        }
    }

    /// The audit line and the audit event of a decision `authenticate` made, for entry points
    /// that call it directly (`ferry up`'s SSH logins) and for `handle_event`.
    pub fn audit_decision(&self, req: &AuthRequest, decision: &Decision, latency: Duration) {
        let partial = Partial {
            username: Some(req.username.clone()),
            server_id: Some(req.server_id.clone()),
            protocol: Some(req.protocol),
            source_ip: Some(req.source_ip),
        };
        self.record(decision, &partial, flow_name(&req.credential), latency);
    }

    /// One decision's audit line, and its event when a sink is set.
    fn record(
        &self,
        decision: &Decision,
        partial: &Partial,
        flow: &'static str,
        latency: Duration,
    ) {
        audit(decision, partial, flow, latency);
        if let Some(sink) = &self.audit_sink {
            sink.submit(login_event(decision, partial, flow, latency));
        }
    }

    /// `req` judged while every hashing permit is held, so that no Argon2 job can start: the
    /// decision if the login needed none, `None` if it waited for one. Every Argon2 run goes
    /// through those permits, and with the ports in memory a permit is the only thing a login
    /// can wait for. Tests call it on tokio's paused clock, so the wait is given up as soon as
    /// nothing else can run: nothing here measures time.
    #[cfg(test)]
    pub(crate) async fn judged_without_argon2(&self, req: &AuthRequest) -> Option<Decision> {
        let permits = u32::try_from(self.hashing.available_permits()).ok()?;
        let _held = Arc::clone(&self.hashing)
            .try_acquire_many_owned(permits)
            .ok()?;
        tokio::time::timeout(Duration::from_secs(3600), self.authenticate(req))
            .await
            .ok()
    }

    /// Decides one validated login.
    pub async fn authenticate(&self, req: &AuthRequest) -> Decision {
        if !self.defender.enabled() || self.defender_config.is_safe(req.source_ip) {
            return self.judge(req).await;
        }
        self.defended(req).await
    }

    /// A login under the defender: refused if its source is banned or its pair throttled,
    /// delayed if its account is slowed, then judged, then counted.
    async fn defended(&self, req: &AuthRequest) -> Decision {
        let flow = match req.credential {
            Credential::Password(_) => Flow::Password,
            Credential::PublicKey => Flow::PublicKey,
        };
        let keys = AttemptKeys::of(&req.username, req.source_ip);
        // Failing open, for the defender only: a store that cannot answer must not refuse
        // every login (an outage of the defender's table would otherwise lock every user out),
        // and the login is still judged in full, by stores that fail closed on their own. What
        // is lost is the brute-force protection for as long as the outage lasts, which the
        // warning below says.
        let read = match self.defender.tallies(&keys.to_array()).await {
            Ok(tallies) => Some([0, 1, 2].map(|i| tallies.get(i).copied().flatten())),
            Err(e) => {
                log_store_error(
                    &e,
                    "defender store unavailable; judging this login without it",
                );
                None
            }
        };
        let read_failed = read.is_none();
        let before = read.unwrap_or_default();
        if !read_failed {
            let gate = self.defender_config.gate(
                req.source_ip,
                flow,
                before.each_ref().map(Option::as_ref),
                now_epoch(),
            );
            match gate {
                Gate::Refuse(Standing::Banned { .. }) => return Decision::Deny(DenyReason::Banned),
                Gate::Refuse(_) => return Decision::Deny(DenyReason::Throttled),
                // Before the verification, outside the hashing permits: a slowed account's
                // guesses wait without holding back anyone else's login.
                Gate::Pass { delay: Some(delay) } => tokio::time::sleep(delay).await,
                Gate::Pass { delay: None } => {}
            }
        }
        let decision = self.judge(req).await;
        match &decision {
            // A right password clears its pair. A pair never counted needs no write (after a
            // failed read we cannot tell). Only a password proves anything: a key login we
            // answer is checked by Transfer after us, so clearing the pair on it would let a
            // guesser reset the throttle with a key login between guesses.
            Decision::Allow(_)
                if flow == Flow::Password
                    && (read_failed || before[KeyKind::Pair.slot()].is_some()) =>
            {
                if let Err(e) = self.defender.clear(&keys.pair).await {
                    log_store_error(&e, "clearing the pair after a right password failed");
                }
            }
            Decision::Allow(_) => {}
            Decision::Deny(reason) => {
                let now = now_epoch();
                let mut charges = self
                    .defender_config
                    .charges(&keys, req.source_ip, flow, reason.failure())
                    .into_iter();
                // At most three writes, made at once: a refusal waits for one round trip, not
                // three.
                let (source, pair, account) = (charges.next(), charges.next(), charges.next());
                tokio::join!(
                    self.charge(source, &before, now),
                    self.charge(pair, &before, now),
                    self.charge(account, &before, now),
                );
                for rest in charges {
                    self.charge(Some(rest), &before, now).await;
                }
            }
        }
        decision
    }

    /// Counts one failure. A lock it began (the key's `until` moved past `now`), or a private
    /// source it took past the ban threshold, is an audit event. A store that fails is logged
    /// and the login stands.
    async fn charge(&self, charge: Option<Charge>, before: &[Option<Tally>; 3], now: i64) {
        let Some(Charge { key, weight, rule }) = charge else {
            return;
        };
        let after = match self.defender.record_failure(&key, weight, &rule, now).await {
            Ok(after) => after,
            Err(e) => {
                log_store_error(
                    &e,
                    "counting a refused login failed; the defender missed it",
                );
                return;
            }
        };
        let kind = key.kind();
        let was = before[kind.slot()];
        if after.until > now && was.is_none_or(|b| b.until != after.until) {
            if let Some(sink) = &self.audit_sink {
                sink.submit(AuditEvent::Defender(DefenderEvent {
                    action: Standing::of(kind, Some(&after), now).code(),
                    key: key.to_string(),
                    until: after.until,
                    strikes: after.strikes,
                    at: now,
                }));
            }
            info!(
                target: "ferry::audit",
                action = Standing::of(kind, Some(&after), now).code(),
                key = %key,
                until = after.until,
                strikes = after.strikes,
                score = after.score,
                "defender"
            );
        }
        let threshold = self.defender_config.source.threshold.max(1);
        if kind == KeyKind::Source
            && rule.lock.is_none()
            && after.score >= threshold
            && after.score.saturating_sub(weight) < threshold
        {
            warn!(
                target: "ferry::audit",
                action = "private_source_not_banned",
                key = %key,
                score = after.score,
                "defender"
            );
        }
    }

    /// Judges a login on its merits (the defender has had its say).
    async fn judge(&self, req: &AuthRequest) -> Decision {
        match &req.credential {
            // Boxed: the password path is deep (lookup, Argon2, re-hash, migration), and a
            // caller's future would otherwise nest all of it.
            Credential::Password(password) => Box::pin(self.password_login(req, password)).await,
            Credential::PublicKey => self.key_login(req).await,
        }
    }

    async fn password_login(&self, req: &AuthRequest, password: &Password) -> Decision {
        // With directory sources, the record is read first to learn whose the user is; the local
        // check then uses that read rather than making another.
        let mut read = None;
        if !self.directories.is_empty() {
            let user = self.users.get_user(&req.username).await;
            match &user {
                Ok(Some(record)) if record.identity_source().is_some() => {
                    let decision =
                        Box::pin(self.directory_password_login(req, password, record)).await;
                    return self.paced(decision, password).await;
                }
                Ok(None) if self.directories.iter().any(|d| d.default_profile.is_some()) => {
                    if let Some(decision) =
                        Box::pin(self.unlisted_password_login(req, password)).await
                    {
                        return self.paced(decision, password).await;
                    }
                }
                _ => {}
            }
            read = Some(user);
        }
        self.local_password_login(req, password, read).await
    }

    /// A directory's password refusal pays the one Argon2 verification every password denial
    /// pays (against the dummy hash), so a directory user's wrong password is not answered
    /// sooner than a local one's or an unknown user's: the time does not tell whose user it was.
    async fn paced(&self, decision: Decision, password: &Password) -> Decision {
        if matches!(decision, Decision::Deny(_)) {
            let peppered = pepper("", password);
            let verifier = Arc::clone(&self.verifier);
            let _ = self
                .hash_blocking(move || verifier.verify(DUMMY_HASH, &peppered))
                .await;
        }
        decision
    }

    /// A password login judged by ferry's own hash. `read` is the record when the caller has
    /// read it already.
    async fn local_password_login(
        &self,
        req: &AuthRequest,
        password: &Password,
        read: Option<Result<Option<UserRecord>, StoreError>>,
    ) -> Decision {
        let (user, keyring) = match self.check_password(req, password, read).await {
            Ok(found) => found,
            Err((reason, keyring)) => {
                // Every denied password login pays for the same lookup, so a legacy table does
                // not tell unknown users from wrong passwords.
                if self.legacy.enabled()
                    && let Some(k) = keyring
                    // Boxed: the migration nests a whole login, and would otherwise make every
                    // login's future (and the compiler's layout of it) much larger.
                    && let Some(decision) =
                        Box::pin(self.migrate(req, password, &k, reason)).await
                {
                    return decision;
                }
                return Decision::Deny(reason);
            }
        };
        if let Some(denied) = restriction_denial(&user, req) {
            // A wrong password pays for the legacy lookup; a right one refused by the address,
            // server or protocol lists pays for it too, so the time does not say the password
            // was right. (The lookup cannot migrate: the user exists.)
            if self.legacy.enabled() {
                let _ = Box::pin(self.migrate(req, password, &keyring, denied)).await;
            }
            return Decision::Deny(denied);
        }
        self.rehash(&user, password, &keyring).await;
        self.respond(&user, None).await
    }

    /// The user and keyring when the password is right; otherwise the reason, with the keyring
    /// when it could be read.
    async fn check_password(
        &self,
        req: &AuthRequest,
        password: &Password,
        read: Option<Result<Option<UserRecord>, StoreError>>,
    ) -> Result<(UserRecord, Arc<Keyring>), (DenyReason, Option<Arc<Keyring>>)> {
        let user = match read {
            Some(user) => user,
            None => self.users.get_user(&req.username).await,
        };
        let mut keyring = self.keyring().await;
        // A user already on a salt newer than the cached keyring (re-hashed by another instance
        // just after a rotation): reload once before judging.
        if let (Ok(Some(u)), Ok(k)) = (&user, &keyring)
            && let Some(version) = u.salt_version.as_deref()
            && k.salt(version).is_none()
            && !self.known_missing(version)
        {
            keyring = self.reload_keyring().await;
            if let Ok(k) = &keyring
                && k.salt(version).is_none()
            {
                self.remember_missing(version);
            }
        }
        // Pick the real hash and salt when everything needed is there; otherwise the dummy, so
        // that exactly one Argon2 run happens on every path.
        let real = match (&user, &keyring) {
            (Ok(Some(u)), Ok(k)) => match (
                &u.password_hash,
                u.salt_version.as_deref().and_then(|v| k.salt(v)),
            ) {
                (Some(hash), Some(salt)) if u.status == Status::Active => {
                    Some((hash.clone(), salt.to_owned()))
                }
                _ => None,
            },
            _ => None,
        };
        let (phc, salt) = match &real {
            Some((hash, salt)) => (hash.clone(), salt.clone()),
            None => (
                DUMMY_HASH.to_owned(),
                keyring
                    .as_ref()
                    .map(|k| k.current_salt().to_owned())
                    .unwrap_or_default(),
            ),
        };
        let peppered = pepper(&salt, password);
        // The verified-login cache: a key only for a real hash (it binds the user, the stored
        // hash, the salt version and the peppered password, so no change can leave a stale match),
        // and a hit only for a record that would let this login in as it stands now (status,
        // expiry, address, server, protocol). A record that refuses the login, like a wrong
        // password, runs Argon2 as before: no denial is answered sooner because of the cache.
        let remembered = match (&user, &real) {
            (Ok(Some(u)), Some((hash, _))) if self.verified.enabled() => Some(verified_login_key(
                u.username.as_str(),
                hash,
                u.salt_version.as_deref().unwrap_or_default(),
                &peppered,
            )),
            _ => None,
        };
        let hit = match (&user, &remembered) {
            (Ok(Some(u)), Some(key)) => {
                account_denial(u, &self.lifecycle, Flow::Password).is_none()
                    && restriction_denial(u, req).is_none()
                    && self.verified.contains(key, Instant::now())
            }
            _ => false,
        };
        let verified = if hit {
            Ok(Ok(true))
        } else {
            let verifier = Arc::clone(&self.verifier);
            self.hash_blocking(move || match verifier.verify(&phc, &peppered) {
                Ok(ok) => Ok(ok),
                Err(e) => {
                    // Keep the time equal even for a broken stored hash.
                    let _ = verifier.verify(DUMMY_HASH, &peppered);
                    Err(e)
                }
            })
            .await
        };
        let known = keyring.as_ref().ok().cloned();
        let deny = |reason| Err((reason, known.clone()));
        let (user, keyring) = match (user, keyring) {
            (Err(e), _) => {
                log_store_error(&e, "user lookup failed");
                return deny(denial_for(&e, Lookup::User));
            }
            (Ok(None), _) => return deny(DenyReason::UnknownUser),
            (Ok(Some(_)), Err(e)) => {
                log_store_error(&e, "salt keyring unavailable");
                return deny(DenyReason::KeyringUnavailable);
            }
            (Ok(Some(u)), Ok(k)) => {
                if let Some(denied) = account_denial(&u, &self.lifecycle, Flow::Password) {
                    return deny(denied);
                }
                // A directory user whose source is not configured here: never ferry's hash.
                if u.identity_source().is_some() {
                    return deny(DenyReason::UnknownSource);
                }
                if u.password_hash.is_none() {
                    return deny(DenyReason::NoPasswordSet);
                }
                if u.salt_version.as_deref().and_then(|v| k.salt(v)).is_none() {
                    return deny(DenyReason::SaltVersionMissing);
                }
                (u, k)
            }
        };
        match verified {
            Ok(Ok(true)) if real.is_some() => {
                // Only a verification Argon2 made is remembered, from when it ended (a hit does
                // not extend its entry: the TTL runs from the last real verification).
                if let Some(key) = remembered
                    && !hit
                {
                    self.verified.remember(key, Instant::now());
                }
                Ok((user, keyring))
            }
            Ok(Ok(_)) => deny(DenyReason::WrongPassword),
            Ok(Err(e)) => {
                warn!(username = %user.username, error = %e, "stored password hash is unusable");
                deny(DenyReason::InvalidRecord)
            }
            Err(e) => {
                warn!(error = %e, "password verification task failed");
                deny(DenyReason::Internal)
            }
        }
    }

    /// After a successful login: moves the hash to the current salt and cost if it is not there.
    /// A failure is logged; the login stands.
    async fn rehash(&self, user: &UserRecord, password: &Password, keyring: &Keyring) {
        let Some(old) = &user.password_hash else {
            return;
        };
        let current = keyring.current_version();
        if user.salt_version.as_deref() == Some(current) && !needs_rehash(old) {
            return;
        }
        let Some(hash) = self.hash_current(password, keyring).await else {
            return;
        };
        match self
            .users
            .replace_hash(&user.username, old, &hash, current)
            .await
        {
            Ok(true) => info!(
                username = %user.username,
                from_version = user.salt_version.as_deref(),
                to_version = current,
                "password re-hashed under the current salt"
            ),
            Ok(false) => {
                info!(username = %user.username, "re-hash skipped: the record changed meanwhile")
            }
            Err(e) => log_store_error(&e, "re-hash failed; the login stands"),
        }
    }

    /// A new hash of `password` under the keyring's current salt (one Argon2 run).
    async fn hash_current(&self, password: &Password, keyring: &Keyring) -> Option<String> {
        let salt = keyring.current_salt().to_owned();
        let password = password.clone();
        match self
            .hash_blocking(move || hash_password(&salt, &password))
            .await
        {
            Ok(Ok(hash)) => Some(hash),
            Ok(Err(e)) => {
                warn!(error = %e, "hashing failed");
                None
            }
            Err(e) => {
                warn!(error = %e, "hashing task failed");
                None
            }
        }
    }

    async fn key_login(&self, req: &AuthRequest) -> Decision {
        let user = match self.users.get_user(&req.username).await {
            Err(e) => return store_denial(e, "user lookup failed"),
            Ok(None) if self.directories.iter().any(|d| d.default_profile.is_some()) => {
                return Box::pin(self.unlisted_key_login(req)).await;
            }
            Ok(Some(record)) if record.identity_source().is_some() => {
                return Box::pin(self.directory_key_login(req, &record)).await;
            }
            Ok(None) => {
                self.pace_like_an_allow(None).await;
                return Decision::Deny(DenyReason::UnknownUser);
            }
            Ok(Some(u)) => u,
        };
        let keys = user.live_keys(now_epoch());
        let denied = account_denial(&user, &self.lifecycle, Flow::PublicKey)
            .or_else(|| restriction_denial(&user, req))
            .or_else(|| keys.is_empty().then_some(DenyReason::NoKeys));
        if let Some(denied) = denied {
            self.pace_like_an_allow(Some(&user.policy_arn)).await;
            return Decision::Deny(denied);
        }
        self.respond(&user, Some(keys)).await
    }

    /// A key login that is allowed reads the user's policy (Transfer then checks the offered key,
    /// so a known user with a wrong key is refused only after that read). A denied key login
    /// makes the same read, of the user's own policy or, for an unknown user, of the policy
    /// served last, so that no key-login denial is answered sooner than an allow: the time
    /// tells nothing about whether the user exists. The result is not used.
    async fn pace_like_an_allow(&self, arn: Option<&str>) {
        let arn = match arn {
            Some(a) => Some(a.to_owned()),
            None => lock(&self.last_policy_arn).clone(),
        };
        if let Some(arn) = arn {
            let _ = self.policy(&arn).await;
        }
    }

    /// Builds the answer for an authenticated user and records the login meanwhile: the write
    /// (at most one an hour per user) runs while the policy is read, so a login waits for the
    /// longer of the two, not for both. With the policy cached, that one login of the hour waits
    /// for the write; a refused key login (paced by a policy read only) does not, so a prober
    /// could tell a user with a live key at most once an hour per user.
    async fn respond(&self, user: &UserRecord, public_keys: Option<Vec<String>>) -> Decision {
        let (decision, ()) = tokio::join!(self.answer(user, public_keys), self.record_login(user));
        decision
    }

    /// Sets `lastLoginAt` when the stored one is missing or an hour old, only over the value this
    /// login read (a concurrent login that recorded it first wins). A failure is logged; the
    /// login stands. Recorded for key logins too: Transfer checks the offered key after our
    /// answer, so for a key login this is the last login we answered, not one Transfer let in.
    async fn record_login(&self, user: &UserRecord) {
        let now = now_epoch();
        if !login_worth_recording(user.last_login_at, now) {
            return;
        }
        match self
            .users
            .touch_last_login(&user.username, user.last_login_at, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                info!(username = %user.username, "last login not recorded: the record changed meanwhile");
            }
            Err(e) => log_store_error(&e, "recording the last login failed; the login stands"),
        }
    }

    /// Builds the answer for an authenticated user.
    async fn answer(&self, user: &UserRecord, public_keys: Option<Vec<String>>) -> Decision {
        *lock(&self.last_policy_arn) = Some(user.policy_arn.clone());
        let policy = match self.policy(&user.policy_arn).await {
            Ok(doc) => doc,
            Err(e) => {
                log_store_error(&e, "session policy unavailable");
                return Decision::Deny(denial_for(&e, Lookup::Policy));
            }
        };
        let policy = match policy.as_session_policy() {
            Ok(p) => p.to_owned(),
            Err(PolicyError::TooLarge(n)) => {
                warn!(policy_arn = %user.policy_arn, chars = n, "session policy exceeds 2,048 characters");
                return Decision::Deny(DenyReason::PolicyTooLarge);
            }
            Err(_) => return Decision::Deny(DenyReason::PolicyInvalid),
        };
        let (home_directory_type, home_directory, home_directory_details) = match &user.home {
            Home::Path(path) => ("PATH", Some(path.clone()), None),
            Home::Logical(mappings) => (
                "LOGICAL",
                None,
                Some(AuthResponse::mappings_string(mappings)),
            ),
        };
        Decision::Allow(AuthResponse {
            role: user
                .role_arn
                .clone()
                .unwrap_or_else(|| self.settings.default_role_arn.clone()),
            policy: Some(policy),
            home_directory_type,
            home_directory,
            home_directory_details,
            public_keys,
            posix_profile: user.posix_profile.clone(),
        })
    }

    /// Runs one Argon2 job on a blocking thread once a hashing permit is free. The permit is
    /// held until the job ends, so at most the semaphore's size of 19 MiB blocks exist at once
    /// however many logins arrive together.
    async fn hash_blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingFailed> {
        let permit = Arc::clone(&self.hashing)
            .acquire_owned()
            .await
            .map_err(|_| HashingFailed)?;
        tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            out
        })
        .await
        .map_err(|_| HashingFailed)
    }

    /// The keyring, from the warm cache while it is fresh.
    async fn keyring(&self) -> Result<Arc<Keyring>, StoreError> {
        if let Some((at, k)) = &*lock(&self.keyring)
            && at.elapsed() < self.settings.salt_cache
        {
            return Ok(Arc::clone(k));
        }
        let fresh = Arc::new(self.salts.load_keyring().await?);
        *lock(&self.keyring) = Some((Instant::now(), Arc::clone(&fresh)));
        Ok(fresh)
    }

    /// Reloads the keyring now: a keyring read even a moment ago may predate the rotation that
    /// made a user's version. (Repeated misses of one version are throttled by the caller.)
    async fn reload_keyring(&self) -> Result<Arc<Keyring>, StoreError> {
        let fresh = Arc::new(self.salts.load_keyring().await?);
        *lock(&self.keyring) = Some((Instant::now(), Arc::clone(&fresh)));
        Ok(fresh)
    }

    /// Whether a reload less than [`MISSING_VERSION_RETRY`] ago did not find `version`.
    fn known_missing(&self, version: &str) -> bool {
        lock(&self.missing_versions)
            .get(version)
            .is_some_and(|at| at.elapsed() < MISSING_VERSION_RETRY)
    }

    fn remember_missing(&self, version: &str) {
        let mut missing = lock(&self.missing_versions);
        missing.retain(|_, at| at.elapsed() < MISSING_VERSION_RETRY);
        if missing.len() >= MISSING_VERSIONS_KEPT
            && let Some(oldest) = missing
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(v, _)| v.clone())
        {
            missing.remove(&oldest);
        }
        missing.insert(version.to_owned(), Instant::now());
    }

    /// A policy document by ARN, from the warm cache while it is fresh.
    async fn policy(&self, arn: &str) -> Result<Arc<PolicyDocument>, StoreError> {
        if let Some((at, doc)) = lock(&self.policy_docs).get(arn)
            && at.elapsed() < self.settings.policy_cache
        {
            return Ok(Arc::clone(doc));
        }
        let fresh = Arc::new(self.policies.load_policy(arn).await?);
        let mut cache = lock(&self.policy_docs);
        // Drop expired entries so a long-lived process does not grow without bound.
        let ttl = self.settings.policy_cache;
        cache.retain(|_, (at, _)| at.elapsed() < ttl);
        cache.insert(arn.to_owned(), (Instant::now(), Arc::clone(&fresh)));
        Ok(fresh)
    }

    /// Forgets cached keyring, policies and verified logins (the rotation function and tests
    /// use this).
    pub fn clear_caches(&self) {
        *lock(&self.keyring) = None;
        self.verified.clear();
        lock(&self.policy_docs).clear();
        lock(&self.missing_versions).clear();
    }
}

/// Status, expiry and inactivity refuse every kind of login; a password past its maximum age
/// refuses password logins (a key login does not use it). `lifecycle` holds the default limits.
fn account_denial(user: &UserRecord, lifecycle: &Lifecycle, flow: Flow) -> Option<DenyReason> {
    let now = now_epoch();
    match user.status {
        Status::Disabled => Some(DenyReason::Disabled),
        Status::Invalid => Some(DenyReason::Invalid),
        Status::Active if user.is_expired(now) => Some(DenyReason::Expired),
        Status::Active if lifecycle.is_inactive(user, now) => Some(DenyReason::Inactive),
        Status::Active if flow == Flow::Password && lifecycle.password_expired(user, now) => {
            Some(DenyReason::PasswordExpired)
        }
        Status::Active => None,
    }
}

/// Source IP, server and protocol lists: these too apply to both flows.
fn restriction_denial(user: &UserRecord, req: &AuthRequest) -> Option<DenyReason> {
    if !user.ip_allowed(req.source_ip) {
        Some(DenyReason::IpNotAllowed)
    } else if !user.server_allowed(&req.server_id) {
        Some(DenyReason::ServerNotAllowed)
    } else if !user.protocol_allowed(req.protocol) {
        Some(DenyReason::ProtocolNotAllowed)
    } else {
        None
    }
}

fn store_denial(e: StoreError, context: &'static str) -> Decision {
    log_store_error(&e, context);
    Decision::Deny(denial_for(&e, Lookup::User))
}

/// What a failed store call was about, for [`denial_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// The user's record, read or written.
    User,
    /// The user's session policy.
    Policy,
}

/// The one mapping of a store failure to a denial reason. Something stored that cannot be used
/// is the record's (or the policy's) fault, which no retry fixes; any other failure (the service
/// is down, the policy is gone) counts as unavailable. Dashboards tell the two apart.
fn denial_for(e: &StoreError, what: Lookup) -> DenyReason {
    match (e, what) {
        (StoreError::Malformed(_), Lookup::User) => DenyReason::InvalidRecord,
        (StoreError::Malformed(_), Lookup::Policy) => DenyReason::PolicyInvalid,
        (_, Lookup::User) => DenyReason::StoreUnavailable,
        (_, Lookup::Policy) => DenyReason::PolicyUnavailable,
    }
}

fn log_store_error(e: &StoreError, context: &'static str) {
    // The source chain of an SDK error names the operation and service code, never our inputs'
    // secrets (passwords are not sent to any service).
    let chain = error_chain(e);
    warn!(error = %chain, "{context}");
}

fn flow_name(c: &Credential) -> &'static str {
    match c {
        Credential::Password(_) => "password",
        Credential::PublicKey => "public_key",
    }
}

/// The one audit line per login. Never the password, the salt, the hash or the raw event.
fn audit(decision: &Decision, p: &Partial, flow: &'static str, latency: Duration) {
    let (outcome, reason) = match decision {
        Decision::Allow(_) => ("allow", "ok"),
        Decision::Deny(r) => ("deny", r.code()),
    };
    info!(
        target: "ferry::audit",
        outcome,
        reason,
        flow,
        username = p.username.as_ref().map(|u| u.as_str()),
        server_id = p.server_id.as_deref(),
        protocol = p.protocol.map(|x| x.as_str()),
        source_ip = p.source_ip.map(|ip| ip.to_string()),
        // Behind a load balancer without PROXY protocol, or a NAT, every login seems to come
        // from one private address: the defender never bans it, and this says why.
        source_private = p.source_ip.map(is_private),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "login"
    );
}

/// The audit event of one login: the fields of the audit line.
fn login_event(
    decision: &Decision,
    p: &Partial,
    flow: &'static str,
    latency: Duration,
) -> AuditEvent {
    let (outcome, reason) = match decision {
        Decision::Allow(_) => ("allow", "ok"),
        Decision::Deny(r) => ("deny", r.code()),
    };
    AuditEvent::Login(LoginEvent {
        outcome,
        reason,
        flow,
        username: p.username.as_ref().map(|u| u.as_str().to_owned()),
        server_id: p.server_id.clone(),
        protocol: p.protocol.map(|x| x.as_str()),
        source_ip: p.source_ip.map(|ip| ip.to_string()),
        source_private: p.source_ip.is_some_and(is_private),
        latency_ms: latency.as_secs_f64() * 1000.0,
        at: now_epoch(),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned cache is still a valid cache: nothing is half-written under these locks.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
