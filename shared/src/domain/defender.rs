//! The defender's rules: brute-force protection applied to every login, as pure code. Time comes
//! in as epoch seconds; nothing here reads a clock or a store.
//!
//! Every refused login is counted under three keys ([`DefenderKey`]):
//! - its **source** (an IPv4 address or an IPv6 /64, see [`SourceKey`]): a weighted score; past
//!   [`DefenderConfig::source`]'s threshold the source is **banned**, for a time that doubles on
//!   each repeat and is capped;
//! - the **pair** (username, source): past [`DefenderConfig::pair`]'s threshold that pair is
//!   **throttled** (refused) for a while; a right password from it clears the pair;
//! - the **account** (username, from any source, password logins only): past
//!   [`DefenderConfig::account`]'s threshold every password attempt for it is **slowed** by
//!   [`DefenderConfig::account_delay`]. Never a lockout (NIST SP 800-63B §5.2.2): a right password
//!   from a source that is neither banned nor throttled still gets in, so no one can lock an
//!   owner out by guessing at their username from elsewhere.
//!
//! Sources on the safe list are never counted nor refused. Private addresses ([`is_private`]:
//! a load balancer without PROXY protocol, a NAT) stand for many clients: they are counted and
//! reported but never banned, and their pairs never throttled, since either would lock out
//! everyone behind them.
//!
//! Each key has one [`Tally`]. Its window opens at the first failure after the last window
//! closed and runs for the rule's window; failures inside it add up, the first one after it
//! starts a new window. (A window from the first failure rather than a sliding one keeps a tally
//! to four numbers that a store updates atomically with an ADD: see
//! `crate::ports::FailureStore`.)

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::domain::source::{SourceKey, SourceKeyError, is_private};
use crate::domain::username::{Username, UsernameError};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// The attribute names a store keeps a [`Tally`] under, in one place for every backend.
pub mod attr {
    /// The key's string form ([`super::DefenderKey`]'s `Display`): the partition key.
    pub const KEY: &str = "key";
    pub const WINDOW_START: &str = "windowStart";
    pub const SCORE: &str = "score";
    pub const UNTIL: &str = "until";
    pub const STRIKES: &str = "strikes";
    /// Epoch seconds after which the item means nothing (DynamoDB's TTL attribute).
    pub const EXPIRES_AT: &str = "expiresAt";
}

/// Which kind of login was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Password,
    PublicKey,
}

/// What a refused login says about the caller, which decides its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No such user.
    UnknownUser,
    /// A password that did not match.
    WrongPassword,
    /// Any other refusal of a login that did not prove itself: no password set, no live key,
    /// a disabled, invalid or expired user, a stored record that cannot be used.
    Refused,
    /// The right password, refused by the user's own address, server or protocol lists. In a key
    /// login nothing is proven yet, so there this weighs as any key-login refusal.
    Restricted,
    /// Ours, not the caller's: a service that did not answer, a session policy that cannot be
    /// served, the defender's own refusal. An outage must never turn into bans.
    Ours,
}

/// How much each refusal adds to its source's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    /// Default 2: guessing at names is what a scanner does, and a user who mistypes their own
    /// name is rarer than one who mistypes their password.
    pub unknown_user: u32,
    /// Default 1.
    pub wrong_password: u32,
    /// Any other password-login refusal except the user's own lists (those weigh nothing: the
    /// password was right). Default 1.
    pub other_password: u32,
    /// Any key-login refusal. Default 1.
    pub key_login: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            unknown_user: 2,
            wrong_password: 1,
            other_password: 1,
            key_login: 1,
        }
    }
}

impl Weights {
    /// The source score a refusal adds.
    pub fn of(&self, flow: Flow, failure: Failure) -> u32 {
        match (flow, failure) {
            (_, Failure::Ours) => 0,
            (Flow::PublicKey, _) => self.key_login,
            (Flow::Password, Failure::UnknownUser) => self.unknown_user,
            (Flow::Password, Failure::WrongPassword) => self.wrong_password,
            (Flow::Password, Failure::Refused) => self.other_password,
            (Flow::Password, Failure::Restricted) => 0,
        }
    }
}

/// What happens to a key once its score reaches the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    /// The first lock's length.
    pub first: Duration,
    /// Each repeat lasts this many times the one before (1: always `first`).
    pub growth: u32,
    /// No lock lasts longer.
    pub cap: Duration,
    /// A lock that starts less than this after the previous one ended is a repeat; later, the
    /// count of repeats starts again.
    pub repeat_within: Duration,
}

impl Lock {
    /// The length of the `strike`-th lock in a row (1 for the first): `first × growth^(strike-1)`,
    /// at most `cap`.
    pub fn duration(&self, strike: u32) -> Duration {
        let factor = self
            .growth
            .max(1)
            .checked_pow(strike.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.cap)
    }
}

/// How one key is counted: a score reaching `threshold` within `window` locks it, if the rule
/// locks at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Taken as at least 1.
    pub threshold: u32,
    pub window: Duration,
    /// `None`: counted only (a private source).
    pub lock: Option<Lock>,
}

/// One key's state. Carries no password, no hash: scores and times only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// When the current window opened (epoch seconds).
    pub window_start: i64,
    /// The weighted failures counted in that window.
    pub score: u32,
    /// The current or last lock's end (epoch seconds); 0 if never locked.
    pub until: i64,
    /// Locks in a row, each a repeat of the one before (0: never locked).
    pub strikes: u32,
}

impl Rule {
    /// The same counting without any lock.
    pub fn count_only(self) -> Self {
        Self { lock: None, ..self }
    }

    /// Whether `tally`'s window is still open at `now`.
    pub fn window_open(&self, tally: &Tally, now: i64) -> bool {
        now < tally.window_start.saturating_add(secs(self.window))
    }

    /// The tally after one failure of `weight` at `now`: added to the open window, or the first
    /// of a new one; then, if that reaches the threshold and the key is not locked already, a
    /// lock begins (see [`Rule::lock_at`]). A weight of 0 counts nothing and never locks.
    pub fn after_failure(&self, before: Option<&Tally>, weight: u32, now: i64) -> Tally {
        let mut tally = before.copied().unwrap_or_default();
        if before.is_some_and(|t| self.window_open(t, now)) {
            tally.score = tally.score.saturating_add(weight);
        } else {
            tally.window_start = now;
            tally.score = weight;
        }
        if self.lock_due(&tally, weight, now) {
            tally = self.lock_at(&tally, now);
        }
        tally
    }

    /// Whether `tally`, just counted with a failure of `weight`, must now be locked: a rule that
    /// locks, a failure that weighed something, the threshold reached, and no lock running.
    /// (A key still over the threshold when its lock ends is locked again at its next failure.)
    pub fn lock_due(&self, tally: &Tally, weight: u32, now: i64) -> bool {
        self.lock.is_some()
            && weight > 0
            && tally.score >= self.threshold.max(1)
            && tally.until <= now
    }

    /// `tally` with a lock starting at `now`: a repeat if the previous lock ended less than
    /// `repeat_within` ago, otherwise the first again. Unchanged for a rule that does not lock.
    pub fn lock_at(&self, tally: &Tally, now: i64) -> Tally {
        let Some(lock) = self.lock else {
            return *tally;
        };
        let repeat =
            tally.strikes > 0 && now < tally.until.saturating_add(secs(lock.repeat_within));
        let strikes = if repeat {
            tally.strikes.saturating_add(1)
        } else {
            1
        };
        Tally {
            until: now.saturating_add(secs(lock.duration(strikes))),
            strikes,
            ..*tally
        }
    }

    /// How long after a write at `now` a tally can still mean something (its window, a lock
    /// begun at `now`, the memory of that lock for repeats): the store may forget it after
    /// [`Rule::expires_at`].
    pub fn keep_for(&self) -> Duration {
        let lock = self
            .lock
            .map_or(Duration::ZERO, |l| l.cap.saturating_add(l.repeat_within));
        self.window.max(lock)
    }

    /// The TTL to write with a tally written at `now`.
    pub fn expires_at(&self, now: i64) -> i64 {
        now.saturating_add(secs(self.keep_for()))
    }
}

/// Seconds as the signed epoch arithmetic wants them (a duration past `i64::MAX` seconds is
/// "for ever" anyway).
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// What a key's state means at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Clear,
    /// An account: its password attempts are delayed, never refused.
    Slowed {
        until: i64,
    },
    /// A (username, source) pair: refused.
    Throttled {
        until: i64,
    },
    /// A source: refused, whatever the username.
    Banned {
        until: i64,
    },
}

impl Standing {
    /// What `tally` (of a key of `kind`) means at `now`: its lock while it runs, otherwise clear.
    pub fn of(kind: KeyKind, tally: Option<&Tally>, now: i64) -> Self {
        match tally {
            Some(t) if t.until > now => match kind {
                KeyKind::Source => Self::Banned { until: t.until },
                KeyKind::Pair => Self::Throttled { until: t.until },
                KeyKind::Account => Self::Slowed { until: t.until },
            },
            _ => Self::Clear,
        }
    }

    /// A stable code for logs and listings.
    pub fn code(self) -> &'static str {
        match self {
            Self::Clear => "clear",
            Self::Slowed { .. } => "slowed",
            Self::Throttled { .. } => "throttled",
            Self::Banned { .. } => "banned",
        }
    }
}

/// The kinds of key a tally is kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    Source,
    Pair,
    Account,
}

impl KeyKind {
    /// This kind's place in [`AttemptKeys::to_array`], and so in a store's answer to it.
    pub fn slot(self) -> usize {
        match self {
            Self::Source => 0,
            Self::Pair => 1,
            Self::Account => 2,
        }
    }
}

/// What a tally is kept under. Its string form, a stable storage key, is `source#<source>`,
/// `pair#<username>#<source>` or `account#<username>` (a username never holds `#`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefenderKey {
    Source(SourceKey),
    Pair(Username, SourceKey),
    Account(Username),
}

/// Why a string is not a defender key. Carries no copy of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DefenderKeyError {
    #[error("a defender key is source#<source>, pair#<username>#<source> or account#<username>")]
    Syntax,
    #[error("{0}")]
    Source(#[from] SourceKeyError),
    #[error("{0}")]
    Username(#[from] UsernameError),
}

impl DefenderKey {
    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Source(_) => KeyKind::Source,
            Self::Pair(..) => KeyKind::Pair,
            Self::Account(_) => KeyKind::Account,
        }
    }

    /// Reads the string form back.
    pub fn parse(s: &str) -> Result<Self, DefenderKeyError> {
        let (kind, rest) = s.split_once('#').ok_or(DefenderKeyError::Syntax)?;
        match kind {
            "source" => Ok(Self::Source(SourceKey::parse(rest)?)),
            "account" => Ok(Self::Account(Username::parse(rest)?)),
            "pair" => {
                let (name, source) = rest.split_once('#').ok_or(DefenderKeyError::Syntax)?;
                Ok(Self::Pair(
                    Username::parse(name)?,
                    SourceKey::parse(source)?,
                ))
            }
            _ => Err(DefenderKeyError::Syntax),
        }
    }
}

impl fmt::Display for DefenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Source(source) => write!(f, "source#{source}"),
            Self::Pair(name, source) => write!(f, "pair#{name}#{source}"),
            Self::Account(name) => write!(f, "account#{name}"),
        }
    }
}

impl std::str::FromStr for DefenderKey {
    type Err = DefenderKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The three keys one login attempt is judged and counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptKeys {
    pub source: DefenderKey,
    pub pair: DefenderKey,
    pub account: DefenderKey,
}

impl AttemptKeys {
    pub fn of(username: &Username, ip: IpAddr) -> Self {
        let source = SourceKey::of(ip);
        Self {
            source: DefenderKey::Source(source),
            pair: DefenderKey::Pair(username.clone(), source),
            account: DefenderKey::Account(username.clone()),
        }
    }

    /// Source, pair, account: the order a store's answer comes back in.
    pub fn to_array(&self) -> [DefenderKey; 3] {
        [self.source.clone(), self.pair.clone(), self.account.clone()]
    }
}

/// What the defender says before an attempt is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Refused without judging: [`Standing::Banned`] or [`Standing::Throttled`].
    Refuse(Standing),
    /// Judged as usual, after waiting `delay` if there is one.
    Pass { delay: Option<Duration> },
}

/// One failure to count: which key, by how much, under which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub key: DefenderKey,
    pub weight: u32,
    pub rule: Rule,
}

/// The defender's settings. [`Default`] is the documented policy below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefenderConfig {
    pub weights: Weights,
    /// Default: a score of 20 within 15 minutes bans the source for 15 minutes; a repeat within
    /// 24 hours of the last ban's end doubles it, up to 24 hours.
    pub source: Rule,
    /// Default: 5 failures within 15 minutes throttle the pair for 15 minutes.
    pub pair: Rule,
    /// Default: 100 failures within 24 hours (NIST SP 800-63B's bound) slow the account's
    /// password attempts for 24 hours.
    pub account: Rule,
    /// How long each password attempt for a slowed account waits before it is judged. Default 1 s.
    pub account_delay: Duration,
    /// Networks never counted, never refused (monitoring probes, a trusted office). Default none.
    pub safe_list: Vec<IpNet>,
}

impl Default for DefenderConfig {
    fn default() -> Self {
        Self {
            weights: Weights::default(),
            source: Rule {
                threshold: 20,
                window: 15 * MINUTE,
                lock: Some(Lock {
                    first: 15 * MINUTE,
                    growth: 2,
                    cap: DAY,
                    repeat_within: DAY,
                }),
            },
            pair: Rule {
                threshold: 5,
                window: 15 * MINUTE,
                lock: Some(Lock {
                    first: 15 * MINUTE,
                    growth: 1,
                    cap: 15 * MINUTE,
                    repeat_within: Duration::ZERO,
                }),
            },
            account: Rule {
                threshold: 100,
                window: 24 * HOUR,
                lock: Some(Lock {
                    first: DAY,
                    growth: 1,
                    cap: DAY,
                    repeat_within: Duration::ZERO,
                }),
            },
            account_delay: Duration::from_secs(1),
            safe_list: Vec::new(),
        }
    }
}

impl DefenderConfig {
    /// Whether `ip` is on the safe list (an IPv4-mapped address as the IPv4 one).
    pub fn is_safe(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.safe_list.iter().any(|net| net.contains(&ip))
    }

    /// The rule a key is counted under; a private source and its pairs are counted only.
    pub fn rule(&self, kind: KeyKind, private_source: bool) -> Rule {
        match kind {
            KeyKind::Source if private_source => self.source.count_only(),
            KeyKind::Source => self.source,
            KeyKind::Pair if private_source => self.pair.count_only(),
            KeyKind::Pair => self.pair,
            KeyKind::Account => self.account,
        }
    }

    /// What the stored tallies of an attempt's keys say before it is judged. A banned source or
    /// a throttled pair refuses it, unless the source address is private (those are never
    /// refused as a whole); a slowed account delays a password attempt and nothing else.
    pub fn gate(
        &self,
        ip: IpAddr,
        flow: Flow,
        [source, pair, account]: [Option<&Tally>; 3],
        now: i64,
    ) -> Gate {
        if !is_private(ip) {
            for (kind, tally) in [(KeyKind::Source, source), (KeyKind::Pair, pair)] {
                let standing = Standing::of(kind, tally, now);
                if standing != Standing::Clear {
                    return Gate::Refuse(standing);
                }
            }
        }
        let slowed = matches!(
            Standing::of(KeyKind::Account, account, now),
            Standing::Slowed { .. }
        );
        Gate::Pass {
            delay: (flow == Flow::Password && slowed).then_some(self.account_delay),
        }
    }

    /// The failures a refused attempt is counted as: its weight on the source; one on the pair
    /// and, for a password, one on the account. Pairs and accounts count refusals, not weights,
    /// so that the moment they are throttled or slowed says nothing about whether the user
    /// exists. A refusal that weighs nothing is still charged, with 0: a right password refused
    /// by the user's own lists must make the same writes as a wrong one, or its time would say
    /// the password was right.
    pub fn charges(
        &self,
        keys: &AttemptKeys,
        ip: IpAddr,
        flow: Flow,
        failure: Failure,
    ) -> Vec<Charge> {
        let private = is_private(ip);
        let weight = self.weights.of(flow, failure);
        let counted = weight.min(1);
        let mut charges = vec![
            Charge {
                key: keys.source.clone(),
                weight,
                rule: self.rule(KeyKind::Source, private),
            },
            Charge {
                key: keys.pair.clone(),
                weight: counted,
                rule: self.rule(KeyKind::Pair, private),
            },
        ];
        if flow == Flow::Password {
            charges.push(Charge {
                key: keys.account.clone(),
                weight: counted,
                rule: self.rule(KeyKind::Account, private),
            });
        }
        charges
    }

    /// Whether a right password clears `key`: only the pair. The source's score and the
    /// account's count stand, so that one valid account does not wash away a source's guesses
    /// at others, nor the owner's login the guesses at theirs. (A key login that is answered
    /// proves nothing: Transfer checks the key after us.)
    pub fn cleared_by_success(key: &DefenderKey) -> bool {
        key.kind() == KeyKind::Pair
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;
    const MIN: i64 = 60;
    const HR: i64 = 3600;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn name(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    /// `n` failures of `weight` one second apart from `start`; the tally after the last.
    fn fail(rule: &Rule, mut tally: Option<Tally>, n: u32, weight: u32, start: i64) -> Tally {
        for i in 0..n {
            tally = Some(rule.after_failure(tally.as_ref(), weight, start + i64::from(i)));
        }
        tally.unwrap_or_default()
    }

    // ---- Weights ----

    #[test]
    fn an_unknown_user_weighs_two_a_wrong_password_and_other_password_refusals_one() {
        let w = Weights::default();
        assert_eq!(w.of(Flow::Password, Failure::UnknownUser), 2);
        assert_eq!(w.of(Flow::Password, Failure::WrongPassword), 1);
        assert_eq!(w.of(Flow::Password, Failure::Refused), 1);
    }

    #[test]
    fn a_right_password_refused_by_the_users_own_lists_weighs_nothing() {
        assert_eq!(
            Weights::default().of(Flow::Password, Failure::Restricted),
            0
        );
    }

    #[test]
    fn every_key_login_refusal_weighs_one_even_for_an_unknown_user_or_the_lists() {
        let w = Weights::default();
        for failure in [
            Failure::UnknownUser,
            Failure::WrongPassword,
            Failure::Refused,
            Failure::Restricted,
        ] {
            assert_eq!(w.of(Flow::PublicKey, failure), 1, "{failure:?}");
        }
    }

    #[test]
    fn our_own_failures_weigh_nothing_in_either_flow() {
        let w = Weights::default();
        assert_eq!(w.of(Flow::Password, Failure::Ours), 0);
        assert_eq!(w.of(Flow::PublicKey, Failure::Ours), 0);
    }

    // ---- Windows ----

    #[test]
    fn failures_within_the_window_add_up_and_the_first_after_it_starts_a_new_one() {
        let rule = DefenderConfig::default().source;
        let t = rule.after_failure(None, 2, T0);
        assert_eq!((t.window_start, t.score), (T0, 2));
        let t = rule.after_failure(Some(&t), 1, T0 + 14 * MIN);
        assert_eq!((t.window_start, t.score), (T0, 3));
        let t = rule.after_failure(Some(&t), 1, T0 + 15 * MIN);
        assert_eq!((t.window_start, t.score), (T0 + 15 * MIN, 1));
    }

    #[test]
    fn a_score_never_overflows() {
        let rule = DefenderConfig::default().source.count_only();
        let t = Tally {
            window_start: T0,
            score: u32::MAX - 1,
            ..Tally::default()
        };
        assert_eq!(rule.after_failure(Some(&t), 5, T0 + 1).score, u32::MAX);
    }

    // ---- The source ban ----

    #[test]
    fn a_source_is_banned_for_15_minutes_when_its_score_reaches_20_within_15_minutes() {
        let rule = DefenderConfig::default().source;
        let t = fail(&rule, None, 19, 1, T0);
        assert_eq!(
            Standing::of(KeyKind::Source, Some(&t), T0 + 19),
            Standing::Clear
        );
        let t = rule.after_failure(Some(&t), 1, T0 + 19);
        assert_eq!(t.until, T0 + 19 + 15 * MIN);
        assert_eq!(t.strikes, 1);
        assert_eq!(
            Standing::of(KeyKind::Source, Some(&t), T0 + 20),
            Standing::Banned { until: t.until }
        );
        assert_eq!(
            Standing::of(KeyKind::Source, Some(&t), t.until),
            Standing::Clear
        );
    }

    #[test]
    fn ten_unknown_users_ban_a_source_as_twenty_wrong_passwords_do() {
        let config = DefenderConfig::default();
        let unknown = config.weights.of(Flow::Password, Failure::UnknownUser);
        let t = fail(&config.source, None, 10, unknown, T0);
        assert!(t.until > T0);
        let t = fail(&config.source, None, 9, unknown, T0);
        assert_eq!(t.until, 0);
    }

    #[test]
    fn twenty_failures_spread_over_more_than_the_window_ban_nothing() {
        let rule = DefenderConfig::default().source;
        let mut t = None;
        for i in 0..40 {
            // One a minute: never more than 15 in one window.
            t = Some(rule.after_failure(t.as_ref(), 1, T0 + i * MIN));
        }
        assert_eq!(t.map(|t| t.strikes), Some(0));
    }

    #[test]
    fn a_repeat_ban_within_24_hours_of_the_last_one_ending_doubles() {
        let rule = DefenderConfig::default().source;
        let first = fail(&rule, None, 20, 1, T0);
        assert_eq!(first.until - (T0 + 19), 15 * MIN);
        let start = first.until + HR;
        let second = fail(&rule, Some(first), 20, 1, start);
        assert_eq!((second.strikes, second.until - (start + 19)), (2, 30 * MIN));
        let start = second.until + 23 * HR;
        let third = fail(&rule, Some(second), 20, 1, start);
        assert_eq!((third.strikes, third.until - (start + 19)), (3, 60 * MIN));
    }

    #[test]
    fn a_ban_more_than_24_hours_after_the_last_one_ended_is_a_first_ban_again() {
        let rule = DefenderConfig::default().source;
        let first = fail(&rule, None, 20, 1, T0);
        let second = fail(&rule, Some(first), 20, 1, first.until + HR);
        let start = second.until + 24 * HR;
        let again = fail(&rule, Some(second), 20, 1, start);
        assert_eq!((again.strikes, again.until - (start + 19)), (1, 15 * MIN));
    }

    #[test]
    fn a_growing_ban_is_capped_at_24_hours() {
        let lock = DefenderConfig::default().source.lock.unwrap();
        let lengths: Vec<u64> = (1..=9).map(|s| lock.duration(s).as_secs() / 60).collect();
        assert_eq!(lengths, [15, 30, 60, 120, 240, 480, 960, 1440, 1440]);
        assert_eq!(lock.duration(u32::MAX), DAY);
        let rule = DefenderConfig::default().source;
        let mut t = Tally::default();
        for _ in 0..12 {
            let start = t.until + MIN;
            t = fail(&rule, Some(t), 20, 1, start);
        }
        assert_eq!((t.strikes, t.until - (t.window_start + 19)), (12, 24 * HR));
    }

    #[test]
    fn a_source_still_over_the_threshold_when_its_ban_ends_is_banned_again_at_its_next_failure() {
        // Only with a ban shorter than the window; the defaults never leave a window open.
        let mut rule = DefenderConfig::default().source;
        rule.lock = rule.lock.map(|l| Lock {
            first: 5 * MINUTE,
            ..l
        });
        let banned = fail(&rule, None, 20, 1, T0);
        let again = rule.after_failure(Some(&banned), 1, banned.until + 1);
        assert_eq!(again.strikes, 2);
        assert!(again.until > banned.until);
    }

    #[test]
    fn failures_during_a_ban_neither_extend_it_nor_count_as_a_repeat() {
        let rule = DefenderConfig::default().source;
        let banned = fail(&rule, None, 20, 1, T0);
        let later = rule.after_failure(Some(&banned), 1, T0 + 60);
        assert_eq!((later.until, later.strikes), (banned.until, 1));
    }

    #[test]
    fn a_failure_that_weighs_nothing_never_locks() {
        let rule = DefenderConfig::default().source;
        let at = Tally {
            window_start: T0,
            score: 25,
            ..Tally::default()
        };
        assert_eq!(rule.after_failure(Some(&at), 0, T0 + 1).until, 0);
        let t = rule.after_failure(None, 0, T0);
        assert_eq!((t.score, t.until), (0, 0));
    }

    #[test]
    fn a_rule_that_only_counts_counts_and_never_locks() {
        let rule = DefenderConfig::default().source.count_only();
        let t = fail(&rule, None, 50, 2, T0);
        assert_eq!((t.score, t.until, t.strikes), (100, 0, 0));
        assert_eq!(rule.lock_at(&t, T0), t);
    }

    #[test]
    fn a_threshold_of_zero_is_taken_as_one() {
        let mut rule = DefenderConfig::default().pair;
        rule.threshold = 0;
        assert_eq!(rule.after_failure(None, 1, T0).strikes, 1);
    }

    // ---- The pair throttle ----

    #[test]
    fn five_failures_within_15_minutes_throttle_the_pair_for_15_minutes_without_growth() {
        let rule = DefenderConfig::default().pair;
        let t = fail(&rule, None, 4, 1, T0);
        assert_eq!(
            Standing::of(KeyKind::Pair, Some(&t), T0 + 4),
            Standing::Clear
        );
        let t = rule.after_failure(Some(&t), 1, T0 + 4);
        assert_eq!(
            Standing::of(KeyKind::Pair, Some(&t), T0 + 5),
            Standing::Throttled {
                until: T0 + 4 + 15 * MIN
            }
        );
        let start = t.until + 1;
        let again = fail(&rule, Some(t), 5, 1, start);
        assert_eq!(again.until - (start + 4), 15 * MIN);
    }

    #[test]
    fn a_right_password_clears_the_pair_and_nothing_else() {
        let u = name("alice");
        let keys = AttemptKeys::of(&u, ip("198.51.100.7"));
        assert!(DefenderConfig::cleared_by_success(&keys.pair));
        assert!(!DefenderConfig::cleared_by_success(&keys.source));
        assert!(!DefenderConfig::cleared_by_success(&keys.account));
    }

    // ---- The account slowdown ----

    #[test]
    fn a_hundred_failures_within_24_hours_slow_the_account_for_a_day_by_one_second() {
        let config = DefenderConfig::default();
        let rule = config.account;
        let t = fail(&rule, None, 99, 1, T0);
        assert_eq!(
            Standing::of(KeyKind::Account, Some(&t), T0 + 99),
            Standing::Clear
        );
        let t = rule.after_failure(Some(&t), 1, T0 + 23 * HR);
        assert_eq!(
            Standing::of(KeyKind::Account, Some(&t), T0 + 23 * HR),
            Standing::Slowed {
                until: T0 + 47 * HR
            }
        );
        assert_eq!(config.account_delay, Duration::from_secs(1));
    }

    #[test]
    fn a_hundred_failures_spread_over_more_than_a_day_slow_nothing() {
        let rule = DefenderConfig::default().account;
        let t = fail(&rule, None, 99, 1, T0);
        let t = rule.after_failure(Some(&t), 1, T0 + 24 * HR);
        assert_eq!((t.score, t.until), (1, 0));
    }

    // ---- The gate ----

    fn locked(until: i64) -> Tally {
        Tally {
            window_start: T0,
            score: 100,
            until,
            strikes: 1,
        }
    }

    #[test]
    fn a_banned_source_or_a_throttled_pair_refuses_the_attempt_before_it_is_judged() {
        let config = DefenderConfig::default();
        let public = ip("198.51.100.7");
        let l = locked(T0 + 60);
        assert_eq!(
            config.gate(public, Flow::Password, [Some(&l), None, None], T0),
            Gate::Refuse(Standing::Banned { until: T0 + 60 })
        );
        assert_eq!(
            config.gate(public, Flow::PublicKey, [None, Some(&l), None], T0),
            Gate::Refuse(Standing::Throttled { until: T0 + 60 })
        );
        assert_eq!(
            config.gate(public, Flow::Password, [Some(&l), Some(&l), None], T0),
            Gate::Refuse(Standing::Banned { until: T0 + 60 }),
            "the source's ban is said first"
        );
        assert_eq!(
            config.gate(public, Flow::Password, [Some(&l), Some(&l), None], T0 + 60),
            Gate::Pass { delay: None },
            "a lock that has ended refuses nothing"
        );
    }

    #[test]
    fn a_slowed_account_delays_password_attempts_and_refuses_none() {
        let config = DefenderConfig::default();
        let public = ip("198.51.100.7");
        let l = locked(T0 + 60);
        assert_eq!(
            config.gate(public, Flow::Password, [None, None, Some(&l)], T0),
            Gate::Pass {
                delay: Some(Duration::from_secs(1))
            }
        );
        assert_eq!(
            config.gate(public, Flow::PublicKey, [None, None, Some(&l)], T0),
            Gate::Pass { delay: None }
        );
    }

    #[test]
    fn a_private_source_is_never_refused_as_a_whole() {
        let config = DefenderConfig::default();
        let l = locked(T0 + 60);
        for private in ["10.0.0.5", "100.64.1.1", "fd00::5"] {
            assert_eq!(
                config.gate(ip(private), Flow::Password, [Some(&l), Some(&l), None], T0),
                Gate::Pass { delay: None },
                "{private}"
            );
        }
    }

    // ---- What a refusal is charged ----

    #[test]
    fn a_refused_password_charges_its_weight_to_the_source_and_one_to_the_pair_and_account() {
        let config = DefenderConfig::default();
        let public = ip("198.51.100.7");
        let keys = AttemptKeys::of(&name("alice"), public);
        let charges = config.charges(&keys, public, Flow::Password, Failure::UnknownUser);
        let got: Vec<(KeyKind, u32, bool)> = charges
            .iter()
            .map(|c| (c.key.kind(), c.weight, c.rule.lock.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                (KeyKind::Source, 2, true),
                (KeyKind::Pair, 1, true),
                (KeyKind::Account, 1, true)
            ]
        );
    }

    #[test]
    fn a_refused_key_login_charges_the_source_and_the_pair_but_not_the_account() {
        let config = DefenderConfig::default();
        let public = ip("198.51.100.7");
        let keys = AttemptKeys::of(&name("alice"), public);
        let kinds: Vec<(KeyKind, u32)> = config
            .charges(&keys, public, Flow::PublicKey, Failure::Refused)
            .iter()
            .map(|c| (c.key.kind(), c.weight))
            .collect();
        assert_eq!(kinds, [(KeyKind::Source, 1), (KeyKind::Pair, 1)]);
    }

    #[test]
    fn a_refusal_that_weighs_nothing_is_still_charged_with_zero_so_it_writes_like_a_wrong_password()
    {
        let config = DefenderConfig::default();
        let public = ip("198.51.100.7");
        let keys = AttemptKeys::of(&name("alice"), public);
        let charges = config.charges(&keys, public, Flow::Password, Failure::Restricted);
        assert_eq!(charges.len(), 3);
        assert!(charges.iter().all(|c| c.weight == 0));
    }

    #[test]
    fn a_private_source_and_its_pairs_are_counted_only_and_its_account_as_any_other() {
        let config = DefenderConfig::default();
        let private = ip("10.0.0.5");
        let keys = AttemptKeys::of(&name("alice"), private);
        let charges = config.charges(&keys, private, Flow::Password, Failure::WrongPassword);
        let locks: Vec<bool> = charges.iter().map(|c| c.rule.lock.is_some()).collect();
        assert_eq!(locks, [false, false, true]);
        assert!(charges.iter().all(|c| c.weight == 1));
    }

    // ---- The safe list ----

    #[test]
    fn an_address_on_the_safe_list_is_safe_and_others_are_not() {
        let config = DefenderConfig {
            safe_list: vec![
                "203.0.113.0/24".parse().unwrap(),
                "2001:db8:5::/48".parse().unwrap(),
            ],
            ..DefenderConfig::default()
        };
        assert!(config.is_safe(ip("203.0.113.200")));
        assert!(config.is_safe(ip("::ffff:203.0.113.9")));
        assert!(config.is_safe(ip("2001:db8:5:1::1")));
        assert!(!config.is_safe(ip("203.0.114.1")));
        assert!(!config.is_safe(ip("2001:db8:6::1")));
        assert!(!DefenderConfig::default().is_safe(ip("203.0.113.200")));
    }

    // ---- Keys ----

    #[test]
    fn keys_have_a_stable_string_form_that_reads_back() {
        let alice = name("Alice");
        let v4 = SourceKey::of(ip("198.51.100.7"));
        let v6 = SourceKey::of(ip("2001:db8:1:2::9"));
        for (key, text) in [
            (DefenderKey::Source(v4), "source#198.51.100.7"),
            (DefenderKey::Source(v6), "source#2001:db8:1:2::/64"),
            (
                DefenderKey::Pair(alice.clone(), v6),
                "pair#alice#2001:db8:1:2::/64",
            ),
            (DefenderKey::Account(alice), "account#alice"),
        ] {
            assert_eq!(key.to_string(), text);
            assert_eq!(DefenderKey::parse(text), Ok(key.clone()));
            assert_eq!(text.parse::<DefenderKey>(), Ok(key));
        }
    }

    #[test]
    fn a_key_that_is_not_one_of_the_three_forms_is_refused() {
        for bad in [
            "",
            "source",
            "user#alice",
            "pair#alice",
            "account#a",
            "source#nope",
            "pair#alice#nope",
            "pair#a#b#c",
        ] {
            assert!(DefenderKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_keys_of_an_attempt_group_ipv6_sources_by_their_64() {
        let alice = name("alice");
        let one = AttemptKeys::of(&alice, ip("2001:db8:1:2::1"));
        let other = AttemptKeys::of(&alice, ip("2001:db8:1:2:ffff::2"));
        assert_eq!(one, other);
        assert_ne!(one, AttemptKeys::of(&alice, ip("2001:db8:1:3::1")));
        assert_eq!(
            one.to_array().map(|k| k.kind()),
            [KeyKind::Source, KeyKind::Pair, KeyKind::Account]
        );
        assert_eq!(one.to_array().map(|k| k.kind().slot()), [0, 1, 2]);
    }

    // ---- What a store may forget ----

    #[test]
    fn a_tally_is_kept_as_long_as_its_window_its_longest_lock_and_that_locks_repeat_memory() {
        let config = DefenderConfig::default();
        assert_eq!(config.source.keep_for(), 2 * DAY);
        assert_eq!(config.pair.keep_for(), 15 * MINUTE);
        assert_eq!(config.account.keep_for(), DAY);
        assert_eq!(config.source.count_only().keep_for(), 15 * MINUTE);
        assert_eq!(config.source.expires_at(T0), T0 + 48 * HR);
        assert_eq!(config.source.expires_at(i64::MAX - 5), i64::MAX);
    }
}
