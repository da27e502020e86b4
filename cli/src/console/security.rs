//! The console's guard: the sign-in token, operator sessions (a bounded table of random ids in
//! an `HttpOnly; SameSite=Strict` cookie), the CSRF token every POST must carry, and the headers
//! every answer gets (a strict Content-Security-Policy, no caching, no framing). Secrets are
//! compared in constant time; none of them is ever logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "ferry_console";
/// Sessions at once: a bound on memory whatever a client does; the oldest idle one goes first.
pub(crate) const MAX_SESSIONS: usize = 64;
/// A session unused this long is gone.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// The largest request body read (forms only: a few keys or a user's attributes).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// What every answer carries. No inline script or style is ever served, so none is allowed.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// 32 bytes from the OS random source, as hex.
pub(crate) fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("reading the OS random source: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// One signed-in operator.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// As they named themselves at sign-in, with how they proved it: `alice (token)`.
    pub(crate) operator: String,
    /// The token every form of this session carries.
    pub(crate) csrf: String,
    last_used: Instant,
}

/// The signed-in sessions, by id.
#[derive(Debug)]
pub(crate) struct Sessions {
    token: String,
    table: Mutex<HashMap<String, Session>>,
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInError {
    WrongToken,
    BadName,
    Full,
}

impl Sessions {
    pub(crate) fn new(token: String) -> Self {
        Self {
            token,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Checks the token and opens a session; its id goes into the cookie.
    pub(crate) fn sign_in(&self, name: &str, token: &str) -> Result<String, SignInError> {
        if !same_secret(token.trim(), &self.token) {
            return Err(SignInError::WrongToken);
        }
        let name = operator_name(name).ok_or(SignInError::BadName)?;
        let id = random_token().map_err(|_| SignInError::Full)?;
        let csrf = random_token().map_err(|_| SignInError::Full)?;
        let mut table = self.lock();
        let now = Instant::now();
        table.retain(|_, s| now.duration_since(s.last_used) < IDLE);
        if table.len() >= MAX_SESSIONS {
            // The least recently used goes: an operator who signs in again must not be locked
            // out by sessions nobody uses.
            let oldest = table
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    table.remove(&k);
                }
                None => return Err(SignInError::Full),
            }
        }
        table.insert(
            id.clone(),
            Session {
                operator: format!("{name} (token)"),
                csrf,
                last_used: now,
            },
        );
        Ok(id)
    }

    /// The session a cookie names, if it is live (and marks it used).
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let mut table = self.lock();
        let now = Instant::now();
        let session = table.get_mut(id)?;
        if now.duration_since(session.last_used) >= IDLE {
            table.remove(id);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    pub(crate) fn sign_out(&self, id: &str) {
        self.lock().remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a consistent map (every change is one call).
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An operator's name as typed at sign-in: 1 to 64 letters, digits, spaces or `._@-`.
pub(crate) fn operator_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let fits = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._@-".contains(c));
    fits.then(|| name.to_owned())
}

/// The session id in a `Cookie` header, if any.
pub(crate) fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value of a new session.
pub(crate) fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/")
}

/// The `Set-Cookie` value that ends one.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The `csrf` field of a urlencoded form body, if any.
pub(crate) fn csrf_field(body: &[u8]) -> Option<String> {
    form_urlencoded_pairs(body)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_printed_token_opens_a_session() {
        let sessions = Sessions::new("secret-token".into());
        assert_eq!(
            sessions.sign_in("alice", "wrong-token!"),
            Err(SignInError::WrongToken)
        );
        assert_eq!(sessions.sign_in("alice", ""), Err(SignInError::WrongToken));
        let id = sessions.sign_in("alice", "secret-token").unwrap();
        let s = sessions.get(&id).unwrap();
        assert_eq!(s.operator, "alice (token)");
        assert_eq!(s.csrf.len(), 64);
        assert!(sessions.get("not-a-session").is_none());
        sessions.sign_out(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn an_operator_name_with_markup_or_no_letters_is_refused() {
        let sessions = Sessions::new("t".into());
        assert_eq!(sessions.sign_in("<b>x</b>", "t"), Err(SignInError::BadName));
        assert_eq!(sessions.sign_in("   ", "t"), Err(SignInError::BadName));
        assert_eq!(operator_name(" Ann Lee "), Some("Ann Lee".into()));
    }

    #[test]
    fn the_session_table_never_grows_past_its_bound() {
        let sessions = Sessions::new("t".into());
        let first = sessions.sign_in("a", "t").unwrap();
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.sign_in("b", "t").unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(
            sessions.get(&first).is_none(),
            "the oldest session made room"
        );
    }

    #[test]
    fn the_cookie_and_the_csrf_field_are_found_among_others() {
        assert_eq!(session_cookie("a=b; ferry_console=xyz; c=d"), Some("xyz"));
        assert_eq!(session_cookie("a=b"), None);
        assert_eq!(csrf_field(b"name=x&csrf=abc%20d"), Some("abc d".into()));
        assert_eq!(csrf_field(b"name=x"), None);
        assert_eq!(csrf_field(&[0xff, 0xfe]), None);
        assert!(set_cookie("i").contains("HttpOnly; SameSite=Strict; Path=/"));
    }
}
