//! The deployment template and the code cannot drift: each function's environment in
//! `infra/template.yaml` sets every variable its configuration requires, and nothing it does not
//! read.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use ferry_core::config::{AuthConfig, ProcessorConfig, RotationConfig, ValidatorConfig};

/// A valid value for every variable any function reads.
fn good(name: &str) -> Option<String> {
    Some(
        match name {
            "DEFAULT_ROLE_ARN" => "arn:aws:iam::123456789012:role/ferry-user",
            "ALLOWED_ROLE_ACCOUNT" => "123456789012",
            "ALLOWED_ROLE_PATH" => "/transfer/",
            "SALT_CACHE_SECONDS" | "POLICY_CACHE_SECONDS" | "MAX_OBJECT_BYTES" => "60",
            "INCOMING_PREFIXES" => "home/",
            "PROCESSED_PREFIX" => "processed/",
            "QUARANTINE_PREFIX" => "quarantine/",
            "SOURCE_ACTION" => "move",
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

/// Each function's `Environment.Variables` keys, by its binary name (from `CodeUri`).
fn template_environments() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "Type: AWS::Serverless::Function" {
            continue;
        }
        let block_indent = line.len() - line.trim_start().len();
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= block_indent)
            .copied()
            .collect();
        let binary = block
            .iter()
            .find_map(|l| l.trim().strip_prefix("CodeUri: ../target/lambda/"))
            .map(|b| b.trim_end_matches('/').to_owned())
            .unwrap();
        let mut vars = BTreeSet::new();
        if let Some(start) = block.iter().position(|l| l.trim() == "Variables:") {
            let indent = block[start].len() - block[start].trim_start().len();
            for l in &block[start + 1..] {
                let this = l.len() - l.trim_start().len();
                if l.trim().is_empty() || this <= indent {
                    break;
                }
                if this == indent + 2
                    && let Some((key, _)) = l.trim().split_once(':')
                {
                    vars.insert(key.to_owned());
                }
            }
        }
        out.insert(binary, vars);
    }
    out
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
