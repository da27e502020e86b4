//! Account lifecycle: when an account counts as inactive, when its password is too old, and when
//! a login is worth recording, as pure rules over a record's dates and a clock reading (epoch
//! seconds). The authenticator refuses on them (`app::login`); `ferry user list --inactive` lists
//! by the same measure.
//!
//! - **Inactive**: the account's last sign of life is at least `disableAfterInactiveDays` days
//!   old. Its last sign of life is the latest of `lastLoginAt` (a login), `passwordChangedAt` (an
//!   operator set a password, or a migration did) and `enabledAt` (an operator created or enabled
//!   the user). So a user who never logged in is judged from when they were created or given
//!   their password, and an operator lets an inactive user back in with `ferry user enable` (or a
//!   new password), without writing a login that did not happen. A record with none of the three
//!   (made before these attributes existed, and not seen since) is **not judged**: nothing says
//!   when its clock started, and refusing every such user on the day the limit is configured
//!   would lock out everyone who has not logged in since the upgrade.
//! - **Password too old**: `passwordChangedAt` is at least `passwordMaxAgeDays` days old. Only
//!   password logins are refused for it (a key login does not use the password). A password
//!   without `passwordChangedAt` (set before the attribute existed) is not judged. Users cannot
//!   change their own password over SFTP: an operator sets a new one (`ferry user passwd`).
//! - **Limits**: a user's own value wins over the default (the auth function's environment); `0`
//!   means no limit, so a user's `0` exempts them from a default. No value anywhere: no limit.
//!
//! Both refuse every attempt from that second on, as `expiresAt` does: a limit of 90 days
//! refuses a user whose last sign of life is exactly 90 days old.
//!
//! `lastLoginAt` is coarse on purpose: a login rewrites it only when the stored value is missing
//! or at least [`LAST_LOGIN_PRECISION`] old, so a busy user costs one write an hour, not one per
//! login.

use crate::domain::user::UserRecord;

/// Seconds in a day, the unit of both limits.
pub const DAY: i64 = 86_400;

/// How stale `lastLoginAt` may be before a login rewrites it.
pub const LAST_LOGIN_PRECISION: i64 = 3_600;

/// The limits of users who set none of their own (`DISABLE_AFTER_INACTIVE_DAYS`,
/// `PASSWORD_MAX_AGE_DAYS`). The default is no limit at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// Days without a sign of life after which every login is refused (`None` or `0`: never).
    pub disable_after_inactive_days: Option<u32>,
    /// Days a password is accepted after it was set (`None` or `0`: for ever).
    pub password_max_age_days: Option<u32>,
}

impl Lifecycle {
    /// Whether `user` has been inactive too long at `now` (see the module docs).
    pub fn is_inactive(&self, user: &UserRecord, now: i64) -> bool {
        let Some(days) = limit(
            user.disable_after_inactive_days,
            self.disable_after_inactive_days,
        ) else {
            return false;
        };
        last_sign_of_life(
            user.last_login_at,
            user.password_changed_at,
            user.enabled_at,
        )
        .is_some_and(|since| at_least_days_old(since, days, now))
    }

    /// Whether `user`'s password is too old at `now` (see the module docs). A user without a
    /// password has none to expire.
    pub fn password_expired(&self, user: &UserRecord, now: i64) -> bool {
        let Some(days) = limit(user.password_max_age_days, self.password_max_age_days) else {
            return false;
        };
        user.password_hash.is_some()
            && user
                .password_changed_at
                .is_some_and(|since| at_least_days_old(since, days, now))
    }
}

/// The latest sign of life among a record's dates; `None` when it has none of them.
pub fn last_sign_of_life(
    last_login_at: Option<i64>,
    password_changed_at: Option<i64>,
    enabled_at: Option<i64>,
) -> Option<i64> {
    [last_login_at, password_changed_at, enabled_at]
        .into_iter()
        .flatten()
        .max()
}

/// Whether a login at `now` should rewrite a stored `lastLoginAt` of `last`: when there is none,
/// or it is at least [`LAST_LOGIN_PRECISION`] old. (One in the future, from a clock ahead of
/// ours, is left alone until ours passes it.)
pub fn login_worth_recording(last: Option<i64>, now: i64) -> bool {
    last.is_none_or(|t| now.saturating_sub(t) >= LAST_LOGIN_PRECISION)
}

/// Whether `since` is at least `seconds` before `now`.
pub fn at_least_old(since: i64, seconds: i64, now: i64) -> bool {
    now.saturating_sub(since) >= seconds
}

fn at_least_days_old(since: i64, days: u32, now: i64) -> bool {
    at_least_old(since, i64::from(days) * DAY, now)
}

/// A user's own limit, else the default; `0` is no limit.
fn limit(own: Option<u32>, default: Option<u32>) -> Option<u32> {
    own.or(default).filter(|days| *days > 0)
}

/// Why some text is not an age.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an age: use a whole number of days or hours, such as 90d or 12h")]
pub struct AgeError(pub String);

/// An age as operators type it (`90d`, `12h`), in seconds. A bare number is refused: days or
/// hours must be said.
pub fn parse_age(text: &str) -> Result<i64, AgeError> {
    let t = text.trim();
    let bad = || AgeError(text.to_owned());
    let (digits, unit) = match t.char_indices().last() {
        Some((i, 'd' | 'D')) => (&t[..i], DAY),
        Some((i, 'h' | 'H')) => (&t[..i], 3_600),
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn user(extra: serde_json::Value) -> UserRecord {
        let mut v = json!({
            "username": "alice",
            "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB",
            "saltVersion": "1",
            "bucket": "ferry-data",
            "home": "alice",
            "iamPolicyArn": "arn:aws:iam::123456789012:policy/p",
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        UserRecord::from_json(v).unwrap()
    }

    fn days(n: i64) -> i64 {
        n * DAY
    }

    const NINETY: Lifecycle = Lifecycle {
        disable_after_inactive_days: Some(90),
        password_max_age_days: Some(30),
    };

    #[test]
    fn inactivity_counts_from_the_latest_sign_of_life_and_refuses_from_the_limit_on() {
        let at = |t: i64| user(json!({"lastLoginAt": t}));
        assert!(!NINETY.is_inactive(&at(NOW - days(90) + 1), NOW));
        assert!(NINETY.is_inactive(&at(NOW - days(90)), NOW));
        // A password set or an enable after the last login restarts the clock.
        for later in ["passwordChangedAt", "enabledAt"] {
            let u = user(json!({"lastLoginAt": NOW - days(200), later: NOW - days(10)}));
            assert!(!NINETY.is_inactive(&u, NOW), "{later}");
        }
        // A login after them counts too.
        let u = user(json!({"lastLoginAt": NOW - days(1), "passwordChangedAt": NOW - days(300)}));
        assert!(!NINETY.is_inactive(&u, NOW));
    }

    #[test]
    fn a_user_who_never_logged_in_is_judged_from_their_password_or_creation_and_else_not_at_all() {
        let u = user(json!({"passwordChangedAt": NOW - days(91)}));
        assert!(NINETY.is_inactive(&u, NOW));
        let u = user(json!({"enabledAt": NOW - days(91)}));
        assert!(NINETY.is_inactive(&u, NOW));
        let u = user(json!({}));
        assert!(!NINETY.is_inactive(&u, NOW), "no date: not judged");
        assert!(!NINETY.password_expired(&u, NOW), "no date: not judged");
    }

    #[test]
    fn a_users_own_limit_wins_and_zero_means_none() {
        let old = json!({"lastLoginAt": NOW - days(40), "passwordChangedAt": NOW - days(40)});
        let mut strict = old.clone();
        strict["disableAfterInactiveDays"] = json!(30);
        assert!(NINETY.is_inactive(&user(strict), NOW), "own 30 over 90");
        let mut exempt = old.clone();
        exempt["disableAfterInactiveDays"] = json!(0);
        exempt["passwordMaxAgeDays"] = json!(0);
        assert!(!NINETY.is_inactive(&user(exempt.clone()), NOW.saturating_add(days(1000))));
        assert!(!NINETY.password_expired(&user(exempt), NOW));
        assert!(
            NINETY.password_expired(&user(old.clone()), NOW),
            "30-day default"
        );
        let mut lenient = old.clone();
        lenient["passwordMaxAgeDays"] = json!(60);
        assert!(!NINETY.password_expired(&user(lenient), NOW));
        // No default: only a user's own limit applies.
        let none = Lifecycle::default();
        assert!(!none.is_inactive(&user(old.clone()), NOW));
        let mut own = old;
        own["disableAfterInactiveDays"] = json!(30);
        assert!(none.is_inactive(&user(own), NOW));
    }

    #[test]
    fn only_a_password_can_be_too_old() {
        let mut v = user(json!({"passwordChangedAt": NOW - days(31)}));
        assert!(NINETY.password_expired(&v, NOW));
        v.password_hash = None;
        v.salt_version = None;
        assert!(
            !NINETY.password_expired(&v, NOW),
            "keys only: nothing to expire"
        );
    }

    #[test]
    fn a_login_is_recorded_when_none_is_or_the_last_is_an_hour_old() {
        assert!(login_worth_recording(None, NOW));
        assert!(!login_worth_recording(Some(NOW - 3_599), NOW));
        assert!(login_worth_recording(Some(NOW - 3_600), NOW));
        assert!(
            !login_worth_recording(Some(NOW + 60), NOW),
            "a clock ahead of ours"
        );
        assert!(login_worth_recording(Some(i64::MIN), NOW));
    }

    #[test]
    fn ages_are_days_or_hours() {
        assert_eq!(parse_age("90d"), Ok(days(90)));
        assert_eq!(parse_age(" 12h "), Ok(12 * 3_600));
        assert_eq!(parse_age("0d"), Ok(0));
        for bad in ["90", "d", "-3d", "1.5d", "3w", "", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_age("soon").unwrap_err().to_string(),
            "\"soon\" is not an age: use a whole number of days or hours, such as 90d or 12h"
        );
    }

    #[test]
    fn far_dates_do_not_overflow() {
        let u = user(json!({"lastLoginAt": i64::MIN, "disableAfterInactiveDays": u32::MAX}));
        assert!(NINETY.is_inactive(&u, i64::MAX));
        let u = user(json!({"lastLoginAt": i64::MAX}));
        assert!(!NINETY.is_inactive(&u, i64::MIN));
    }
}
