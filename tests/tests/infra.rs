//! The deployment template and the code cannot drift: each function's environment in
//! `infra/template.yaml` sets every variable its configuration requires, and nothing it does not
//! read; the API Gateway variant serves the route and headers the auth function parses, signed,
//! uncached, and never logging a password; the defender's table has the key and TTL its store
//! writes, and the auth function may make only the calls that store makes.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use ferry_core::config::{AuthConfig, ProcessorConfig, RotationConfig, ValidatorConfig};
use ferry_core::domain::defender::{DefenderConfig, attr};
use ferry_core::domain::transfer::{PASSWORD_HEADERS, QUERY_SOURCE_IP};
use serde_norway::Value as Yaml;

/// A valid value for every variable any function reads.
fn good(name: &str) -> Option<String> {
    Some(
        match name {
            "DEFAULT_ROLE_ARN" => "arn:aws:iam::123456789012:role/ferry-user",
            "ALLOWED_ROLE_ACCOUNT" => "123456789012",
            "ALLOWED_ROLE_PATH" => "/transfer/",
            "SALT_CACHE_SECONDS"
            | "POLICY_CACHE_SECONDS"
            | "VERIFIED_LOGIN_CACHE_SECONDS"
            | "DISABLE_AFTER_INACTIVE_DAYS"
            | "PASSWORD_MAX_AGE_DAYS"
            | "MAX_OBJECT_BYTES" => "60",
            "DEFENDER_SOURCE_THRESHOLD"
            | "DEFENDER_PAIR_THRESHOLD"
            | "DEFENDER_BAN_SECONDS"
            | "DEFENDER_BAN_CAP_SECONDS" => "60",
            "DEFENDER_SAFE_LIST" => "192.0.2.0/24, 2001:db8::1",
            "INCOMING_PREFIXES" => "home/",
            "PROCESSED_PREFIX" => "processed/",
            "QUARANTINE_PREFIX" => "quarantine/",
            "SOURCE_ACTION" => "move",
            "DIRECTORY_SOURCES" => {
                r#"{"sources":[{"name":"corp","url":"ldaps://ldap.corp.example","baseDn":"dc=corp","bindDn":"cn=svc,dc=corp","bindPassword":"arn:aws:secretsmanager:us-east-1:123456789012:secret:bind"}]}"#
            }
            _ => "value",
        }
        .to_owned(),
    )
}

/// The names a configuration reads, and those it cannot do without.
type Names = (BTreeSet<String>, BTreeSet<String>);

fn read_by(parse: impl Fn(&dyn Fn(&str) -> Option<String>) -> bool) -> Names {
    let asked = RefCell::new(BTreeSet::new());
    assert!(parse(&|name: &str| {
        asked.borrow_mut().insert(name.to_owned());
        good(name)
    }));
    let asked = asked.into_inner();
    let required = asked
        .iter()
        .filter(|missing| {
            !parse(&|name: &str| {
                if name == missing.as_str() {
                    None
                } else {
                    good(name)
                }
            })
        })
        .cloned()
        .collect();
    (asked, required)
}

/// Each function's `Environment.Variables` keys, by its package name (from `CodeUri`).
fn template_environments() -> BTreeMap<String, BTreeSet<String>> {
    let t = template();
    at(&t, &["Resources"])
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r.get("Type").map(text) == Some("AWS::Serverless::Function"))
        .map(|r| {
            let props = at(r, &["Properties"]);
            let package = text(at(props, &["CodeUri"]))
                .strip_prefix("../functions/")
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
            let vars = props
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Yaml::as_mapping)
                .map(|m| m.keys().map(|k| text(k).to_owned()).collect())
                .unwrap_or_default();
            (package, vars)
        })
        .collect()
}

#[test]
fn every_function_gets_exactly_the_environment_its_configuration_reads() {
    let template = template_environments();
    let configs: [(&str, Names); 4] = [
        ("auth", read_by(|g| AuthConfig::from_lookup(g).is_ok())),
        (
            "salt-rotation",
            read_by(|g| RotationConfig::from_lookup(g).is_ok()),
        ),
        (
            "policy-validator",
            read_by(|g| ValidatorConfig::from_lookup(g).is_ok()),
        ),
        (
            "upload-processor",
            read_by(|g| ProcessorConfig::from_lookup(g).is_ok()),
        ),
    ];
    let deployed: Vec<&str> = template.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = configs.iter().map(|(n, _)| *n).collect();
    expected.sort_unstable();
    assert_eq!(
        deployed, expected,
        "the template deploys exactly the four functions"
    );
    for (name, (read, required)) in configs {
        let set = &template[name];
        let unknown: Vec<_> = set.difference(&read).collect();
        assert!(
            unknown.is_empty(),
            "{name}: the template sets {unknown:?}, which the code never reads"
        );
        let missing: Vec<_> = required.difference(set).collect();
        assert!(
            missing.is_empty(),
            "{name}: the template lacks required {missing:?}"
        );
    }
}

// ----- The API Gateway identity provider ------------------------------------------------------

fn template() -> Yaml {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn resource<'a>(t: &'a Yaml, name: &str) -> &'a Yaml {
    t.get("Resources")
        .and_then(|r| r.get(name))
        .unwrap_or_else(|| panic!("the template has no resource {name}"))
}

/// A node's value with its CloudFormation tag (`!Sub`, `!Ref`, ...) taken off.
fn untagged(v: &Yaml) -> &Yaml {
    match v {
        Yaml::Tagged(t) => &t.value,
        other => other,
    }
}

fn text(v: &Yaml) -> &str {
    untagged(v)
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {v:?}"))
}

fn at<'a>(v: &'a Yaml, path: &[&str]) -> &'a Yaml {
    path.iter().fold(v, |node, key| {
        untagged(node)
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {node:?}"))
    })
}

/// The route of the API Gateway sample events, which the auth tests feed to the function.
fn sample_event_route() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/auth");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("apigw-") && name.ends_with(".json") {
            let event: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            routes.insert(event["resource"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        routes.len(),
        1,
        "the sample events use one route: {routes:?}"
    );
    routes.pop_first().unwrap()
}

#[test]
fn the_api_serves_the_route_the_auth_function_reads_signed_and_never_cached() {
    let t = template();
    let api = resource(&t, "AuthApi");
    assert_eq!(text(at(api, &["Condition"])), "IsApiIdp");
    let props = at(api, &["Properties"]);
    let paths = at(props, &["DefinitionBody", "paths"])
        .as_mapping()
        .unwrap();
    let routes: Vec<&str> = paths.keys().map(text).collect();
    assert_eq!(routes, [sample_event_route().as_str()], "exactly one route");
    let methods = untagged(paths.values().next().unwrap())
        .as_mapping()
        .unwrap();
    let verbs: Vec<&str> = methods.keys().map(text).collect();
    assert_eq!(verbs, ["get"], "Transfer only ever GETs the route");
    let get = at(props, &["DefinitionBody", "paths", routes[0], "get"]);

    // Signed: the method's security is the SigV4 scheme (AWS_IAM authorization).
    let security = at(get, &["security"]).as_sequence().unwrap();
    assert_eq!(security.len(), 1);
    let scheme = security[0]
        .as_mapping()
        .unwrap()
        .keys()
        .next()
        .map(text)
        .unwrap();
    let scheme = at(
        props,
        &["DefinitionBody", "components", "securitySchemes", scheme],
    );
    assert_eq!(
        text(at(scheme, &["x-amazon-apigateway-authtype"])),
        "awsSigv4"
    );

    // Proxied as it came to the auth function itself.
    let integration = at(get, &["x-amazon-apigateway-integration"]);
    assert_eq!(text(at(integration, &["type"])), "aws_proxy");
    assert!(text(at(integration, &["uri"])).contains("${AuthFunction.Arn}"));

    // Never cached, and no request data (the Password header) copied into logs.
    assert_eq!(at(props, &["CacheClusterEnabled"]).as_bool(), Some(false));
    let settings = at(props, &["MethodSettings"]).as_sequence().unwrap();
    assert!(!settings.is_empty());
    for s in settings {
        assert_eq!(at(s, &["CachingEnabled"]).as_bool(), Some(false));
        assert_eq!(at(s, &["DataTraceEnabled"]).as_bool(), Some(false));
    }
}

#[test]
fn only_transfer_may_call_the_api_and_only_that_route_may_invoke_the_function() {
    let t = template();
    // `/servers/{serverId}/users/{username}/config` → `GET/servers/*/users/*/config`
    let route: String = sample_event_route()
        .split('/')
        .map(|part| if part.starts_with('{') { "*" } else { part })
        .collect::<Vec<_>>()
        .join("/");
    let method_arn_tail = format!("/${{AuthApi.Stage}}/GET{route}");

    let permission = at(resource(&t, "AuthApiPermission"), &["Properties"]);
    assert_eq!(
        text(at(permission, &["Principal"])),
        "apigateway.amazonaws.com"
    );
    assert!(text(at(permission, &["SourceArn"])).ends_with(&method_arn_tail));

    let role = at(resource(&t, "TransferInvocationRole"), &["Properties"]);
    let trust = &at(role, &["AssumeRolePolicyDocument", "Statement"])
        .as_sequence()
        .unwrap()[0];
    assert_eq!(
        text(at(trust, &["Principal", "Service"])),
        "transfer.amazonaws.com"
    );
    at(trust, &["Condition", "StringEquals", "aws:SourceAccount"]);
    let statements: Vec<&Yaml> = at(role, &["Policies"])
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| {
            at(p, &["PolicyDocument", "Statement"])
                .as_sequence()
                .unwrap()
        })
        .collect();
    let invoke = statements
        .iter()
        .find(|s| text(at(s, &["Action"])) == "execute-api:Invoke")
        .unwrap();
    assert!(text(at(invoke, &["Resource"])).ends_with(&method_arn_tail));
    for s in &statements {
        let resources = untagged(at(s, &["Resource"]));
        let resources: Vec<&str> = match resources.as_sequence() {
            Some(list) => list.iter().map(text).collect(),
            None => vec![text(resources)],
        };
        assert!(
            resources.iter().all(|r| r.contains("${AuthApi}")),
            "the invocation role reaches only this API: {resources:?}"
        );
    }

    // The direct-invocation permission exists only when Transfer invokes the function directly.
    let direct = resource(&t, "AuthTransferPermission");
    assert_eq!(text(at(direct, &["Condition"])), "IsLambdaIdp");
}

#[test]
fn waf_limits_each_client_and_user_and_its_logs_never_hold_a_password() {
    let t = template();
    let acl = at(resource(&t, "AuthApiWebAcl"), &["Properties"]);
    let rules = at(acl, &["Rules"]).as_sequence().unwrap();
    let mut keys = Vec::new();
    for rule in rules {
        let rate = at(rule, &["Statement", "RateBasedStatement"]);
        // Every call comes from Transfer's own address: a rule keyed on it would block everyone.
        assert_eq!(text(at(rate, &["AggregateKeyType"])), "CUSTOM_KEYS");
        assert!(at(rule, &["Action", "Block"]).is_mapping());
        for key in at(rate, &["CustomKeys"]).as_sequence().unwrap() {
            let key = key.as_mapping().unwrap();
            assert_eq!(key.len(), 1);
            let (kind, spec) = key.iter().next().unwrap();
            keys.push(match text(kind) {
                "QueryArgument" => format!("query {}", text(at(spec, &["Name"]))),
                other => other.to_owned(),
            });
        }
    }
    assert_eq!(
        keys,
        [format!("query {QUERY_SOURCE_IP}"), "UriPath".to_owned()]
    );

    let logging = at(resource(&t, "AuthApiWafLogging"), &["Properties"]);
    let redacted: BTreeSet<String> = at(logging, &["RedactedFields"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| text(at(f, &["SingleHeader", "Name"])).to_ascii_lowercase())
        .collect();
    for header in PASSWORD_HEADERS {
        assert!(
            redacted.contains(&header.to_ascii_lowercase()),
            "WAF logs would hold the {header} header"
        );
    }
}

// ----- The defender ---------------------------------------------------------------------------

/// The first branch of an `!If [Condition, then, else]`, with the condition's name; `None` for a
/// node that is not an `!If`.
fn if_then(v: &Yaml) -> Option<(&str, &Yaml)> {
    match v {
        Yaml::Tagged(t) if t.tag == "If" => {
            let args = t.value.as_sequence().unwrap();
            assert_eq!(args.len(), 3, "!If takes a condition and two branches");
            Some((text(&args[0]), &args[1]))
        }
        _ => None,
    }
}

/// A parameter's default as the number it stands for.
fn default_number(t: &Yaml, parameter: &str) -> u64 {
    let default = at(t, &["Parameters", parameter, "Default"]);
    default
        .as_u64()
        .or_else(|| default.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{parameter}'s default is not a number: {default:?}"))
}

#[test]
fn the_defender_table_holds_what_its_store_writes_and_the_auth_function_only_the_calls_it_makes() {
    let t = template();

    // Created with the Defender parameter (on by default), keyed and expired as the store writes.
    assert_eq!(
        text(at(&t, &["Parameters", "Defender", "Default"])),
        "ENABLED"
    );
    let table = resource(&t, "DefenderTable");
    assert_eq!(text(at(table, &["Type"])), "AWS::DynamoDB::Table");
    assert_eq!(text(at(table, &["Condition"])), "HasDefender");
    let props = at(table, &["Properties"]);
    let keys = at(props, &["KeySchema"]).as_sequence().unwrap();
    assert_eq!(keys.len(), 1, "a partition key and no sort key");
    assert_eq!(text(at(&keys[0], &["AttributeName"])), attr::KEY);
    assert_eq!(text(at(&keys[0], &["KeyType"])), "HASH");
    let defined = at(props, &["AttributeDefinitions"]).as_sequence().unwrap();
    assert_eq!(defined.len(), 1);
    assert_eq!(text(at(&defined[0], &["AttributeName"])), attr::KEY);
    assert_eq!(text(at(&defined[0], &["AttributeType"])), "S");
    let ttl = at(props, &["TimeToLiveSpecification"]);
    assert_eq!(text(at(ttl, &["AttributeName"])), attr::EXPIRES_AT);
    assert_eq!(at(ttl, &["Enabled"]).as_bool(), Some(true));

    // The auth function is told the table only when it exists.
    let auth = at(resource(&t, "AuthFunction"), &["Properties"]);
    let env = at(auth, &["Environment", "Variables"]);
    let (condition, table_ref) = if_then(at(env, &["DEFENDER_TABLE"])).unwrap();
    assert_eq!(condition, "HasDefender");
    assert_eq!(text(table_ref), "DefenderTable");

    // Every rule the configuration reads comes from its parameter, whose default is the code's.
    let (read, _) = read_by(|g| AuthConfig::from_lookup(g).is_ok());
    let defaults = DefenderConfig::default();
    let source_lock = defaults.source.lock.unwrap();
    let rules = [
        ("DEFENDER_SAFE_LIST", "DefenderSafeList", None),
        (
            "DEFENDER_SOURCE_THRESHOLD",
            "DefenderSourceThreshold",
            Some(u64::from(defaults.source.threshold)),
        ),
        (
            "DEFENDER_PAIR_THRESHOLD",
            "DefenderPairThreshold",
            Some(u64::from(defaults.pair.threshold)),
        ),
        (
            "DEFENDER_BAN_SECONDS",
            "DefenderBanSeconds",
            Some(source_lock.first.as_secs()),
        ),
        (
            "DEFENDER_BAN_CAP_SECONDS",
            "DefenderBanCapSeconds",
            Some(source_lock.cap.as_secs()),
        ),
    ];
    let read_rules: BTreeSet<&str> = read
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("DEFENDER_") && *n != "DEFENDER_TABLE")
        .collect();
    let covered: BTreeSet<&str> = rules.iter().map(|(name, ..)| *name).collect();
    assert_eq!(
        read_rules, covered,
        "every defender rule the code reads has a parameter"
    );
    for (name, parameter, default) in rules {
        let (condition, value) =
            if_then(at(env, &[name])).unwrap_or_else(|| panic!("{name} is not set by an !If"));
        assert!(
            condition == "HasDefender" || condition == "HasDefenderSafeList",
            "{name} is set under {condition}"
        );
        assert_eq!(text(value), parameter, "{name}");
        match default {
            Some(n) => assert_eq!(default_number(&t, parameter), n, "{parameter}'s default"),
            None => assert_eq!(text(at(&t, &["Parameters", parameter, "Default"])), ""),
        }
    }

    // Least privilege: the four calls the Lambda's store makes, on that table alone, and never a
    // Scan (listing the locks is the operators').
    let statements: Vec<(Option<&str>, &Yaml)> = at(auth, &["Policies"])
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| at(p, &["Statement"]).as_sequence().unwrap())
        .map(|s| match if_then(s) {
            Some((condition, then)) => (Some(condition), then),
            None => (None, s),
        })
        .collect();
    let on_table: Vec<_> = statements
        .iter()
        .filter(|(_, s)| {
            let resource = untagged(at(s, &["Resource"]));
            let resources: Vec<&str> = match resource.as_sequence() {
                Some(list) => list.iter().map(text).collect(),
                None => vec![text(resource)],
            };
            resources.iter().any(|r| r.contains("DefenderTable"))
        })
        .collect();
    assert_eq!(on_table.len(), 1, "one statement for the defender's table");
    let (condition, statement) = on_table[0];
    assert_eq!(*condition, Some("HasDefender"));
    assert_eq!(text(at(statement, &["Effect"])), "Allow");
    assert_eq!(text(at(statement, &["Resource"])), "DefenderTable.Arn");
    let actions: BTreeSet<&str> = at(statement, &["Action"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from([
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ])
    );
}

#[test]
fn audit_events_go_to_the_stacks_own_bus_and_refused_logins_raise_an_alarm_per_server() {
    let t = template();
    let bus = resource(&t, "AuditBus");
    assert_eq!(text(at(bus, &["Type"])), "AWS::Events::EventBus");
    assert_eq!(text(at(bus, &["Condition"])), "HasAuditEvents");
    let auth = at(resource(&t, "AuthFunction"), &["Properties"]);
    let (condition, bus_ref) =
        if_then(at(auth, &["Environment", "Variables", "AUDIT_EVENT_BUS"])).unwrap();
    assert_eq!((condition, text(bus_ref)), ("HasAuditEvents", "AuditBus"));
    // PutEvents, on that bus alone, and only when it exists.
    let put_events: Vec<&Yaml> = at(auth, &["Policies"])
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| at(p, &["Statement"]).as_sequence().unwrap())
        .filter(|s| format!("{s:?}").contains("events:"))
        .collect();
    assert_eq!(put_events.len(), 1);
    let (condition, statement) = if_then(put_events[0]).unwrap();
    assert_eq!(condition, "HasAuditEvents");
    assert_eq!(text(at(statement, &["Action"])), "events:PutEvents");
    assert!(format!("{:?}", at(statement, &["Resource"])).contains("AuditBus"));
    // The metric the alarm watches is the auth function's refused logins, per Transfer server.
    let failures = at(resource(&t, "LoginFailuresMetric"), &["Properties"]);
    let pattern = text(at(failures, &["FilterPattern"]));
    assert!(
        pattern.contains(r#"$.target = "ferry::audit""#)
            && pattern.contains(r#"$.fields.outcome = "deny""#)
    );
    let alarm = at(resource(&t, "LoginFailuresAlarm"), &["Properties"]);
    assert_eq!(text(at(alarm, &["MetricName"])), "LoginFailures");
    let dims = at(alarm, &["Dimensions"]).as_sequence().unwrap();
    assert_eq!(text(at(&dims[0], &["Name"])), "ServerId");
}

#[test]
fn the_transfer_server_ignores_setstat_by_default_as_ferry_up_does() {
    let t = template();
    assert_eq!(
        text(at(&t, &["Parameters", "SetStatOption", "Default"])),
        "ENABLE_NO_OP"
    );
    let server = at(resource(&t, "TransferServer"), &["Properties"]);
    assert_eq!(
        text(at(server, &["ProtocolDetails", "SetStatOption"])),
        "SetStatOption"
    );
}

#[test]
fn the_auth_function_may_read_exactly_the_directory_secrets_it_is_given() {
    let t = template();
    // Off by default: no sources, no secrets, no statement.
    assert_eq!(
        text(at(&t, &["Parameters", "DirectorySources", "Default"])),
        ""
    );
    assert_eq!(
        text(at(&t, &["Parameters", "DirectorySecretArns", "Type"])),
        "CommaDelimitedList"
    );
    let auth = at(resource(&t, "AuthFunction"), &["Properties"]);
    let (condition, value) =
        if_then(at(auth, &["Environment", "Variables", "DIRECTORY_SOURCES"])).unwrap();
    assert_eq!(condition, "HasDirectorySources");
    assert_eq!(text(value), "DirectorySources");
    let directory: Vec<&Yaml> = at(auth, &["Policies"])
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| at(p, &["Statement"]).as_sequence().unwrap())
        .filter_map(if_then)
        .filter(|(condition, _)| *condition == "HasDirectorySecrets")
        .map(|(_, statement)| statement)
        .collect();
    assert_eq!(
        directory.len(),
        1,
        "one statement for the directory secrets"
    );
    assert_eq!(text(at(directory[0], &["Effect"])), "Allow");
    assert_eq!(
        text(at(directory[0], &["Action"])),
        "secretsmanager:GetSecretValue"
    );
    assert_eq!(text(at(directory[0], &["Resource"])), "DirectorySecretArns");
}
