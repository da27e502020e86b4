//! Configuration read once from the environment at start-up, for the auth and salt-rotation
//! functions; a missing or bad variable stops the process with its name.

use std::time::Duration;

use crate::domain::defender::DefenderConfig;
use crate::domain::lifecycle::Lifecycle;

/// What the auth function needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub users_table: String,
    pub salt_secret_id: String,
    pub default_role_arn: String,
    pub salt_cache: Duration,
    pub policy_cache: Duration,
    /// How long a warm process remembers a right password (`VERIFIED_LOGIN_CACHE_SECONDS`,
    /// default 60; 0 turns it off). The user record is read on every login regardless.
    pub verified_cache: Duration,
    /// The seed design's table, while its users migrate (`LEGACY_USERS_TABLE`, optional).
    pub legacy_users_table: Option<String>,
    /// The defender's table (`DEFENDER_TABLE`, optional: unset, the defender is off).
    pub defender_table: Option<String>,
    /// The defender's rules: the documented defaults, with what the environment changes.
    pub defender: DefenderConfig,
    /// The default inactivity and password-age limits (`DISABLE_AFTER_INACTIVE_DAYS`,
    /// `PASSWORD_MAX_AGE_DAYS`, optional: unset or 0, no limit).
    pub lifecycle: Lifecycle,
    /// The EventBridge bus audit events go to (`AUDIT_EVENT_BUS`, optional: unset, the audit
    /// log line is all).
    pub audit_event_bus: Option<String>,
    /// Directory identity sources (`DIRECTORY_SOURCES`, optional: a JSON document as
    /// `docs/data-model.md` describes, which names its secrets and never holds them; unset, every
    /// user is ferry's own).
    pub directories: Vec<crate::domain::directory::DirectoryConfig>,
}

/// What the salt-rotation function needs: the users table (for the `saltVersion-index` GSI)
/// and, while a migration runs, the legacy table. The secret comes with each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationConfig {
    pub users_table: String,
    pub legacy_users_table: Option<String>,
}

impl RotationConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            users_table: get("USERS_TABLE")
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing("USERS_TABLE"))?,
            legacy_users_table: optional(&get, "LEGACY_USERS_TABLE"),
        })
    }
}

/// The defender's rules from the environment, each variable optional:
/// `DEFENDER_SAFE_LIST` (comma-separated CIDRs or addresses never counted),
/// `DEFENDER_SOURCE_THRESHOLD` (score that bans a source, default 20),
/// `DEFENDER_PAIR_THRESHOLD` (failures that throttle a username at one source, default 5),
/// `DEFENDER_BAN_SECONDS` (a first ban, default 900) and `DEFENDER_BAN_CAP_SECONDS` (the longest
/// a repeated ban grows to, default 86400).
pub fn defender_config(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<DefenderConfig, ConfigError> {
    let mut config = DefenderConfig::default();
    let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
        optional(get, name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: "not a whole number",
                })
            })
            .transpose()
    };
    if let Some(list) = optional(get, "DEFENDER_SAFE_LIST") {
        config.safe_list = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError::Invalid {
                        name: "DEFENDER_SAFE_LIST",
                        reason: "holds something that is not a CIDR or an IP address",
                    })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(n) = number("DEFENDER_SOURCE_THRESHOLD")? {
        config.source.threshold = u32::try_from(n).unwrap_or(u32::MAX).max(1);
    }
    if let Some(n) = number("DEFENDER_PAIR_THRESHOLD")? {
        config.pair.threshold = u32::try_from(n).unwrap_or(u32::MAX).max(1);
    }
    if let Some(lock) = config.source.lock.as_mut() {
        if let Some(n) = number("DEFENDER_BAN_SECONDS")? {
            lock.first = Duration::from_secs(n.max(1));
        }
        if let Some(n) = number("DEFENDER_BAN_CAP_SECONDS")? {
            lock.cap = Duration::from_secs(n.max(1));
        }
        lock.cap = lock.cap.max(lock.first);
    }
    Ok(config)
}

/// The default account-lifecycle limits, each optional, in whole days: `DISABLE_AFTER_INACTIVE_DAYS`
/// (a user without a sign of life for that long is refused) and `PASSWORD_MAX_AGE_DAYS` (a
/// password set that long ago is refused). Unset, empty or `0`: no limit. A user's own
/// `disableAfterInactiveDays` and `passwordMaxAgeDays` win over these.
pub fn lifecycle_config(get: &impl Fn(&str) -> Option<String>) -> Result<Lifecycle, ConfigError> {
    let days = |name: &'static str| -> Result<Option<u32>, ConfigError> {
        optional(get, name)
            .map(|v| {
                v.trim().parse::<u32>().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: "not a whole number of days",
                })
            })
            .transpose()
            .map(|d| d.filter(|d| *d > 0))
    };
    Ok(Lifecycle {
        disable_after_inactive_days: days("DISABLE_AFTER_INACTIVE_DAYS")?,
        password_max_age_days: days("PASSWORD_MAX_AGE_DAYS")?,
    })
}

/// What the policy-validator function needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorConfig {
    pub users_table: String,
    /// `ALERT_TOPIC_ARN`: where invalid users are reported (optional: the log only).
    pub alert_topic_arn: Option<String>,
    /// `ALLOWED_ROLE_ACCOUNT`, `ALLOWED_ROLE_PATH`.
    pub rules: crate::domain::policy_checks::RecordRules,
}

impl ValidatorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let role_account = optional(&get, "ALLOWED_ROLE_ACCOUNT");
        if role_account
            .as_deref()
            .is_some_and(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ConfigError::Invalid {
                name: "ALLOWED_ROLE_ACCOUNT",
                reason: "not a 12-digit account id",
            });
        }
        let role_path = optional(&get, "ALLOWED_ROLE_PATH");
        if role_path
            .as_deref()
            .is_some_and(|p| !p.starts_with('/') || !p.ends_with('/'))
        {
            return Err(ConfigError::Invalid {
                name: "ALLOWED_ROLE_PATH",
                reason: "an IAM path starts and ends with /",
            });
        }
        Ok(Self {
            users_table: get("USERS_TABLE")
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing("USERS_TABLE"))?,
            alert_topic_arn: optional(&get, "ALERT_TOPIC_ARN"),
            rules: crate::domain::policy_checks::RecordRules {
                role_account,
                role_path,
            },
        })
    }
}

fn optional(get: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).filter(|v| !v.trim().is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        reason: &'static str,
    },
    /// `DIRECTORY_SOURCES` does not parse or check (the message names the field, not a value).
    #[error("environment variable DIRECTORY_SOURCES is invalid: {0}")]
    Directory(crate::domain::directory::DirectoryConfigError),
}

impl AuthConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads from any lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let seconds = |name: &'static str, default: u64| match get(name) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| ConfigError::Invalid {
                    name,
                    reason: "not a whole number of seconds",
                }),
        };
        let default_role_arn = required("DEFAULT_ROLE_ARN")?;
        if crate::domain::arn::Arn::iam_role(&default_role_arn).is_err() {
            return Err(ConfigError::Invalid {
                name: "DEFAULT_ROLE_ARN",
                reason: "not an IAM role ARN",
            });
        }
        Ok(Self {
            users_table: required("USERS_TABLE")?,
            salt_secret_id: required("SALT_SECRET_ID")?,
            default_role_arn,
            salt_cache: seconds("SALT_CACHE_SECONDS", 60)?,
            policy_cache: seconds("POLICY_CACHE_SECONDS", 300)?,
            verified_cache: seconds("VERIFIED_LOGIN_CACHE_SECONDS", 60)?,
            legacy_users_table: optional(&get, "LEGACY_USERS_TABLE"),
            defender_table: optional(&get, "DEFENDER_TABLE"),
            defender: defender_config(&get)?,
            lifecycle: lifecycle_config(&get)?,
            audit_event_bus: optional(&get, "AUDIT_EVENT_BUS"),
            directories: match optional(&get, "DIRECTORY_SOURCES") {
                Some(json) => crate::domain::directory::parse_sources(&json)
                    .map_err(ConfigError::Directory)?,
                None => Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("USERS_TABLE", "users"),
        ("SALT_SECRET_ID", "ferry/salt"),
        (
            "DEFAULT_ROLE_ARN",
            "arn:aws:iam::123456789012:role/ferry-user",
        ),
    ];

    #[test]
    fn defaults_apply_to_the_cache_lifetimes() {
        let c = AuthConfig::from_lookup(env(&BASE)).unwrap();
        assert_eq!(c.salt_cache, Duration::from_secs(60));
        assert_eq!(c.policy_cache, Duration::from_secs(300));
        assert_eq!(c.verified_cache, Duration::from_secs(60));
        assert_eq!(c.legacy_users_table, None);
        let mut pairs = BASE.to_vec();
        pairs.push(("LEGACY_USERS_TABLE", "seed-users"));
        let c = AuthConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.legacy_users_table.as_deref(), Some("seed-users"));
    }

    #[test]
    fn directory_sources_are_optional_and_checked_when_set() {
        let c = AuthConfig::from_lookup(env(&BASE)).unwrap();
        assert!(c.directories.is_empty());
        let doc = r#"{"sources":[{"name":"corp","url":"ldaps://ldap.corp.example",
            "baseDn":"ou=people,dc=corp","bindDn":"cn=svc,dc=corp",
            "bindPassword":"arn:aws:secretsmanager:us-east-1:123456789012:secret:bind"}]}"#;
        let mut pairs = BASE.to_vec();
        pairs.push(("DIRECTORY_SOURCES", doc));
        let c = AuthConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.directories.len(), 1);
        let mut pairs = BASE.to_vec();
        pairs.push(("DIRECTORY_SOURCES", r#"{"sources":[{"name":"corp"}]}"#));
        let err = AuthConfig::from_lookup(env(&pairs)).unwrap_err();
        assert!(matches!(err, ConfigError::Directory(_)), "{err}");
    }

    #[test]
    fn the_verified_login_cache_is_set_in_seconds_and_0_turns_it_off() {
        for (value, want) in [("0", Duration::ZERO), (" 15 ", Duration::from_secs(15))] {
            let mut pairs = BASE.to_vec();
            pairs.push(("VERIFIED_LOGIN_CACHE_SECONDS", value));
            let c = AuthConfig::from_lookup(env(&pairs)).unwrap();
            assert_eq!(c.verified_cache, want, "{value:?}");
        }
        for bad in ["-1", "1m", ""] {
            let mut pairs = BASE.to_vec();
            pairs.push(("VERIFIED_LOGIN_CACHE_SECONDS", bad));
            assert!(
                matches!(
                    AuthConfig::from_lookup(env(&pairs)),
                    Err(ConfigError::Invalid {
                        name: "VERIFIED_LOGIN_CACHE_SECONDS",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lifecycle_limits_are_optional_whole_days_and_0_means_none() {
        let c = AuthConfig::from_lookup(env(&BASE)).unwrap();
        assert_eq!(c.lifecycle, Lifecycle::default(), "unset: no limit");
        let mut pairs = BASE.to_vec();
        pairs.push(("DISABLE_AFTER_INACTIVE_DAYS", " 90 "));
        pairs.push(("PASSWORD_MAX_AGE_DAYS", "0"));
        let c = AuthConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(
            c.lifecycle,
            Lifecycle {
                disable_after_inactive_days: Some(90),
                password_max_age_days: None,
            }
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("PASSWORD_MAX_AGE_DAYS", "180"));
        pairs.push(("DISABLE_AFTER_INACTIVE_DAYS", ""));
        let c = AuthConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.lifecycle.password_max_age_days, Some(180));
        assert_eq!(c.lifecycle.disable_after_inactive_days, None);
        for (name, bad) in [
            ("DISABLE_AFTER_INACTIVE_DAYS", "90d"),
            ("DISABLE_AFTER_INACTIVE_DAYS", "-1"),
            ("PASSWORD_MAX_AGE_DAYS", "1.5"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((name, bad));
            let err = AuthConfig::from_lookup(env(&pairs)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("environment variable {name} is invalid: not a whole number of days"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_rotation_function_needs_the_users_table() {
        assert_eq!(
            RotationConfig::from_lookup(env(&[])).unwrap_err(),
            ConfigError::Missing("USERS_TABLE")
        );
        let c = RotationConfig::from_lookup(env(&[("USERS_TABLE", "u")])).unwrap();
        assert_eq!(c.users_table, "u");
    }

    #[test]
    fn each_missing_variable_is_named() {
        for skip in ["USERS_TABLE", "SALT_SECRET_ID", "DEFAULT_ROLE_ARN"] {
            let pairs: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != skip).collect();
            let err = AuthConfig::from_lookup(env(&pairs)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("environment variable {skip} is not set")
            );
        }
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let mut pairs = BASE.to_vec();
        pairs.push(("SALT_CACHE_SECONDS", "soon"));
        assert!(matches!(
            AuthConfig::from_lookup(env(&pairs)),
            Err(ConfigError::Invalid {
                name: "SALT_CACHE_SECONDS",
                ..
            })
        ));
        let mut pairs = BASE.to_vec();
        pairs[2] = ("DEFAULT_ROLE_ARN", "ferry-user");
        assert!(matches!(
            AuthConfig::from_lookup(env(&pairs)),
            Err(ConfigError::Invalid {
                name: "DEFAULT_ROLE_ARN",
                ..
            })
        ));
    }
}

/// What the upload-processor function needs (see the data model doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorConfig {
    pub upload: crate::domain::upload_rules::UploadConfig,
    /// `NOTIFY_TOPIC_ARN`: one message per processed file (optional: the log only).
    pub notify_topic_arn: Option<String>,
    /// `USERS_TABLE`: where per-user `uploadRules` are read (optional: none).
    pub users_table: Option<String>,
}

impl ProcessorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let list = |name: &str| -> Vec<String> {
            optional(&get, name)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let prefix = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let p = optional(&get, name).unwrap_or_else(|| default.to_owned());
            if p.ends_with('/') && !p.starts_with('/') {
                Ok(p)
            } else {
                Err(ConfigError::Invalid {
                    name,
                    reason: "a key prefix ends with / and does not start with one",
                })
            }
        };
        let upload = crate::domain::upload_rules::UploadConfig {
            incoming_prefixes: list("INCOMING_PREFIXES"),
            processed_prefix: prefix("PROCESSED_PREFIX", "processed/")?,
            quarantine_prefix: prefix("QUARANTINE_PREFIX", "quarantine/")?,
            output_bucket: optional(&get, "OUTPUT_BUCKET"),
            max_object_bytes: match optional(&get, "MAX_OBJECT_BYTES") {
                None => None,
                Some(v) => Some(v.trim().parse().map_err(|_| ConfigError::Invalid {
                    name: "MAX_OBJECT_BYTES",
                    reason: "not a whole number of bytes",
                })?),
            },
            allowed_extensions: list("ALLOWED_EXTENSIONS")
                .into_iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect(),
            source_action: match optional(&get, "SOURCE_ACTION").as_deref() {
                None | Some("move") => crate::domain::upload_rules::SourceAction::Move,
                Some("copy") => crate::domain::upload_rules::SourceAction::Copy,
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        name: "SOURCE_ACTION",
                        reason: "move or copy",
                    });
                }
            },
        };
        if upload.incoming_prefixes.iter().any(|p| {
            p.starts_with(&upload.processed_prefix)
                || p.starts_with(&upload.quarantine_prefix)
                || upload.processed_prefix.starts_with(p.as_str())
                || upload.quarantine_prefix.starts_with(p.as_str())
        }) {
            return Err(ConfigError::Invalid {
                name: "INCOMING_PREFIXES",
                reason: "an incoming prefix overlaps the processed or quarantine area (the processor would loop)",
            });
        }
        Ok(Self {
            upload,
            notify_topic_arn: optional(&get, "NOTIFY_TOPIC_ARN"),
            users_table: optional(&get, "USERS_TABLE"),
        })
    }
}
