//! Audit events: every login decision and every change the defender makes, as structured events
//! for operators (EventBridge on AWS, a JSON-lines file locally). An event never carries a
//! password, a salt, a hash or a raw request: only what the audit log line already says.

use serde::Serialize;

/// What an audit event is about (EventBridge's `detail-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    #[serde(rename = "ferry login")]
    Login,
    #[serde(rename = "ferry defender")]
    Defender,
    #[serde(rename = "ferry admin")]
    Admin,
}

impl Kind {
    pub fn detail_type(self) -> &'static str {
        match self {
            Self::Login => "ferry login",
            Self::Defender => "ferry defender",
            Self::Admin => "ferry admin",
        }
    }
}

/// One login decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginEvent {
    /// `allow` or `deny`.
    pub outcome: &'static str,
    /// `ok`, or the denial's stable code (`wrong_password`, `banned`, `throttled`, …).
    pub reason: &'static str,
    /// `password`, `public_key`, or `unknown` for an unreadable request.
    pub flow: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    pub source_private: bool,
    pub latency_ms: f64,
    /// Epoch seconds.
    pub at: i64,
}

/// A lock the defender began or an operator lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DefenderEvent {
    /// `banned`, `throttled`, `slowed`, or `lifted`.
    pub action: &'static str,
    /// The tally's key: `source#…`, `pair#…#…` or `account#…`.
    pub key: String,
    /// When the lock ends (epoch seconds); 0 for `lifted`.
    pub until: i64,
    pub strikes: u32,
    pub at: i64,
}

/// A change an operator made (from the console): who, what, to whom. Never the values set
/// (a password, a key body): only which change it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminEvent {
    /// `user.add`, `user.update`, `user.disable`, `key.add`, `defender.unban`, …
    pub action: &'static str,
    /// What it was done to: a username, a defender key, a salt version.
    pub target: String,
    /// The operator, as they signed in: `NAME (token)`.
    pub operator: String,
    /// `ok`, or why the change was refused.
    pub outcome: String,
    pub at: i64,
}

/// Any audit event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AuditEvent {
    Login(LoginEvent),
    Defender(DefenderEvent),
    Admin(AdminEvent),
}

impl AuditEvent {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Login(_) => Kind::Login,
            Self::Defender(_) => Kind::Defender,
            Self::Admin(_) => Kind::Admin,
        }
    }

    /// The event's detail as JSON (what EventBridge rules match on).
    pub fn detail(&self) -> String {
        // Strings, numbers and booleans only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_event_says_what_the_audit_line_says_and_nothing_more() {
        let event = AuditEvent::Login(LoginEvent {
            outcome: "deny",
            reason: "wrong_password",
            flow: "password",
            username: Some("alice".into()),
            server_id: Some("s-1".into()),
            protocol: Some("SFTP"),
            source_ip: Some("198.51.100.7".into()),
            source_private: false,
            latency_ms: 17.5,
            at: 1_800_000_000,
        });
        assert_eq!(event.kind().detail_type(), "ferry login");
        let detail: serde_json::Value = serde_json::from_str(&event.detail()).unwrap();
        assert_eq!(
            detail,
            serde_json::json!({"outcome": "deny", "reason": "wrong_password", "flow": "password",
                "username": "alice", "serverId": "s-1", "protocol": "SFTP",
                "sourceIp": "198.51.100.7", "sourcePrivate": false, "latencyMs": 17.5,
                "at": 1_800_000_000})
        );
    }
}
