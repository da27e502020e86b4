//! Evaluating a session policy the way IAM does for the S3 requests a Transfer session makes:
//! explicit Deny wins, then any Allow, otherwise the default deny.
//!
//! Supported: `Effect`; `Action`/`NotAction` and `Resource`/`NotResource` with `*` and `?`
//! wildcards (actions case-insensitive, resources case-sensitive); `Condition` with
//! `StringEquals`, `StringNotEquals`, `StringLike`, `StringNotLike` (and their `IfExists` forms)
//! on single-valued request keys such as `s3:prefix`; the Transfer session variables
//! `${transfer:HomeBucket}`, `${transfer:HomeDirectory}`, `${transfer:HomeFolder}` and
//! `${transfer:UserName}`, plus IAM's `${*}`, `${?}` and `${$}` escapes.
//!
//! Anything else fails closed: an Allow statement using an unsupported operator or an unknown
//! variable never matches, and a Deny statement using one always does. No evaluator crate on
//! crates.io covered the Transfer variables and this fail-closed rule, so it is written here and
//! tested case by case against AWS's documented evaluation logic.

use serde_json::Value;

/// The values of the `${transfer:…}` variables for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionVariables {
    pub home_bucket: String,
    pub home_directory: String,
    pub home_folder: String,
    pub user_name: String,
}

impl SessionVariables {
    /// The variables for a home directory `/bucket/folder…` (Transfer's definitions:
    /// HomeDirectory is the path without its leading slash, HomeBucket its first segment,
    /// HomeFolder the rest).
    pub fn for_home(home_directory: &str, user_name: &str) -> Self {
        let dir = home_directory.trim_matches('/');
        let (bucket, folder) = dir.split_once('/').unwrap_or((dir, ""));
        Self {
            home_bucket: bucket.to_owned(),
            home_directory: dir.to_owned(),
            home_folder: folder.to_owned(),
            user_name: user_name.to_owned(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "transfer:HomeBucket" => Some(&self.home_bucket),
            "transfer:HomeDirectory" => Some(&self.home_directory),
            "transfer:HomeFolder" => Some(&self.home_folder),
            "transfer:UserName" => Some(&self.user_name),
            "*" => Some("*"),
            "?" => Some("?"),
            "$" => Some("$"),
            _ => None,
        }
    }
}

/// One S3 request to authorise.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `s3:GetObject`, …
    pub action: &'a str,
    /// `arn:aws:s3:::bucket/key` or `arn:aws:s3:::bucket`.
    pub resource: &'a str,
    /// Condition keys of the request, such as `("s3:prefix", "home/alice/")`.
    pub context: &'a [(&'a str, &'a str)],
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A Deny statement matched.
    ExplicitDeny,
    /// No statement allowed it.
    ImplicitDeny,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("policy is not JSON: {0}")]
    Json(String),
    #[error("policy has no Statement")]
    NoStatement,
    #[error("statement {0}: {1}")]
    Statement(usize, &'static str),
}

/// A parsed session policy, ready to evaluate many requests.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    not_action: bool,
    resources: Vec<Option<String>>,
    not_resource: bool,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
struct Condition {
    op: Option<Op>,
    if_exists: bool,
    key: String,
    values: Vec<Option<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    Like,
    NotLike,
}

impl SessionPolicy {
    /// Parses `json` and substitutes the session variables.
    pub fn parse(json: &str, vars: &SessionVariables) -> Result<Self, AccessError> {
        let doc: Value =
            serde_json::from_str(json).map_err(|e| AccessError::Json(e.to_string()))?;
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(single @ Value::Object(_)) => vec![single.clone()],
            _ => return Err(AccessError::NoStatement),
        };
        let statements = statements
            .iter()
            .enumerate()
            .map(|(i, s)| parse_statement(s, vars).map_err(|why| AccessError::Statement(i, why)))
            .collect::<Result<_, _>>()?;
        Ok(Self { statements })
    }

    /// IAM's order: an explicit deny anywhere wins, then an allow, else the default deny.
    pub fn evaluate(&self, req: &Request<'_>) -> Verdict {
        let matching = |allow: bool| {
            self.statements
                .iter()
                .filter(move |s| s.allow == allow)
                .any(|s| s.matches(req))
        };
        if matching(false) {
            Verdict::ExplicitDeny
        } else if matching(true) {
            Verdict::Allow
        } else {
            Verdict::ImplicitDeny
        }
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

fn parse_statement(s: &Value, vars: &SessionVariables) -> Result<Statement, &'static str> {
    let allow = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        _ => return Err("Effect must be Allow or Deny"),
    };
    let (actions, not_action) = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), None) => (
            strings(a).ok_or("Action must be a string or a list of strings")?,
            false,
        ),
        (None, Some(a)) => (
            strings(a).ok_or("NotAction must be a string or a list of strings")?,
            true,
        ),
        _ => return Err("exactly one of Action and NotAction is required"),
    };
    let (resources, not_resource) = match (s.get("Resource"), s.get("NotResource")) {
        (Some(r), None) => (
            strings(r).ok_or("Resource must be a string or a list of strings")?,
            false,
        ),
        (None, Some(r)) => (
            strings(r).ok_or("NotResource must be a string or a list of strings")?,
            true,
        ),
        (None, None) => (vec!["*".to_owned()], false),
        _ => return Err("Resource and NotResource are mutually exclusive"),
    };
    let mut conditions = Vec::new();
    if let Some(block) = s.get("Condition") {
        let block = block.as_object().ok_or("Condition must be an object")?;
        for (op_name, keys) in block {
            let (base, if_exists) = match op_name.strip_suffix("IfExists") {
                Some(b) => (b, true),
                None => (op_name.as_str(), false),
            };
            let op = match base {
                "StringEquals" => Some(Op::Equals),
                "StringNotEquals" => Some(Op::NotEquals),
                "StringLike" => Some(Op::Like),
                "StringNotLike" => Some(Op::NotLike),
                _ => None,
            };
            let keys = keys
                .as_object()
                .ok_or("a condition operator must map keys to values")?;
            for (key, values) in keys {
                let values = strings(values).ok_or("condition values must be strings")?;
                conditions.push(Condition {
                    op,
                    if_exists,
                    key: key.to_ascii_lowercase(),
                    values: values.iter().map(|v| substitute(v, vars)).collect(),
                });
            }
        }
    }
    Ok(Statement {
        allow,
        actions,
        not_action,
        resources: resources.iter().map(|r| substitute(r, vars)).collect(),
        not_resource,
        conditions,
    })
}

/// Replaces `${…}` variables; `None` when one is unknown or unterminated.
fn substitute(s: &str, vars: &SessionVariables) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        out.push_str(vars.get(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

impl Statement {
    /// Whether the statement applies. Unknown parts make an Allow not apply and a Deny apply.
    fn matches(&self, req: &Request<'_>) -> bool {
        let fail_closed = !self.allow;
        let action_hit = self
            .actions
            .iter()
            .any(|a| wildcard(&a.to_ascii_lowercase(), &req.action.to_ascii_lowercase()));
        if action_hit == self.not_action {
            return false;
        }
        // A pattern with an unknown variable decides on its own, whatever Not- form it is in.
        if self.resources.iter().any(Option::is_none) {
            return fail_closed && self.conditions.iter().all(|c| c.holds(req, fail_closed));
        }
        let resource_hit = self
            .resources
            .iter()
            .flatten()
            .any(|pattern| wildcard(pattern, req.resource));
        if resource_hit == self.not_resource {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(req, fail_closed))
    }
}

impl Condition {
    fn holds(&self, req: &Request<'_>, fail_closed: bool) -> bool {
        let Some(op) = self.op else {
            return fail_closed;
        };
        if self.values.iter().any(Option::is_none) {
            return fail_closed;
        }
        let value = req
            .context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.key))
            .map(|(_, v)| *v);
        let Some(value) = value else {
            // IAM: a missing key fails the positive operators and satisfies the negated ones;
            // the IfExists forms are satisfied either way.
            return self.if_exists || matches!(op, Op::NotEquals | Op::NotLike);
        };
        let any = self.values.iter().flatten().any(|p| match op {
            Op::Like | Op::NotLike => wildcard(p, value),
            Op::Equals | Op::NotEquals => p == value,
        });
        match op {
            Op::Equals | Op::Like => any,
            Op::NotEquals | Op::NotLike => !any,
        }
    }
}

/// `*` matches any run of characters, `?` any one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::CANONICAL_SCOPE_DOWN;

    fn alice() -> SessionVariables {
        SessionVariables::for_home("/ferry-local/home/alice", "alice")
    }

    fn req<'a>(
        action: &'a str,
        resource: &'a str,
        context: &'a [(&'a str, &'a str)],
    ) -> Request<'a> {
        Request {
            action,
            resource,
            context,
        }
    }

    #[test]
    fn variables_come_from_the_home_directory() {
        let v = alice();
        assert_eq!(v.home_bucket, "ferry-local");
        assert_eq!(v.home_directory, "ferry-local/home/alice");
        assert_eq!(v.home_folder, "home/alice");
    }

    #[test]
    fn the_canonical_policy_allows_the_home_and_nothing_else() {
        let p = SessionPolicy::parse(CANONICAL_SCOPE_DOWN, &alice()).unwrap();
        let get = |key: &str| p.evaluate(&req("s3:GetObject", &format!("arn:aws:s3:::{key}"), &[]));
        assert_eq!(get("ferry-local/home/alice/a.txt"), Verdict::Allow);
        assert_eq!(get("ferry-local/home/alice/sub/b.txt"), Verdict::Allow);
        assert_eq!(get("ferry-local/home/alice2/a.txt"), Verdict::ImplicitDeny);
        assert_eq!(get("ferry-local/home/bob/a.txt"), Verdict::ImplicitDeny);
        assert_eq!(get("other-bucket/home/alice/a.txt"), Verdict::ImplicitDeny);
        let list = |prefix: &str| {
            p.evaluate(&req(
                "s3:ListBucket",
                "arn:aws:s3:::ferry-local",
                &[("s3:prefix", prefix)],
            ))
        };
        assert_eq!(list("home/alice"), Verdict::Allow);
        assert_eq!(list("home/alice/"), Verdict::Allow);
        assert_eq!(list("home/alice/sub/"), Verdict::Allow);
        assert_eq!(list("home/"), Verdict::ImplicitDeny);
        assert_eq!(list("home/bob/"), Verdict::ImplicitDeny);
        assert_eq!(
            p.evaluate(&req("s3:ListBucket", "arn:aws:s3:::ferry-local", &[])),
            Verdict::ImplicitDeny
        );
        assert_eq!(
            p.evaluate(&req("s3:DeleteBucket", "arn:aws:s3:::ferry-local", &[])),
            Verdict::ImplicitDeny
        );
        assert_eq!(
            p.evaluate(&req(
                "s3:getobject",
                "arn:aws:s3:::ferry-local/home/alice/x",
                &[]
            )),
            Verdict::Allow,
            "actions ignore case"
        );
    }

    #[test]
    fn an_explicit_deny_wins_over_any_allow() {
        let doc = r#"{"Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"*"},
            {"Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::${transfer:HomeDirectory}/readonly/*"}]}"#;
        let p = SessionPolicy::parse(doc, &alice()).unwrap();
        assert_eq!(
            p.evaluate(&req(
                "s3:PutObject",
                "arn:aws:s3:::ferry-local/home/alice/readonly/x",
                &[]
            )),
            Verdict::ExplicitDeny
        );
        assert_eq!(
            p.evaluate(&req(
                "s3:PutObject",
                "arn:aws:s3:::ferry-local/home/alice/x",
                &[]
            )),
            Verdict::Allow
        );
        assert_eq!(
            p.evaluate(&req(
                "s3:GetObject",
                "arn:aws:s3:::ferry-local/home/alice/readonly/x",
                &[]
            )),
            Verdict::Allow
        );
    }

    #[test]
    fn not_action_and_not_resource_invert_the_match() {
        let doc = r#"{"Statement":[{"Effect":"Allow","NotAction":["s3:Delete*"],"NotResource":"arn:aws:s3:::secret/*"}]}"#;
        let p = SessionPolicy::parse(doc, &alice()).unwrap();
        assert_eq!(
            p.evaluate(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
            Verdict::Allow
        );
        assert_eq!(
            p.evaluate(&req("s3:DeleteObject", "arn:aws:s3:::b/k", &[])),
            Verdict::ImplicitDeny
        );
        assert_eq!(
            p.evaluate(&req("s3:GetObject", "arn:aws:s3:::secret/k", &[])),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn string_conditions_follow_iam_semantics_for_missing_keys() {
        let doc = |op: &str| {
            format!(
                r#"{{"Statement":{{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*","Condition":{{"{op}":{{"s3:prefix":["a/*","b"]}}}}}}}}"#
            )
        };
        let eval = |op: &str, ctx: &[(&str, &str)]| {
            SessionPolicy::parse(&doc(op), &alice())
                .unwrap()
                .evaluate(&req("s3:ListBucket", "arn:aws:s3:::x", ctx))
        };
        assert_eq!(eval("StringLike", &[("s3:prefix", "a/z")]), Verdict::Allow);
        assert_eq!(
            eval("StringLike", &[("s3:prefix", "c")]),
            Verdict::ImplicitDeny
        );
        assert_eq!(eval("StringLike", &[]), Verdict::ImplicitDeny);
        assert_eq!(
            eval("StringEquals", &[("s3:prefix", "a/*")]),
            Verdict::Allow,
            "Equals takes * literally"
        );
        assert_eq!(
            eval("StringEquals", &[("s3:prefix", "a/z")]),
            Verdict::ImplicitDeny
        );
        assert_eq!(eval("StringNotLike", &[("s3:prefix", "c")]), Verdict::Allow);
        assert_eq!(
            eval("StringNotLike", &[("s3:prefix", "a/q")]),
            Verdict::ImplicitDeny
        );
        assert_eq!(eval("StringNotLike", &[]), Verdict::Allow);
        assert_eq!(
            eval("StringNotEquals", &[("s3:prefix", "b")]),
            Verdict::ImplicitDeny
        );
        assert_eq!(eval("StringLikeIfExists", &[]), Verdict::Allow);
        assert_eq!(
            eval("StringLike", &[("S3:Prefix", "b")]),
            Verdict::Allow,
            "condition keys ignore case"
        );
    }

    #[test]
    fn unknown_operators_and_variables_fail_closed() {
        let allow_unknown = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
        let p = SessionPolicy::parse(allow_unknown, &alice()).unwrap();
        assert_eq!(
            p.evaluate(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
            Verdict::ImplicitDeny
        );
        let deny_unknown = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}}]}"#;
        let p = SessionPolicy::parse(deny_unknown, &alice()).unwrap();
        assert_eq!(
            p.evaluate(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
            Verdict::ExplicitDeny
        );
        let unknown_var = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::${aws:username}/*"}]}"#;
        let p = SessionPolicy::parse(unknown_var, &alice()).unwrap();
        assert_eq!(
            p.evaluate(&req("s3:GetObject", "arn:aws:s3:::alice/k", &[])),
            Verdict::ImplicitDeny
        );
        let deny_unknown_var = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"arn:aws:s3:::${aws:username"}]}"#;
        let p = SessionPolicy::parse(deny_unknown_var, &alice()).unwrap();
        assert_eq!(
            p.evaluate(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
            Verdict::ExplicitDeny
        );
        // The Not- forms do not turn an unknown variable into a pass.
        let deny_not_resource = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","NotResource":"arn:aws:s3:::${aws:username}/*"}]}"#;
        let p = SessionPolicy::parse(deny_not_resource, &alice()).unwrap();
        assert_eq!(
            p.evaluate(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
            Verdict::ExplicitDeny
        );
        let deny_not_like = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotLike":{"s3:prefix":"${aws:username}/*"}}}]}"#;
        let p = SessionPolicy::parse(deny_not_like, &alice()).unwrap();
        assert_eq!(
            p.evaluate(&req(
                "s3:ListBucket",
                "arn:aws:s3:::b",
                &[("s3:prefix", "x")]
            )),
            Verdict::ExplicitDeny
        );
        let allow_not_resource = r#"{"Statement":[{"Effect":"Allow","Action":"*","NotResource":"arn:aws:s3:::${aws:username}/*"}]}"#;
        let p = SessionPolicy::parse(allow_not_resource, &alice()).unwrap();
        assert_eq!(
            p.evaluate(&req("s3:GetObject", "arn:aws:s3:::b/k", &[])),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn escapes_and_wildcards_behave() {
        let v = alice();
        assert_eq!(substitute("a${*}b${?}c${$}", &v).as_deref(), Some("a*b?c$"));
        assert!(wildcard("a*c", "abbbc") && wildcard("a*c", "ac") && !wildcard("a*c", "ab"));
        assert!(wildcard("a?c", "abc") && !wildcard("a?c", "ac"));
        assert!(wildcard("*", "") && wildcard("**a", "ba") && !wildcard("", "x"));
        assert!(wildcard("h\u{e9}*", "h\u{e9}llo"));
    }

    #[test]
    fn malformed_policies_are_errors() {
        for bad in [
            "not json",
            "{}",
            r#"{"Statement":[{"Effect":"Maybe","Action":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":5}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":"x"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"StringLike":{"k":[1]}}}]}"#,
        ] {
            assert!(SessionPolicy::parse(bad, &alice()).is_err(), "{bad}");
        }
    }
}
