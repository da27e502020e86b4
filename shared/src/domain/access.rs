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
//!
//! Two readers here are shared with the policy validator (`policy_checks`), so that a policy
//! means the same to both: [`read_statements`] reads the JSON shape of the statements once, and
//! [`pieces`] finds the `${…}` variables in a string.

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

    /// What a known variable stands for in this session.
    pub fn value(&self, var: KnownVariable) -> &str {
        match var {
            KnownVariable::HomeBucket => &self.home_bucket,
            KnownVariable::HomeDirectory => &self.home_directory,
            KnownVariable::HomeFolder => &self.home_folder,
            KnownVariable::UserName => &self.user_name,
            KnownVariable::Star => "*",
            KnownVariable::Question => "?",
            KnownVariable::Dollar => "$",
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        KnownVariable::from_name(name).map(|v| self.value(v))
    }
}

/// The variables the evaluator knows: Transfer's four and IAM's three escapes. Any other name
/// fails closed here and is refused by the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownVariable {
    HomeBucket,
    HomeDirectory,
    HomeFolder,
    UserName,
    /// `${*}`
    Star,
    /// `${?}`
    Question,
    /// `${$}`
    Dollar,
}

impl KnownVariable {
    /// The variable named between `${` and `}`; names are case-sensitive, as in IAM.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "transfer:HomeBucket" => Self::HomeBucket,
            "transfer:HomeDirectory" => Self::HomeDirectory,
            "transfer:HomeFolder" => Self::HomeFolder,
            "transfer:UserName" => Self::UserName,
            "*" => Self::Star,
            "?" => Self::Question,
            "$" => Self::Dollar,
            _ => return None,
        })
    }

    /// `${*}`, `${?}` and `${$}`: IAM's escapes, not session values.
    pub fn is_escape(self) -> bool {
        matches!(self, Self::Star | Self::Question | Self::Dollar)
    }
}

/// A piece of a string that may hold `${…}` policy variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text outside any `${…}`; never empty.
    Text(&'a str),
    /// The name between `${` and the first `}` after it. IAM has no nesting, so in
    /// `${a${b}}` the name is `a${b` (and a `}` text follows); `${}` gives the empty name.
    Variable(&'a str),
    /// A `${` with no `}` after it: what follows the `${`, to the end of the string.
    Unterminated(&'a str),
}

/// The pieces of `s`, in order: the one scanner of `${…}` for the evaluator and the validator.
pub fn pieces(s: &str) -> Pieces<'_> {
    Pieces { rest: s }
}

/// The iterator of [`pieces`].
#[derive(Debug, Clone)]
pub struct Pieces<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(after) = self.rest.strip_prefix("${") else {
            let end = self.rest.find("${").unwrap_or(self.rest.len());
            // `find` returns the start of the ASCII `${`, a character boundary.
            let (text, rest) = self.rest.split_at(end);
            self.rest = rest;
            return Some(Piece::Text(text));
        };
        Some(match after.split_once('}') {
            Some((name, rest)) => {
                self.rest = rest;
                Piece::Variable(name)
            }
            None => {
                self.rest = "";
                Piece::Unterminated(after)
            }
        })
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
    /// The statement's index (from 0) and what is wrong with it.
    #[error("statement {0}: {1}")]
    Statement(usize, &'static str),
}

/// A statement's `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` or `NotAction` (`negated`), `Resource` or `NotResource`: a string or a list of
/// strings in the JSON, always a list here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns {
    pub patterns: Vec<String>,
    pub negated: bool,
}

/// One key of a `Condition` block, as written: `{"<operator>": {"<key>": <values>}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionEntry {
    /// `StringLike`, `StringEqualsIfExists`, … (unknown operators are kept, to fail closed).
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// One statement as written, variables not substituted: the JSON shape read once, for the
/// evaluator and the validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub action: Patterns,
    /// `None` when the statement has neither `Resource` nor `NotResource` (the evaluator then
    /// takes `*`; the validator refuses it).
    pub resource: Option<Patterns>,
    pub conditions: Vec<ConditionEntry>,
    /// `Principal` or `NotPrincipal` when the statement has one: the evaluator ignores it (a
    /// session policy has no principal to match), the validator refuses it.
    pub principal: Option<&'static str>,
}

/// The statements of a policy document (`Statement` may be one object or a list of them).
pub fn read_statements(json: &str) -> Result<Vec<Statement>, AccessError> {
    let doc: Value = serde_json::from_str(json).map_err(|e| AccessError::Json(e.to_string()))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err(AccessError::NoStatement),
    };
    statements
        .into_iter()
        .enumerate()
        .map(|(i, s)| read_statement(s).map_err(|why| AccessError::Statement(i, why)))
        .collect()
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// Which of a pair of keys (`Action`/`NotAction`, `Resource`/`NotResource`) the statement has,
/// as a list. `Err`: it has both, or the value is not a string or a list of strings.
fn pair(
    s: &Value,
    [name, not_name]: [&str; 2],
    both: &'static str,
    [not_strings, not_strings_negated]: [&'static str; 2],
) -> Result<Option<Patterns>, &'static str> {
    let (value, negated) = match (s.get(name), s.get(not_name)) {
        (Some(v), None) => (v, false),
        (None, Some(v)) => (v, true),
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => return Err(both),
    };
    let patterns = strings(value).ok_or(if negated {
        not_strings_negated
    } else {
        not_strings
    })?;
    Ok(Some(Patterns { patterns, negated }))
}

fn read_statement(s: &Value) -> Result<Statement, &'static str> {
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err("Effect must be Allow or Deny"),
    };
    const ONE_ACTION: &str = "exactly one of Action and NotAction is required";
    let action = pair(
        s,
        ["Action", "NotAction"],
        ONE_ACTION,
        [
            "Action must be a string or a list of strings",
            "NotAction must be a string or a list of strings",
        ],
    )?
    .ok_or(ONE_ACTION)?;
    let resource = pair(
        s,
        ["Resource", "NotResource"],
        "Resource and NotResource are mutually exclusive",
        [
            "Resource must be a string or a list of strings",
            "NotResource must be a string or a list of strings",
        ],
    )?;
    let mut conditions = Vec::new();
    if let Some(block) = s.get("Condition") {
        let block = block.as_object().ok_or("Condition must be an object")?;
        for (operator, keys) in block {
            let keys = keys
                .as_object()
                .ok_or("a condition operator must map keys to values")?;
            for (key, values) in keys {
                conditions.push(ConditionEntry {
                    operator: operator.clone(),
                    key: key.clone(),
                    values: strings(values).ok_or("condition values must be strings")?,
                });
            }
        }
    }
    let principal = ["Principal", "NotPrincipal"]
        .into_iter()
        .find(|k| s.get(*k).is_some());
    Ok(Statement {
        effect,
        action,
        resource,
        conditions,
        principal,
    })
}

/// A parsed session policy, ready to evaluate many requests.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    rules: Vec<Rule>,
}

/// A statement ready to evaluate: variables substituted, condition operators resolved.
#[derive(Debug, Clone)]
struct Rule {
    allow: bool,
    actions: Vec<String>,
    not_action: bool,
    /// `None`: the pattern holds an unknown or unterminated variable.
    resources: Vec<Option<Pattern>>,
    not_resource: bool,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
struct Condition {
    op: Option<Op>,
    if_exists: bool,
    key: String,
    values: Vec<Option<Pattern>>,
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
        let rules = read_statements(json)?
            .iter()
            .map(|s| Rule::new(s, vars))
            .collect();
        Ok(Self { rules })
    }

    /// IAM's order: an explicit deny anywhere wins, then an allow, else the default deny.
    pub fn evaluate(&self, req: &Request<'_>) -> Verdict {
        let matching = |allow: bool| {
            self.rules
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

/// Replaces `${…}` variables; `None` when one is unknown or unterminated.
fn substitute(s: &str, vars: &SessionVariables) -> Option<Pattern> {
    let mut out = Vec::with_capacity(s.len());
    for piece in pieces(s) {
        match piece {
            Piece::Text(text) => out.extend(text.chars().map(Elem::from_pattern)),
            // What a variable stands for is literal text: IAM's `${*}`, `${?}` and `${$}` exist
            // precisely to write those characters without their wildcard meaning, and a session
            // value (a home folder) is matched as written, never as a pattern.
            Piece::Variable(name) => out.extend(vars.get(name)?.chars().map(Elem::Lit)),
            Piece::Unterminated(_) => return None,
        }
    }
    Some(Pattern(out))
}

/// One element of a pattern after substitution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    /// `*` as written in the policy: any run of characters.
    Any,
    /// `?` as written in the policy: any one character.
    One,
    Lit(char),
}

impl Elem {
    fn from_pattern(c: char) -> Self {
        match c {
            '*' => Self::Any,
            '?' => Self::One,
            c => Self::Lit(c),
        }
    }

    /// The character as it stands in the text (for the `StringEquals` operators, where `*` and
    /// `?` are plain characters).
    fn as_char(self) -> char {
        match self {
            Self::Any => '*',
            Self::One => '?',
            Self::Lit(c) => c,
        }
    }
}

/// A resource or condition value with its variables substituted: wildcards only where the
/// policy's own text has them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(Vec<Elem>);

impl Pattern {
    fn equals(&self, text: &str) -> bool {
        self.0.iter().map(|e| e.as_char()).eq(text.chars())
    }

    /// `*` matches any run of characters, `?` any one character; everything else itself.
    fn matches(&self, text: &str) -> bool {
        let (p, t): (&[Elem], Vec<char>) = (&self.0, text.chars().collect());
        let (mut pi, mut ti) = (0, 0);
        let (mut star, mut mark) = (None, 0);
        while ti < t.len() {
            match p.get(pi) {
                Some(Elem::One) => {
                    pi += 1;
                    ti += 1;
                }
                Some(Elem::Lit(c)) if *c == t[ti] => {
                    pi += 1;
                    ti += 1;
                }
                Some(Elem::Any) => {
                    star = Some(pi);
                    mark = ti;
                    pi += 1;
                }
                _ => match star {
                    Some(s) => {
                        pi = s + 1;
                        mark += 1;
                        ti = mark;
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|e| *e == Elem::Any)
    }
}

impl Rule {
    fn new(s: &Statement, vars: &SessionVariables) -> Self {
        let conditions = s
            .conditions
            .iter()
            .map(|c| {
                let (base, if_exists) = match c.operator.strip_suffix("IfExists") {
                    Some(b) => (b, true),
                    None => (c.operator.as_str(), false),
                };
                let op = match base {
                    "StringEquals" => Some(Op::Equals),
                    "StringNotEquals" => Some(Op::NotEquals),
                    "StringLike" => Some(Op::Like),
                    "StringNotLike" => Some(Op::NotLike),
                    _ => None,
                };
                Condition {
                    op,
                    if_exists,
                    key: c.key.to_ascii_lowercase(),
                    values: c.values.iter().map(|v| substitute(v, vars)).collect(),
                }
            })
            .collect();
        // No Resource nor NotResource: every resource.
        let every = ["*".to_owned()];
        let (resources, not_resource) = match &s.resource {
            Some(r) => (r.patterns.as_slice(), r.negated),
            None => (every.as_slice(), false),
        };
        Self {
            allow: s.effect == Effect::Allow,
            actions: s.action.patterns.clone(),
            not_action: s.action.negated,
            resources: resources.iter().map(|r| substitute(r, vars)).collect(),
            not_resource,
            conditions,
        }
    }

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
            .any(|pattern| pattern.matches(req.resource));
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
            Op::Like | Op::NotLike => p.matches(value),
            Op::Equals | Op::NotEquals => p.equals(value),
        });
        match op {
            Op::Equals | Op::Like => any,
            Op::NotEquals | Op::NotLike => !any,
        }
    }
}

/// `*` matches any run of characters, `?` any one character (patterns with no variables, such
/// as actions).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    Pattern(pattern.chars().map(Elem::from_pattern).collect()).matches(text)
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
    fn an_escaped_star_in_a_policy_allows_only_keys_with_a_star_in_them() {
        let doc = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${transfer:HomeDirectory}/${*}"},
            {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":"${transfer:HomeFolder}/${?}"}}}]}"#;
        let p = SessionPolicy::parse(doc, &alice()).unwrap();
        let home = "arn:aws:s3:::ferry-local/home/alice";
        assert_eq!(
            p.evaluate(&req("s3:GetObject", &format!("{home}/*"), &[])),
            Verdict::Allow
        );
        assert_eq!(
            p.evaluate(&req("s3:GetObject", &format!("{home}/report.csv"), &[])),
            Verdict::ImplicitDeny
        );
        let list = |prefix: &str| {
            p.evaluate(&req(
                "s3:ListBucket",
                "arn:aws:s3:::ferry-local",
                &[("s3:prefix", prefix)],
            ))
        };
        assert_eq!(list("home/alice/?"), Verdict::Allow);
        assert_eq!(list("home/alice/x"), Verdict::ImplicitDeny);
    }

    #[test]
    fn a_session_value_is_matched_as_written_never_as_a_pattern() {
        let vars = SessionVariables::for_home("/ferry-data/partners/a*", "a");
        let doc = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${transfer:HomeDirectory}/*"}]}"#;
        let p = SessionPolicy::parse(doc, &vars).unwrap();
        assert_eq!(
            p.evaluate(&req(
                "s3:GetObject",
                "arn:aws:s3:::ferry-data/partners/a*/k",
                &[]
            )),
            Verdict::Allow
        );
        assert_eq!(
            p.evaluate(&req(
                "s3:GetObject",
                "arn:aws:s3:::ferry-data/partners/abc/k",
                &[]
            )),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn escapes_and_wildcards_behave() {
        let v = alice();
        let escaped = substitute("a${*}b${?}c${$}", &v).unwrap();
        assert!(escaped.equals("a*b?c$"));
        assert!(escaped.matches("a*b?c$"));
        // The escapes are the literal characters, not wildcards (IAM's meaning).
        assert!(!escaped.matches("aXXbYc$"));
        assert!(!substitute("${*}", &v).unwrap().matches("anything"));
        assert!(substitute("*", &v).unwrap().matches("anything"));
        assert!(wildcard("a*c", "abbbc") && wildcard("a*c", "ac") && !wildcard("a*c", "ab"));
        assert!(wildcard("a?c", "abc") && !wildcard("a?c", "ac"));
        assert!(wildcard("*", "") && wildcard("**a", "ba") && !wildcard("", "x"));
        assert!(wildcard("h\u{e9}*", "h\u{e9}llo"));
    }

    #[test]
    fn the_scanner_yields_text_and_variables_in_order() {
        use Piece::*;
        let all = |s| pieces(s).collect::<Vec<_>>();
        assert_eq!(
            all("arn:aws:s3:::${transfer:HomeBucket}/${*}x"),
            [
                Text("arn:aws:s3:::"),
                Variable("transfer:HomeBucket"),
                Text("/"),
                Variable("*"),
                Text("x")
            ]
        );
        assert_eq!(all(""), []);
        assert_eq!(all("plain $ {} text"), [Text("plain $ {} text")]);
        assert_eq!(all("${a}${b}"), [Variable("a"), Variable("b")]);
    }

    #[test]
    fn the_scanner_reports_unterminated_nested_and_empty_variables_as_written() {
        use Piece::*;
        let all = |s| pieces(s).collect::<Vec<_>>();
        assert_eq!(
            all("a/${transfer:Home"),
            [Text("a/"), Unterminated("transfer:Home")]
        );
        assert_eq!(all("${"), [Unterminated("")]);
        assert_eq!(all("x${}y"), [Text("x"), Variable(""), Text("y")]);
        // No nesting: the name runs to the first `}`, and the outer `}` is text.
        assert_eq!(all("${a${b}}"), [Variable("a${b"), Text("}")]);
        assert_eq!(all("${a}${"), [Variable("a"), Unterminated("")]);
        assert_eq!(
            all("h\u{e9}${x}\u{e9}"),
            [Text("h\u{e9}"), Variable("x"), Text("\u{e9}")]
        );
    }

    #[test]
    fn substitution_fails_on_unknown_nested_empty_or_unterminated_variables() {
        let v = alice();
        for bad in [
            "${aws:username}",
            "${",
            "a${transfer:HomeBucket",
            "${}",
            "${a${*}}",
        ] {
            assert_eq!(substitute(bad, &v), None, "{bad}");
        }
        assert!(
            substitute(
                "${transfer:HomeBucket}/${transfer:HomeFolder}/${transfer:UserName}",
                &v
            )
            .is_some_and(|p| p.equals("ferry-local/home/alice/alice"))
        );
        assert!(
            KnownVariable::from_name("transfer:homebucket").is_none(),
            "names are case-sensitive"
        );
    }

    #[test]
    fn statements_are_read_once_with_strings_or_lists_and_variables_left_in_place() {
        let doc = r#"{"Statement":{"Effect":"Deny","NotAction":"s3:Get*","Resource":["arn:aws:s3:::${transfer:HomeBucket}","*"],"Principal":"*","Condition":{"StringLike":{"s3:prefix":"${transfer:HomeFolder}/*"}}}}"#;
        let [s] = read_statements(doc).unwrap().try_into().unwrap();
        assert_eq!(s.effect, Effect::Deny);
        assert_eq!(
            s.action,
            Patterns {
                patterns: vec!["s3:Get*".into()],
                negated: true
            }
        );
        assert_eq!(
            s.resource,
            Some(Patterns {
                patterns: vec!["arn:aws:s3:::${transfer:HomeBucket}".into(), "*".into()],
                negated: false
            })
        );
        assert_eq!(
            s.conditions,
            [ConditionEntry {
                operator: "StringLike".into(),
                key: "s3:prefix".into(),
                values: vec!["${transfer:HomeFolder}/*".into()],
            }]
        );
        assert_eq!(s.principal, Some("Principal"));
        let bare = read_statements(r#"{"Statement":[{"Effect":"Allow","Action":[]}]}"#).unwrap();
        assert_eq!(bare[0].resource, None);
        assert!(bare[0].action.patterns.is_empty());
        assert_eq!(
            read_statements(
                r#"{"Statement":[{"Effect":"Allow","Action":"*"},{"Effect":"Allow"}]}"#
            ),
            Err(AccessError::Statement(
                1,
                "exactly one of Action and NotAction is required"
            ))
        );
    }

    #[test]
    fn a_statement_without_resource_applies_to_every_resource() {
        let p = SessionPolicy::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject"}}"#,
            &alice(),
        )
        .unwrap();
        assert_eq!(
            p.evaluate(&req("s3:GetObject", "arn:aws:s3:::any/k", &[])),
            Verdict::Allow
        );
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
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","NotAction":[1]}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"StringLike":"k"}}]}"#,
        ] {
            assert!(SessionPolicy::parse(bad, &alice()).is_err(), "{bad}");
        }
    }
}
