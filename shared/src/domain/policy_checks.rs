//! The policy validator's checks on one user record: the scope-down policy's static rules, a
//! proof by simulation with the core's IAM evaluator (the user's own home is reachable; a sibling
//! home, the bucket root and another bucket are not), and the rest of the record (role ARN, home
//! targets). Pure: fetching the policy and writing the verdict happen at the edges.

use serde_json::Value;

use crate::domain::access::{Request, SessionPolicy, SessionVariables, Verdict, wildcard};
use crate::domain::policy::{MAX_SESSION_POLICY_CHARS, PolicyDocument};
use crate::domain::user::{Home, MappingType, UserRecord};

/// What the record checks allow beyond the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordRules {
    /// The only account user roles may live in (`ALLOWED_ROLE_ACCOUNT`); `None`: any.
    pub role_account: Option<String>,
    /// The path user roles must sit under (`ALLOWED_ROLE_PATH`), e.g. `/transfer/`; `None`: any.
    pub role_path: Option<String>,
}

/// Bucket-level calls a user's session must never be allowed.
const BUCKET_MUTATORS: [&str; 20] = [
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutBucketCORS",
    "s3:PutBucketLogging",
    "s3:PutBucketNotification",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketRequestPayment",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutBucketWebsite",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:PutAccelerateConfiguration",
    "s3:PutInventoryConfiguration",
];

const KNOWN_VARIABLES: [&str; 7] = [
    "transfer:HomeBucket",
    "transfer:HomeDirectory",
    "transfer:HomeFolder",
    "transfer:UserName",
    "*",
    "?",
    "$",
];

/// The home a session's variables come from, as the SFTP front door computes it: the PATH home,
/// or the target of `/` (a chroot), or the first mapping's target.
pub fn variables_home(user: &UserRecord) -> String {
    match &user.home {
        Home::Path(p) => p.clone(),
        Home::Logical(m) => m
            .iter()
            .find(|m| m.entry == "/")
            .or(m.first())
            .map(|m| m.target.clone())
            .unwrap_or_default(),
    }
}

/// Whether the policy ARN has IAM's shape: `arn:<partition>:iam::<12 digits>:policy/<path/name>`.
pub fn policy_arn_ok(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && rest.strip_prefix("policy/").is_some_and(|name| {
            !name.is_empty()
                && !name.ends_with('/')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
        })
}

/// All the checks on a record whose policy document is `doc`. `Err` is the first reason found,
/// short enough for `statusReason`.
pub fn check_user(
    user: &UserRecord,
    doc: &PolicyDocument,
    rules: &RecordRules,
) -> Result<(), String> {
    check_record(user, rules)?;
    if doc.chars() > MAX_SESSION_POLICY_CHARS {
        return Err(format!(
            "policy is {} characters minified, over Transfer's 2,048",
            doc.chars()
        ));
    }
    check_static(doc.as_str(), user)?;
    simulate(doc.as_str(), user)
}

/// Role ARN and home targets.
pub fn check_record(user: &UserRecord, rules: &RecordRules) -> Result<(), String> {
    if !policy_arn_ok(&user.policy_arn) {
        return Err("iamPolicyArn is not an IAM policy ARN".into());
    }
    if let Some(role) = &user.role_arn {
        let parsed = role
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.split_once(":role"))
            .filter(|(account, path)| {
                account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && path.starts_with('/')
                    && path.len() > 1
            });
        let Some((account, path)) = parsed else {
            return Err("roleArn is not an IAM role ARN".into());
        };
        if rules.role_account.as_deref().is_some_and(|a| a != account) {
            return Err(format!(
                "roleArn is outside the allowed account ({account})"
            ));
        }
        if let Some(prefix) = &rules.role_path
            && !path.starts_with(prefix.as_str())
        {
            return Err(format!("roleArn is outside the allowed path {prefix}"));
        }
    }
    let inside = |target: &str| {
        target.starts_with(&format!("/{}/", user.bucket)) || target == format!("/{}", user.bucket)
    };
    if let Home::Logical(mappings) = &user.home
        && let Some(m) = mappings.iter().find(|m| !inside(&m.target))
    {
        return Err(format!(
            "logical target {} is outside the user's bucket",
            m.target
        ));
    }
    Ok(())
}

fn as_list(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The roots a user's objects may live under: `bucket/home` for PATH homes, every mapping target
/// for LOGICAL ones (FILE targets exactly).
fn roots(user: &UserRecord) -> Vec<(String, bool)> {
    match &user.home {
        Home::Path(p) => vec![(p.trim_matches('/').to_owned(), false)],
        Home::Logical(m) => m
            .iter()
            .map(|m| {
                (
                    m.target.trim_matches('/').to_owned(),
                    m.kind == Some(MappingType::File),
                )
            })
            .collect(),
    }
}

/// The static rules: the shape of every statement, checked before any variable is substituted
/// for the actions and after for the resources.
pub fn check_static(doc: &str, user: &UserRecord) -> Result<(), String> {
    // Unknown variables would be left in place by Transfer and match nothing, or worse.
    let mut rest = doc;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "policy has an unterminated ${".to_owned())?;
        let name = &after[..end];
        if !KNOWN_VARIABLES.contains(&name) {
            return Err(format!("policy uses the unknown variable ${{{name}}}"));
        }
        rest = &after[end..];
    }
    let value: Value = serde_json::from_str(doc).map_err(|e| format!("policy is not JSON: {e}"))?;
    let statements: Vec<&Value> = match value.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return Err("policy has no Statement".into()),
    };
    let vars = SessionVariables::for_home(&variables_home(user), user.username.as_str());
    let roots = roots(user);
    for (i, s) in statements.iter().enumerate() {
        let n = i + 1;
        for banned in ["Principal", "NotPrincipal", "NotAction", "NotResource"] {
            if s.get(banned).is_some() {
                return Err(format!("statement {n} uses {banned}"));
            }
        }
        let allow = match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            _ => return Err(format!("statement {n} has no Effect Allow or Deny")),
        };
        let actions = as_list(s.get("Action"));
        if actions.is_empty() {
            return Err(format!("statement {n} has no Action"));
        }
        if allow
            && let Some(a) = actions
                .iter()
                .find(|a| **a == "*" || a.eq_ignore_ascii_case("s3:*"))
        {
            return Err(format!("statement {n} allows every S3 action ({a})"));
        }
        if let Some(a) = actions
            .iter()
            .find(|a| **a != "*" && !a.to_ascii_lowercase().starts_with("s3:"))
        {
            return Err(format!("statement {n} names a non-S3 action {a}"));
        }
        if !allow {
            // A Deny only narrows the session: any shape of it is safe.
            continue;
        }
        for mutator in BUCKET_MUTATORS {
            if let Some(a) = actions
                .iter()
                .find(|a| wildcard(&a.to_ascii_lowercase(), &mutator.to_ascii_lowercase()))
            {
                return Err(format!("statement {n} allows {mutator} (through {a})"));
            }
        }
        let lists = actions
            .iter()
            .any(|a| wildcard(&a.to_ascii_lowercase(), "s3:listbucket"));
        if lists && !has_prefix_condition(s) {
            return Err(format!(
                "statement {n} allows s3:ListBucket without an s3:prefix condition"
            ));
        }
        let resources = as_list(s.get("Resource"));
        if resources.is_empty() {
            return Err(format!("statement {n} has no Resource"));
        }
        for r in resources {
            let resolved = substitute(r, &vars);
            confined(&resolved, &user.bucket, &roots)
                .map_err(|why| format!("statement {n}: resource {r} {why}"))?;
        }
    }
    Ok(())
}

fn has_prefix_condition(statement: &Value) -> bool {
    statement
        .get("Condition")
        .and_then(Value::as_object)
        .is_some_and(|ops| {
            ops.values().any(|keys| {
                keys.as_object()
                    .is_some_and(|k| k.keys().any(|k| k.eq_ignore_ascii_case("s3:prefix")))
            })
        })
}

fn substitute(resource: &str, vars: &SessionVariables) -> String {
    resource
        .replace("${transfer:HomeBucket}", &vars.home_bucket)
        .replace("${transfer:HomeDirectory}", &vars.home_directory)
        .replace("${transfer:HomeFolder}", &vars.home_folder)
        .replace("${transfer:UserName}", &vars.user_name)
}

/// Whether a resource (variables substituted) stays inside the user's bucket (bucket ARNs) or
/// one of the user's roots (object ARNs): its literal part, up to the first wildcard, must be
/// the bucket exactly or lie under a root.
fn confined(resource: &str, bucket: &str, roots: &[(String, bool)]) -> Result<(), &'static str> {
    let Some(path) = resource.strip_prefix("arn:aws:s3:::") else {
        return Err("is not an S3 ARN");
    };
    let literal = path.split(['*', '?']).next().unwrap_or("");
    let wild = literal.len() < path.len();
    if !path.contains('/') {
        return if !wild && path == bucket {
            Ok(())
        } else {
            Err("is not the user's bucket")
        };
    }
    let inside = roots.iter().any(|(root, is_file)| {
        if *is_file {
            !wild && path == root
        } else {
            literal.starts_with(&format!("{root}/")) || (!wild && path == root)
        }
    });
    if inside {
        Ok(())
    } else {
        Err("reaches outside the user's home")
    }
}

/// The proof by simulation: evaluated with the user's variables, the policy allows reading,
/// writing and listing inside the home, and refuses them in a sibling home, at the bucket's
/// root and in another bucket.
pub fn simulate(doc: &str, user: &UserRecord) -> Result<(), String> {
    let home = variables_home(user);
    let vars = SessionVariables::for_home(&home, user.username.as_str());
    let policy =
        SessionPolicy::parse(doc, &vars).map_err(|e| format!("policy cannot be evaluated: {e}"))?;
    let bucket = vars.home_bucket.as_str();
    let folder = vars.home_folder.as_str();
    let allowed = |action: &str, resource: String, prefix: Option<String>| {
        let context: Vec<(&str, &str)> = prefix
            .as_deref()
            .map(|p| vec![("s3:prefix", p)])
            .unwrap_or_default();
        policy.evaluate(&Request {
            action,
            resource: &resource,
            context: &context,
        }) == Verdict::Allow
    };
    let object = |b: &str, key: &str| format!("arn:aws:s3:::{b}/{key}");
    let folder_prefix = |f: &str| {
        if f.is_empty() {
            String::new()
        } else {
            format!("{f}/")
        }
    };
    let inside = format!("{}ferry-probe.bin", folder_prefix(folder));
    for action in ["s3:GetObject", "s3:PutObject"] {
        if !allowed(action, object(bucket, &inside), None) {
            return Err(format!("simulation: {action} is refused inside the home"));
        }
    }
    if !allowed(
        "s3:ListBucket",
        format!("arn:aws:s3:::{bucket}"),
        Some(folder_prefix(folder)),
    ) {
        return Err("simulation: listing the home is refused".into());
    }
    // A sibling of the home: same parent, another name.
    let sibling = match folder.rsplit_once('/') {
        Some((parent, _)) => format!("{parent}/ferry-sibling-probe"),
        None => "ferry-sibling-probe".to_owned(),
    };
    let mut outside = vec![
        (
            "a sibling home",
            bucket.to_owned(),
            format!("{sibling}/x.bin"),
            format!("{sibling}/"),
        ),
        (
            "another bucket",
            format!("{bucket}-ferry-probe-other"),
            inside.clone(),
            folder_prefix(folder),
        ),
    ];
    if !folder.is_empty() {
        outside.push((
            "the bucket root",
            bucket.to_owned(),
            "x.bin".into(),
            String::new(),
        ));
    }
    for (place, b, key, prefix) in outside {
        for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
            if allowed(action, object(&b, &key), None) {
                return Err(format!("simulation: {action} is allowed in {place}"));
            }
        }
        if allowed("s3:ListBucket", format!("arn:aws:s3:::{b}"), Some(prefix)) {
            return Err(format!("simulation: listing {place} is allowed"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::CANONICAL_SCOPE_DOWN;

    fn user(extra: Value) -> UserRecord {
        let mut base = serde_json::json!({
            "username": "alice",
            "bucket": "bkt",
            "home": "partners/alice",
            "iamPolicyArn": "arn:aws:iam::123456789012:policy/scope",
        });
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        UserRecord::from_json(base).unwrap()
    }

    fn check(policy: &str, u: &UserRecord) -> Result<(), String> {
        check_user(
            u,
            &PolicyDocument::from_json(policy).unwrap(),
            &RecordRules::default(),
        )
    }

    fn stmt(s: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{s}]}}"#)
    }

    const LIST: &str = r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":["${transfer:HomeFolder}/*","${transfer:HomeFolder}"]}}}"#;

    #[test]
    fn the_canonical_policy_passes_for_path_and_chroot_users() {
        check(CANONICAL_SCOPE_DOWN, &user(serde_json::json!({}))).unwrap();
        check(
            CANONICAL_SCOPE_DOWN,
            &user(serde_json::json!({"chroot": true})),
        )
        .unwrap();
    }

    #[test]
    fn each_static_rule_refuses_its_kind_of_policy() {
        let u = user(serde_json::json!({}));
        let objects = |action: &str, resource: &str| {
            format!(r#"{{"Effect":"Allow","Action":{action},"Resource":"{resource}"}}"#)
        };
        let home = "arn:aws:s3:::${transfer:HomeDirectory}/*";
        let cases = [
            (
                stmt(&format!("{LIST},{}", objects(r#""*""#, home))),
                "every S3 action",
            ),
            (
                stmt(&format!("{LIST},{}", objects(r#""s3:*""#, home))),
                "every S3 action",
            ),
            (
                stmt(&format!("{LIST},{}", objects(r#""s3:Put*""#, home))),
                "PutBucket",
            ),
            (
                stmt(&format!(
                    "{LIST},{}",
                    objects(r#"["s3:GetObject","iam:PassRole"]"#, home)
                )),
                "non-S3",
            ),
            (
                stmt(&format!(
                    r#"{LIST},{{"Effect":"Allow","NotAction":"s3:DeleteObject","Resource":"{home}"}}"#
                )),
                "NotAction",
            ),
            (
                stmt(&format!(
                    r#"{LIST},{{"Effect":"Allow","Action":"s3:GetObject","NotResource":"{home}"}}"#
                )),
                "NotResource",
            ),
            (
                stmt(&format!(
                    r#"{LIST},{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"{home}"}}"#
                )),
                "Principal",
            ),
            (
                stmt(
                    r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}"}"#,
                ),
                "without an s3:prefix",
            ),
            (
                stmt(&format!(
                    "{LIST},{}",
                    objects(r#""s3:GetObject""#, "arn:aws:s3:::bkt/*")
                )),
                "outside the user's home",
            ),
            (
                stmt(&format!(
                    "{LIST},{}",
                    objects(r#""s3:GetObject""#, "arn:aws:s3:::bkt/partners/alice*")
                )),
                "outside the user's home",
            ),
            (
                stmt(&format!(
                    "{LIST},{}",
                    objects(r#""s3:GetObject""#, "arn:aws:s3:::${aws:username}/*")
                )),
                "unknown variable",
            ),
        ];
        for (policy, why) in cases {
            let err = check(&policy, &u).unwrap_err();
            assert!(err.contains(why), "{policy}: {err}");
        }
    }

    #[test]
    fn literal_paths_inside_the_home_pass_and_the_simulation_catches_what_rules_cannot() {
        let u = user(serde_json::json!({}));
        let literal = stmt(&format!(
            r#"{LIST},{{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bkt/partners/alice/*"}}"#
        ));
        check(&literal, &u).unwrap();
        // Read-only: the home cannot be written, which the simulation reports.
        let read_only = stmt(&format!(
            r#"{LIST},{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${{transfer:HomeDirectory}}/*"}}"#
        ));
        let err = check(&read_only, &u).unwrap_err();
        assert!(
            err.contains("PutObject is refused inside the home"),
            "{err}"
        );
        // A list condition that also matches a sibling home.
        let loose = stmt(
            r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":["*"]}}},{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::${transfer:HomeDirectory}/*"}"#,
        );
        let err = check(&loose, &u).unwrap_err();
        assert!(err.contains("listing"), "{err}");
    }

    #[test]
    fn role_arns_and_targets_are_held_to_the_configured_account_path_and_bucket() {
        let rules = RecordRules {
            role_account: Some("123456789012".into()),
            role_path: Some("/transfer/".into()),
        };
        let ok = user(serde_json::json!({"roleArn": "arn:aws:iam::123456789012:role/transfer/u"}));
        check_record(&ok, &rules).unwrap();
        for (role, why) in [
            ("arn:aws:iam::999999999999:role/transfer/u", "account"),
            ("arn:aws:iam::123456789012:role/admin", "path"),
        ] {
            let err =
                check_record(&user(serde_json::json!({"roleArn": role})), &rules).unwrap_err();
            assert!(err.contains(why), "{role}: {err}");
        }
        let outside = user(serde_json::json!({
            "homeDirectoryType": "LOGICAL",
            "homeDirectoryDetails": [{"Entry": "/", "Target": "/other-bucket/x"}],
        }));
        assert!(
            check_record(&outside, &RecordRules::default())
                .unwrap_err()
                .contains("outside")
        );
        assert!(policy_arn_ok("arn:aws:iam::123456789012:policy/a/b-c"));
        for bad in [
            "arn:aws:iam::1234:policy/x",
            "arn:aws:s3:::x",
            "arn:aws:iam::123456789012:policy/",
            "nope",
        ] {
            assert!(!policy_arn_ok(bad), "{bad}");
        }
    }
}
