//! The verified-login cache: a warm process remembers, for a short time, that a password verified
//! against a user's stored hash, so that the same password for the same stored hash is not run
//! through Argon2 again within that time.
//!
//! What is remembered is only a key ([`crate::domain::password::verified_login_key`]) and the
//! instant of the verification. The key binds the username, the stored hash, the salt version and
//! the peppered password, so a changed password, a re-hash or a new salt version cannot match an
//! old entry: nothing needs to be invalidated. The user record is still read on every login and
//! judged as before (status, expiry, lists, policy); the authenticator consults the cache only for
//! a record that would let the login in, so every denial still runs one Argon2 verification and a
//! wrong password is never faster than a right one (see `check_password`).
//!
//! A hit does not refresh an entry: the TTL runs from the last real verification, so a password
//! is run through Argon2 at least once per TTL however often it is used. At most
//! [`VERIFIED_LOGINS_KEPT`] entries are kept; the oldest verification is forgotten first.
//!
//! Why a `HashMap` lookup (not a constant-time comparison) is fine here: the keys are SHA-256
//! digests under the keyring's secret salt, which a caller can neither compute nor steer, so the
//! time the map takes to find or miss one (SipHash with this process's random keys, then a byte
//! comparison that may stop early) depends on digests nobody outside can relate to a password. A
//! miss is followed by an Argon2 run whose time dwarfs it, and a hit is an allowed login, which
//! tells the caller nothing it is not told anyway. Only verified logins are inserted, so a guesser
//! cannot fill the map (nor flood one bucket of it) without knowing the passwords.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most verified logins remembered at once: a busy instance's active users, at ~100 bytes
/// each (about 100 KiB in all).
pub const VERIFIED_LOGINS_KEPT: usize = 1024;

type Key = [u8; 32];

/// Verified logins, by key, for `ttl` after each verification, at most `capacity` of them.
#[derive(Debug)]
pub(super) struct VerifiedLogins {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries>,
}

/// The same entries twice: by key, and in the order they were verified (oldest first), so that
/// the expired and the oldest are found at the front. Both always hold the same keys.
#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<Key, Instant>,
    oldest_first: VecDeque<(Key, Instant)>,
}

impl VerifiedLogins {
    /// Remembers verified logins for `ttl` (zero: never), at most [`VERIFIED_LOGINS_KEPT`].
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            capacity: VERIFIED_LOGINS_KEPT,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The same, keeping at most `capacity` entries (zero: none, the cache is off).
    pub(super) fn with_capacity(self, capacity: usize) -> Self {
        lock(&self.entries).trim(capacity);
        Self { capacity, ..self }
    }

    /// Whether anything is ever remembered (a key need not even be computed otherwise).
    pub(super) fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// Whether `key` was verified less than the TTL before `now`.
    pub(super) fn contains(&self, key: &Key, now: Instant) -> bool {
        lock(&self.entries)
            .by_key
            .get(key)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.ttl)
    }

    /// Remembers that `key` was verified at `now`, forgetting the expired and, past the bound,
    /// the oldest. A key already remembered and fresh keeps its first instant (two logins that
    /// missed together and both verified): the TTL runs from the earlier verification.
    pub(super) fn remember(&self, key: Key, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut entries = lock(&self.entries);
        let ttl = self.ttl;
        let expired = |at: &Instant| now.saturating_duration_since(*at) >= ttl;
        while let Some((old, at)) = entries.oldest_first.front().copied()
            && expired(&at)
        {
            entries.oldest_first.pop_front();
            entries.by_key.remove(&old);
        }
        match entries.by_key.get(&key) {
            Some(at) if !expired(at) => return,
            // Expired but not at the front (instants taken out of order by concurrent logins):
            // drop its place in the queue before it takes a new one.
            Some(_) => entries.oldest_first.retain(|(k, _)| *k != key),
            None => {}
        }
        entries.by_key.insert(key, now);
        entries.oldest_first.push_back((key, now));
        entries.trim(self.capacity);
    }

    /// How many entries are held (fresh or not yet purged).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        lock(&self.entries).by_key.len()
    }

    /// Forgets every entry.
    pub(super) fn clear(&self) {
        let mut entries = lock(&self.entries);
        entries.by_key.clear();
        entries.oldest_first.clear();
    }
}

impl Entries {
    /// Forgets the oldest entries until at most `capacity` are left.
    fn trim(&mut self, capacity: usize) {
        while self.by_key.len() > capacity {
            let Some((old, _)) = self.oldest_first.pop_front() else {
                break;
            };
            self.by_key.remove(&old);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing is half-written under this lock that a later call could trip on.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Key {
        let mut k = [0; 32];
        k[..4].copy_from_slice(&n.to_be_bytes());
        k
    }

    /// The two views of the entries hold the same keys, each once.
    fn consistent(cache: &VerifiedLogins) -> bool {
        let e = lock(&cache.entries);
        e.by_key.len() == e.oldest_first.len()
            && e.oldest_first
                .iter()
                .all(|(k, at)| e.by_key.get(k) == Some(at))
    }

    #[test]
    fn an_entry_is_found_until_its_ttl_has_passed_and_a_hit_does_not_extend_it() {
        let cache = VerifiedLogins::new(Duration::from_secs(60));
        let t0 = Instant::now();
        cache.remember(key(1), t0);
        assert!(cache.contains(&key(1), t0 + Duration::from_secs(59)));
        assert!(!cache.contains(&key(2), t0));
        // Remembered again while fresh (a concurrent verification): the first instant stands.
        cache.remember(key(1), t0 + Duration::from_secs(30));
        assert!(!cache.contains(&key(1), t0 + Duration::from_secs(60)));
        assert!(consistent(&cache));
    }

    #[test]
    fn a_default_cache_never_holds_more_than_its_bound_and_forgets_the_oldest_first() {
        let cache = VerifiedLogins::new(Duration::from_secs(3600));
        let t0 = Instant::now();
        let n = u32::try_from(VERIFIED_LOGINS_KEPT).unwrap_or(u32::MAX) * 2;
        for i in 0..n {
            cache.remember(key(i), t0 + Duration::from_millis(u64::from(i)));
            assert!(cache.len() <= VERIFIED_LOGINS_KEPT);
        }
        assert_eq!(cache.len(), VERIFIED_LOGINS_KEPT);
        let now = t0 + Duration::from_secs(10);
        assert!(!cache.contains(&key(n / 2 - 1), now), "the oldest are gone");
        assert!(cache.contains(&key(n / 2), now) && cache.contains(&key(n - 1), now));
        assert!(consistent(&cache));
    }

    #[test]
    fn expired_entries_are_dropped_when_the_next_is_remembered() {
        let cache = VerifiedLogins::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..10 {
            cache.remember(key(i), t0);
        }
        cache.remember(key(99), t0 + Duration::from_secs(61));
        assert_eq!(cache.len(), 1);
        // An expired key remembered again takes one new place, not two.
        cache.remember(key(99), t0 + Duration::from_secs(200));
        assert_eq!(cache.len(), 1);
        assert!(cache.contains(&key(99), t0 + Duration::from_secs(250)));
        assert!(consistent(&cache));
    }

    #[test]
    fn an_expired_key_out_of_order_is_not_kept_twice() {
        let cache = VerifiedLogins::new(Duration::from_secs(60));
        let t0 = Instant::now() + Duration::from_secs(10);
        // Instants out of order, as two logins may take them before either takes the lock.
        cache.remember(key(1), t0);
        cache.remember(key(2), t0 - Duration::from_secs(10));
        cache.remember(key(2), t0 + Duration::from_secs(55));
        assert_eq!(cache.len(), 2);
        assert!(consistent(&cache));
    }

    #[test]
    fn a_zero_ttl_or_capacity_remembers_nothing_and_shrinking_trims() {
        let t0 = Instant::now();
        for cache in [
            VerifiedLogins::new(Duration::ZERO),
            VerifiedLogins::new(Duration::from_secs(60)).with_capacity(0),
        ] {
            assert!(!cache.enabled());
            cache.remember(key(1), t0);
            assert_eq!(cache.len(), 0);
            assert!(!cache.contains(&key(1), t0));
        }
        let cache = VerifiedLogins::new(Duration::from_secs(60));
        for i in 0..5 {
            cache.remember(key(i), t0 + Duration::from_secs(u64::from(i)));
        }
        let cache = cache.with_capacity(2);
        assert_eq!(cache.len(), 2);
        assert!(cache.contains(&key(4), t0 + Duration::from_secs(5)));
        assert!(consistent(&cache));
        cache.clear();
        assert_eq!(cache.len(), 0);
        assert!(consistent(&cache));
    }
}
