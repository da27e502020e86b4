//! The Transfer Family identity-provider contract: the request (direct Lambda or API Gateway),
//! validated into an [`AuthRequest`] at the boundary, and the response in the caller's shape.
//!
//! The request is read field by field from JSON, by hand, on purpose: `aws_lambda_events` has no
//! Transfer Family type, and a typed struct (its API Gateway one included) would refuse a whole
//! event over one bad field, where we must still answer `{}` in the caller's shape and say in the
//! audit log which field was wrong.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use crate::domain::password::{MAX_PASSWORD_BYTES, Password, PasswordError};
use crate::domain::protocol::Protocol;
use crate::domain::user::{Mapping, PosixProfile};
use crate::domain::username::{Username, UsernameError};

/// The request headers that carry the password behind API Gateway, in the order they are read:
/// newer Transfer templates send it base64-encoded, older ones as it is. Whatever logs requests
/// (WAF, API Gateway) must redact both.
pub const PASSWORD_HEADERS: [&str; 2] = ["PasswordBase64", "Password"];

/// The query-string arguments Transfer adds to each API Gateway call.
pub const QUERY_PROTOCOL: &str = "protocol";
/// The client's address: the only place it appears, since the call itself comes from Transfer.
pub const QUERY_SOURCE_IP: &str = "sourceIp";

/// How the login proves identity: a password, or (no password) an SSH key the server checks
/// against the `PublicKeys` we return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Password(Password),
    PublicKey,
}

/// A validated login request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub username: Username,
    pub credential: Credential,
    pub protocol: Protocol,
    pub server_id: String,
    pub source_ip: IpAddr,
}

/// Which shape the request came in, so the answer goes back in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Direct,
    ApiGateway,
}

/// Why a request was refused before any lookup. Never quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("event is not a JSON object")]
    NotAnObject,
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("field {0} is not a string")]
    NotAString(&'static str),
    #[error("username: {0}")]
    Username(#[from] UsernameError),
    #[error("password: {0}")]
    Password(PasswordError),
    #[error("PasswordBase64 is not valid base64 of UTF-8 text")]
    PasswordEncoding,
    #[error("protocol is not SFTP, FTPS or FTP")]
    Protocol,
    #[error("serverId is not a server id")]
    ServerId,
    #[error("sourceIp is not an IP address")]
    SourceIp,
    #[error("username is not validly percent-encoded")]
    UsernameEncoding,
    /// No password with FTP or FTPS: key logins exist only in SFTP, so this can only be a client
    /// trying to log in with nothing (AWS's own identity-provider samples deny it too).
    #[error("FTP and FTPS logins need a password")]
    PasswordRequired,
}

impl RequestError {
    /// A short stable code for audit logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAnObject => "malformed_event",
            Self::Missing(_) | Self::NotAString(_) => "malformed_event",
            Self::Username(_) | Self::UsernameEncoding => "bad_username",
            Self::Password(_) | Self::PasswordEncoding => "bad_password_input",
            Self::Protocol => "bad_protocol",
            Self::ServerId => "bad_server_id",
            Self::SourceIp => "bad_source_ip",
            Self::PasswordRequired => "password_required",
        }
    }
}

/// What the boundary could read of a request even when it is refused, for the audit line. Only
/// validated values are kept: a username that failed validation could be a mistyped password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partial {
    pub username: Option<Username>,
    pub server_id: Option<String>,
    pub protocol: Option<Protocol>,
    pub source_ip: Option<IpAddr>,
}

/// Reads an invocation event of either shape. Never fails: a request that cannot be read is an
/// `Err` in the second slot, with the shape still known so the denial is answered correctly.
pub fn read_event(event: &Value) -> (Shape, Result<AuthRequest, (RequestError, Partial)>) {
    let shape = if event.get("httpMethod").is_some()
        || event.get("requestContext").is_some()
        || event.get("pathParameters").is_some()
    {
        Shape::ApiGateway
    } else {
        Shape::Direct
    };
    let result = match shape {
        Shape::Direct => read_direct(event),
        Shape::ApiGateway => read_api_gateway(event),
    };
    (shape, result)
}

struct Fields<'a> {
    username: Option<&'a Value>,
    password: Option<PasswordField<'a>>,
    protocol: Option<&'a Value>,
    server_id: Option<&'a Value>,
    source_ip: Option<&'a Value>,
    username_encoded: bool,
}

enum PasswordField<'a> {
    Plain(&'a Value),
    Base64(&'a Value),
}

fn read_direct(event: &Value) -> Result<AuthRequest, (RequestError, Partial)> {
    let Some(obj) = event.as_object() else {
        return Err((RequestError::NotAnObject, Partial::default()));
    };
    validate(Fields {
        username: obj.get("username"),
        password: obj
            .get("password")
            .filter(|v| !v.is_null())
            .map(PasswordField::Plain),
        protocol: obj.get("protocol"),
        server_id: obj.get("serverId"),
        source_ip: obj.get("sourceIp"),
        username_encoded: false,
    })
}

fn read_api_gateway(event: &Value) -> Result<AuthRequest, (RequestError, Partial)> {
    let Some(obj) = event.as_object() else {
        return Err((RequestError::NotAnObject, Partial::default()));
    };
    let path = obj.get("pathParameters").filter(|v| !v.is_null());
    let query = obj.get("queryStringParameters").filter(|v| !v.is_null());
    let (mut server_id, mut username) = (
        path.and_then(|p| p.get("serverId")),
        path.and_then(|p| p.get("username")),
    );
    // Without pathParameters (a proxy resource), read them off the path itself.
    let from_path;
    if server_id.is_none() || username.is_none() {
        from_path = obj
            .get("path")
            .and_then(Value::as_str)
            .and_then(split_config_path);
        if let Some((s, u)) = &from_path {
            server_id = server_id.or(Some(s));
            username = username.or(Some(u));
        }
    }
    let header = |name: &str| header_value(obj.get("headers"), name);
    let [base64_header, plain_header] = PASSWORD_HEADERS;
    let password = match header(base64_header) {
        Some(v) => Some(PasswordField::Base64(v)),
        None => header(plain_header).map(PasswordField::Plain),
    };
    validate(Fields {
        username,
        password,
        protocol: query.and_then(|q| q.get(QUERY_PROTOCOL)),
        server_id,
        source_ip: query.and_then(|q| q.get(QUERY_SOURCE_IP)),
        username_encoded: true,
    })
}

/// `/servers/{serverId}/users/{username}/config` → the two values, as JSON strings.
fn split_config_path(path: &str) -> Option<(Value, Value)> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["servers", s, "users", u, "config"] => Some((Value::from(*s), Value::from(*u))),
        _ => None,
    }
}

/// Header lookup, case-insensitive as HTTP requires.
fn header_value<'a>(headers: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    headers?
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn string<'a>(v: Option<&'a Value>, name: &'static str) -> Result<&'a str, RequestError> {
    v.ok_or(RequestError::Missing(name))?
        .as_str()
        .ok_or(RequestError::NotAString(name))
}

fn validate(f: Fields<'_>) -> Result<AuthRequest, (RequestError, Partial)> {
    let mut partial = Partial::default();
    // Everything that parses is recorded for the audit line, whichever field fails.
    let server_id = string(f.server_id, "serverId").and_then(|s| {
        if is_server_id(s) {
            Ok(s.to_owned())
        } else {
            Err(RequestError::ServerId)
        }
    });
    partial.server_id = server_id.as_ref().ok().cloned();
    let protocol = string(f.protocol, "protocol")
        .and_then(|p| Protocol::parse(p).ok_or(RequestError::Protocol));
    partial.protocol = protocol.as_ref().ok().copied();
    let source_ip = string(f.source_ip, "sourceIp").and_then(|ip| {
        ip.trim()
            .parse::<IpAddr>()
            .map_err(|_| RequestError::SourceIp)
    });
    partial.source_ip = source_ip.as_ref().ok().copied();
    let username = string(f.username, "username").and_then(|raw| {
        if f.username_encoded {
            // Long input is refused before decoding so decoding never works on huge strings.
            if raw.len() > 300 {
                return Err(RequestError::Username(UsernameError::Length));
            }
            let decoded = percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| RequestError::UsernameEncoding)?;
            Ok(Username::parse(&decoded)?)
        } else {
            Ok(Username::parse(raw)?)
        }
    });
    partial.username = username.as_ref().ok().cloned();
    let credential = read_password(f.password);

    let result = (|| {
        let request = AuthRequest {
            username: username?,
            credential: credential?,
            protocol: protocol?,
            server_id: server_id?,
            source_ip: source_ip?,
        };
        if matches!(request.credential, Credential::PublicKey) && request.protocol != Protocol::Sftp
        {
            return Err(RequestError::PasswordRequired);
        }
        Ok(request)
    })();
    result.map_err(|e| (e, partial))
}

fn read_password(field: Option<PasswordField<'_>>) -> Result<Credential, RequestError> {
    let text = match field {
        None => return Ok(Credential::PublicKey),
        Some(PasswordField::Plain(v)) => v
            .as_str()
            .ok_or(RequestError::NotAString("password"))?
            .to_owned(),
        Some(PasswordField::Base64(v)) => {
            let encoded = v
                .as_str()
                .ok_or(RequestError::NotAString("PasswordBase64"))?;
            // Base64 is 4/3 of the text: refuse what could not decode to an allowed length.
            if encoded.len() > MAX_PASSWORD_BYTES * 4 / 3 + 4 {
                return Err(RequestError::Password(PasswordError::TooLong));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| RequestError::PasswordEncoding)?;
            String::from_utf8(bytes).map_err(|_| RequestError::PasswordEncoding)?
        }
    };
    // An empty password means a key login (Transfer sends "" for those).
    if text.is_empty() {
        return Ok(Credential::PublicKey);
    }
    Password::parse(text)
        .map(Credential::Password)
        .map_err(RequestError::Password)
}

/// Transfer server ids are `s-` and 17 hex digits; the local stack uses `s-local`. Accept any
/// short id of that alphabet so tests and local servers work, nothing else.
fn is_server_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The identity provider's answer for an authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthResponse {
    #[serde(rename = "Role")]
    pub role: String,
    #[serde(rename = "Policy", skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(rename = "HomeDirectoryType")]
    pub home_directory_type: &'static str,
    #[serde(rename = "HomeDirectory", skip_serializing_if = "Option::is_none")]
    pub home_directory: Option<String>,
    /// The mappings as a JSON *string*, as Transfer requires.
    #[serde(
        rename = "HomeDirectoryDetails",
        skip_serializing_if = "Option::is_none"
    )]
    pub home_directory_details: Option<String>,
    #[serde(rename = "PublicKeys", skip_serializing_if = "Option::is_none")]
    pub public_keys: Option<Vec<String>>,
    #[serde(rename = "PosixProfile", skip_serializing_if = "Option::is_none")]
    pub posix_profile: Option<PosixProfile>,
}

impl AuthResponse {
    /// Serialises logical mappings the way `HomeDirectoryDetails` carries them.
    pub fn mappings_string(mappings: &[Mapping]) -> String {
        serde_json::to_string(mappings).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// Renders an outcome in the caller's shape: `None` is a denial (`{}`).
pub fn render(shape: Shape, response: Option<&AuthResponse>) -> Value {
    let body = match response {
        Some(r) => serde_json::to_value(r).unwrap_or_else(|_| Value::Object(Default::default())),
        None => Value::Object(Default::default()),
    };
    match shape {
        Shape::Direct => body,
        Shape::ApiGateway => {
            let headers = BTreeMap::from([("Content-Type", "application/json")]);
            serde_json::json!({"statusCode": 200, "headers": headers, "body": body.to_string()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn direct(extra: Value) -> Value {
        let mut v = json!({"username": "Alice", "password": "pw", "protocol": "SFTP", "serverId": "s-0123456789abcdef0", "sourceIp": "203.0.113.7"});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    }

    fn apigw(headers: Value, username: &str) -> Value {
        json!({
            "resource": "/servers/{serverId}/users/{username}/config",
            "path": format!("/servers/s-1/users/{username}/config"),
            "httpMethod": "GET",
            "headers": headers,
            "queryStringParameters": {"protocol": "FTPS", "sourceIp": "2001:db8::5"},
            "pathParameters": {"serverId": "s-1", "username": username},
            "requestContext": {"stage": "prod"}
        })
    }

    #[test]
    fn a_direct_password_event_is_read_and_the_username_lowercased() {
        let (shape, r) = read_event(&direct(json!({})));
        let r = r.unwrap();
        assert_eq!(shape, Shape::Direct);
        assert_eq!(r.username.as_str(), "alice");
        assert_eq!(
            r.credential,
            Credential::Password(Password::parse("pw").unwrap())
        );
        assert_eq!(r.protocol, Protocol::Sftp);
        assert_eq!(r.source_ip.to_string(), "203.0.113.7");
    }

    #[test]
    fn an_absent_null_or_empty_password_is_a_key_login() {
        for pw in [json!(null), json!("")] {
            let (_, r) = read_event(&direct(json!({"password": pw})));
            assert_eq!(r.unwrap().credential, Credential::PublicKey);
        }
        let mut v = direct(json!({}));
        v.as_object_mut().unwrap().remove("password");
        assert_eq!(read_event(&v).1.unwrap().credential, Credential::PublicKey);
    }

    #[test]
    fn ftp_and_ftps_without_a_password_are_refused_in_both_shapes() {
        for protocol in ["FTP", "FTPS", "ftp"] {
            for pw in [json!(null), json!("")] {
                let (shape, r) = read_event(&direct(json!({"password": pw, "protocol": protocol})));
                assert_eq!(shape, Shape::Direct);
                let (err, partial) = r.unwrap_err();
                assert_eq!(err, RequestError::PasswordRequired, "{protocol} {pw}");
                assert_eq!(err.code(), "password_required");
                assert_eq!(partial.username.unwrap().as_str(), "alice");
            }
            let mut v = direct(json!({"protocol": protocol}));
            v.as_object_mut().unwrap().remove("password");
            assert_eq!(
                read_event(&v).1.unwrap_err().0,
                RequestError::PasswordRequired
            );
        }
        // The API Gateway helper asks for FTPS; no password header at all, or an empty one.
        for headers in [
            json!({}),
            json!({"Password": ""}),
            json!({"PasswordBase64": ""}),
        ] {
            let (shape, r) = read_event(&apigw(headers.clone(), "bob"));
            assert_eq!(shape, Shape::ApiGateway);
            assert_eq!(
                r.unwrap_err().0,
                RequestError::PasswordRequired,
                "{headers}"
            );
        }
        // SFTP without a password stays a key login.
        let r = read_event(&direct(json!({"password": "", "protocol": "SFTP"})));
        assert_eq!(r.1.unwrap().credential, Credential::PublicKey);
    }

    #[test]
    fn api_gateway_reads_password_base64_first_and_decodes_the_username() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"p"a\ss"#);
        let ev = apigw(
            json!({"PasswordBase64": b64, "Password": "ignored"}),
            "bob%40example.com",
        );
        let (shape, r) = read_event(&ev);
        let r = r.unwrap();
        assert_eq!(shape, Shape::ApiGateway);
        assert_eq!(r.username.as_str(), "bob@example.com");
        assert_eq!(
            r.credential,
            Credential::Password(Password::parse(r#"p"a\ss"#).unwrap())
        );
        assert_eq!(r.protocol, Protocol::Ftps);
        assert_eq!(r.server_id, "s-1");
    }

    #[test]
    fn api_gateway_headers_are_case_insensitive_and_the_path_is_a_fallback() {
        let mut ev = apigw(json!({"password": "plain"}), "carol");
        ev.as_object_mut().unwrap().remove("pathParameters");
        let r = read_event(&ev).1.unwrap();
        assert_eq!(r.username.as_str(), "carol");
        assert_eq!(
            r.credential,
            Credential::Password(Password::parse("plain").unwrap())
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_a_specific_reason() {
        let cases = [
            (json!("just a string"), RequestError::NotAnObject),
            (json!([1, 2]), RequestError::NotAnObject),
            (json!(null), RequestError::NotAnObject),
            (
                direct(json!({"username": null})),
                RequestError::NotAString("username"),
            ),
            (
                direct(json!({"username": 42})),
                RequestError::NotAString("username"),
            ),
            (
                direct(json!({"username": "ab"})),
                RequestError::Username(UsernameError::Length),
            ),
            (
                direct(json!({"username": "x".repeat(5_000_000)})),
                RequestError::Username(UsernameError::Length),
            ),
            (
                direct(json!({"username": "a b c"})),
                RequestError::Username(UsernameError::Character),
            ),
            (
                direct(json!({"password": 12345})),
                RequestError::NotAString("password"),
            ),
            (
                direct(json!({"password": "p".repeat(1025)})),
                RequestError::Password(PasswordError::TooLong),
            ),
            (direct(json!({"protocol": "SCP"})), RequestError::Protocol),
            (
                direct(json!({"protocol": ["SFTP"]})),
                RequestError::NotAString("protocol"),
            ),
            (direct(json!({"serverId": "s 1"})), RequestError::ServerId),
            (
                direct(json!({"sourceIp": "999.1.1.1"})),
                RequestError::SourceIp,
            ),
            (
                direct(json!({"sourceIp": {}})),
                RequestError::NotAString("sourceIp"),
            ),
            (
                apigw(json!({"PasswordBase64": "***"}), "dave"),
                RequestError::PasswordEncoding,
            ),
            (
                apigw(json!({"PasswordBase64": "//79"}), "dave"),
                RequestError::PasswordEncoding,
            ),
            (
                apigw(json!({}), "d%ZZave"),
                RequestError::Username(UsernameError::Character),
            ),
            (apigw(json!({}), "d%FFave"), RequestError::UsernameEncoding),
        ];
        for (event, want) in cases {
            let (_, got) = read_event(&event);
            assert_eq!(got.map_err(|e| e.0), Err(want.clone()), "{want:?}");
        }
        let mut missing = direct(json!({}));
        missing.as_object_mut().unwrap().remove("serverId");
        assert_eq!(
            read_event(&missing).1.map_err(|e| e.0),
            Err(RequestError::Missing("serverId"))
        );
    }

    #[test]
    fn a_refused_request_still_reports_the_fields_that_were_valid() {
        let (_, r) = read_event(&direct(json!({"sourceIp": "nope"})));
        let (err, partial) = r.unwrap_err();
        assert_eq!(err, RequestError::SourceIp);
        assert_eq!(partial.username.unwrap().as_str(), "alice");
        assert_eq!(partial.protocol, Some(Protocol::Sftp));
        assert_eq!(partial.source_ip, None);
    }

    #[test]
    fn a_denial_is_an_empty_object_in_both_shapes() {
        assert_eq!(render(Shape::Direct, None), json!({}));
        let gw = render(Shape::ApiGateway, None);
        assert_eq!(gw["statusCode"], 200);
        assert_eq!(gw["body"], "{}");
    }

    #[test]
    fn a_response_omits_absent_fields_and_api_gateway_wraps_it_as_a_string() {
        let r = AuthResponse {
            role: "arn:aws:iam::1:role/r".into(),
            policy: None,
            home_directory_type: "PATH",
            home_directory: Some("/b/h".into()),
            home_directory_details: None,
            public_keys: None,
            posix_profile: None,
        };
        assert_eq!(
            render(Shape::Direct, Some(&r)),
            json!({"Role": "arn:aws:iam::1:role/r", "HomeDirectoryType": "PATH", "HomeDirectory": "/b/h"})
        );
        let gw = render(Shape::ApiGateway, Some(&r));
        let body: Value = serde_json::from_str(gw["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["HomeDirectory"], "/b/h");
    }
}
