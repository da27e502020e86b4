//! Per-test resources on the real local services: a users table, a salt secret and a scope-down
//! policy, each with a unique name, and an authenticator wired to them through the SDK adapters.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use ferry_core::adapters::aws::dynamodb::{DynamoUserStore, SALT_VERSION_INDEX};
use ferry_core::adapters::aws::iam::IamPolicySource;
use ferry_core::adapters::aws::secretsmanager::SecretsManagerSaltSource;
use ferry_core::app::login::{Authenticator, Settings};
use ferry_core::domain::keyring::Keyring;
use ferry_core::domain::password::{Password, hash_password};
use ferry_core::domain::policy::CANONICAL_SCOPE_DOWN;
use serde_json::Value;

/// The authenticator as the Lambda builds it (with a legacy table: `AwsAuthenticator<L>`).
pub type AwsAuthenticator<L = ferry_core::ports::NoLegacy> =
    Authenticator<DynamoUserStore, SecretsManagerSaltSource, IamPolicySource, L>;

pub const DEFAULT_ROLE: &str = "arn:aws:iam::000000000000:role/ferry-default-user";

/// Whether the test script started the services (it sets `FERRY_TEST_SERVICES`).
pub fn services_available() -> bool {
    std::env::var_os("FERRY_TEST_SERVICES").is_some()
}

/// The SDK configuration for the local services. Fails loudly instead of skipping: these tests
/// must run against the real services, through `scripts/test.sh`.
pub async fn aws_config() -> aws_config::SdkConfig {
    assert!(
        services_available(),
        "these tests talk to DynamoDB Local and moto: run them with scripts/test.sh, which starts both"
    );
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A name no other test (or earlier run against the same services) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Resources of one test.
#[derive(Debug)]
pub struct Fixture {
    pub sdk: aws_config::SdkConfig,
    pub ddb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub iam: aws_sdk_iam::Client,
    pub table: String,
    pub secret_id: String,
    pub policy_arn: String,
}

impl Fixture {
    /// Creates a table, a keyring secret (`secret_string`) and the canonical policy.
    pub async fn with_secret(secret_string: &str) -> Result<Self> {
        let sdk = aws_config().await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let iam = aws_sdk_iam::Client::new(&sdk);
        let table = unique("users");
        create_users_table(&ddb, &table).await?;
        let secret_id = unique("ferry/salt");
        secrets
            .create_secret()
            .name(&secret_id)
            .secret_string(secret_string)
            .send()
            .await
            .context("create salt secret")?;
        let policy_arn = create_policy(&iam, &unique("scope-down"), CANONICAL_SCOPE_DOWN).await?;
        Ok(Self {
            sdk,
            ddb,
            secrets,
            iam,
            table,
            secret_id,
            policy_arn,
        })
    }

    /// The usual fixture: a two-version keyring whose current version is "2".
    pub async fn new() -> Result<Self> {
        Self::with_secret(r#"{"current":"2","salts":{"1":"old-salt-one","2":"current-salt-two"}}"#)
            .await
    }

    /// An authenticator wired like the Lambda, with the default caching.
    pub fn authenticator(&self) -> AwsAuthenticator {
        self.authenticator_with(DynamoUserStore::new(self.ddb.clone(), &self.table))
    }

    pub fn authenticator_with(&self, users: DynamoUserStore) -> AwsAuthenticator {
        self.build_authenticator(users, Duration::from_secs(60))
    }

    /// As [`Self::authenticator`], remembering right passwords for `verified_cache` (zero: every
    /// password login runs Argon2, as the benchmark's uncached series needs).
    pub fn authenticator_remembering(&self, verified_cache: Duration) -> AwsAuthenticator {
        self.build_authenticator(
            DynamoUserStore::new(self.ddb.clone(), &self.table),
            verified_cache,
        )
    }

    fn build_authenticator(
        &self,
        users: DynamoUserStore,
        verified_cache: Duration,
    ) -> AwsAuthenticator {
        Authenticator::new(
            users,
            SecretsManagerSaltSource::new(self.secrets.clone(), &self.secret_id),
            IamPolicySource::new(self.iam.clone()),
            Settings {
                default_role_arn: DEFAULT_ROLE.into(),
                salt_cache: Duration::from_secs(60),
                policy_cache: Duration::from_secs(300),
                verified_cache,
            },
        )
    }

    /// The keyring as stored now.
    pub async fn keyring(&self) -> Result<Keyring> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage("AWSCURRENT")
            .send()
            .await?;
        Ok(Keyring::parse(
            out.secret_string().context("no secret string")?,
        )?)
    }

    /// A hash of `password` under keyring version `version`, as the CLI would store it.
    pub async fn hash(&self, password: &str, version: &str) -> Result<String> {
        let keyring = self.keyring().await?;
        let salt = keyring.salt(version).context("no such salt version")?;
        Ok(hash_password(salt, &Password::parse(password)?)?)
    }

    /// Writes a user: `base_user` fields, then `extra` on top (a `null` removes a field).
    pub async fn put_user(
        &self,
        username: &str,
        password: Option<&str>,
        extra: Value,
    ) -> Result<()> {
        let mut user = serde_json::json!({
            "username": username,
            "bucket": "ferry-test-bucket",
            "home": format!("home/{username}"),
            "iamPolicyArn": self.policy_arn,
        });
        if let Some(pw) = password {
            user["passwordHash"] = Value::String(self.hash(pw, "2").await?);
            user["saltVersion"] = Value::String("2".into());
        }
        self.put_raw(merge(user, extra)).await
    }

    /// A user's stored item as plain JSON (one consistent read); `None` when there is none.
    pub async fn item(&self, username: &str) -> Result<Option<Value>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(
                "username",
                aws_sdk_dynamodb::types::AttributeValue::S(username.into()),
            )
            .consistent_read(true)
            .send()
            .await
            .context("get item")?;
        out.item
            .map(|item| serde_dynamo::from_item(item).context("item as JSON"))
            .transpose()
    }

    /// Writes an item exactly as given (JSON converted to attribute values).
    pub async fn put_raw(&self, item: Value) -> Result<()> {
        self.put_item(serde_dynamo::to_item(item).context("item must be a JSON object")?)
            .await
    }

    /// Writes an item given as DynamoDB attribute values.
    pub async fn put_item(
        &self,
        item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    ) -> Result<()> {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .context("put item")?;
        Ok(())
    }

    /// The real `auth` binary, configured for this fixture's table, secret and default role.
    pub fn auth_command(
        &self,
        api: &crate::runtime_api::RuntimeApi,
    ) -> Result<std::process::Command> {
        let mut cmd = api.function_command(&crate::runtime_api::workspace_binary("auth")?);
        cmd.env("USERS_TABLE", &self.table)
            .env("SALT_SECRET_ID", &self.secret_id)
            .env("DEFAULT_ROLE_ARN", DEFAULT_ROLE);
        Ok(cmd)
    }

    /// An S3 client for the emulator (path-style addressing, as moto wants).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates a bucket with a unique name and returns the name.
    pub async fn bucket(&self) -> Result<String> {
        let name = unique("ferry");
        self.s3()
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .context("create bucket")?;
        Ok(name)
    }

    /// Creates another managed policy and returns its ARN.
    pub async fn policy(&self, document: &str) -> Result<String> {
        create_policy(&self.iam, &unique("policy"), document).await
    }
}

/// A direct Lambda invocation for `username` (a key login when `password` is `None`), from the
/// address and server the tests use.
pub fn direct_event(username: &str, password: Option<&str>) -> Value {
    let mut e = serde_json::json!({"username": username, "protocol": "SFTP", "serverId": "s-0123456789abcdef0", "sourceIp": "203.0.113.7"});
    if let Some(p) = password {
        e["password"] = Value::String(p.to_owned());
    }
    e
}

/// `extra` on top of `base`; `null` values delete keys.
pub fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(&k);
            } else {
                b.insert(k, v);
            }
        }
    }
    base
}

/// The users table of the data model: partition key `username` (S).
/// The users table as infra deploys it: key `username`, and the keys-only GSI
/// `saltVersion-index` on `saltVersion` that salt rotation queries.
pub async fn create_users_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    let key = |name: &str| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(KeyType::Hash)
            .build()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    ddb.create_table()
        .table_name(table)
        .attribute_definitions(attribute("username")?)
        .attribute_definitions(attribute("saltVersion")?)
        .key_schema(key("username")?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(SALT_VERSION_INDEX)
                .key_schema(key("saltVersion")?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .context("create users table")?;
    Ok(())
}

/// The seed design's table: key `hashPassword`.
pub async fn create_legacy_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    ddb.create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("hashPassword")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("hashPassword")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .context("create legacy table")?;
    Ok(())
}

/// The defender's table, as the SAM template makes it (partition key `key`).
pub async fn create_defender_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    ddb.create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("key")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("key")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .context("create defender table")?;
    Ok(())
}

pub async fn create_policy(
    iam: &aws_sdk_iam::Client,
    name: &str,
    document: &str,
) -> Result<String> {
    let out = iam
        .create_policy()
        .policy_name(name)
        .policy_document(document)
        .send()
        .await
        .context("create policy")?;
    out.policy()
        .and_then(|p| p.arn())
        .map(str::to_owned)
        .context("policy without ARN")
}

/// The users the sample events in `events/auth/` name (see its README).
pub const SAMPLE_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@example";

impl Fixture {
    pub async fn put_sample_users(&self) -> Result<()> {
        self.put_user(
            "alice",
            Some("correct horse battery staple"),
            serde_json::json!({"publicKeys": [SAMPLE_KEY]}),
        )
        .await?;
        self.put_user(
            "partner@example.com",
            Some(r#"quote"and\backslash"#),
            serde_json::json!({}),
        )
        .await
    }
}

/// The sample events: `(file name, parsed JSON)`, sorted by name.
pub fn sample_events() -> Result<Vec<(String, Value)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/auth");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path)?;
            let value =
                serde_json::from_str(&text).with_context(|| format!("{name} is not valid JSON"))?;
            out.push((name, value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// An SNS topic with an SQS queue subscribed: returns (topic ARN, queue URL).
pub async fn topic_with_queue(f: &Fixture) -> Result<(String, String)> {
    let sns = aws_sdk_sns::Client::new(&f.sdk);
    let topic = sns
        .create_topic()
        .name(unique("alerts"))
        .send()
        .await?
        .topic_arn()
        .context("no topic ARN")?
        .to_owned();
    let (queue, queue_arn) = queue_with_arn(f, "alerts-q").await?;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await?;
    Ok((topic, queue))
}

/// A new SQS queue named after `prefix`: (URL, ARN).
pub async fn queue_with_arn(f: &Fixture, prefix: &str) -> Result<(String, String)> {
    let sqs = aws_sdk_sqs::Client::new(&f.sdk);
    let queue = sqs
        .create_queue()
        .queue_name(unique(prefix))
        .send()
        .await?
        .queue_url()
        .context("no queue URL")?
        .to_owned();
    let arn_name = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(arn_name.clone())
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&arn_name))
        .context("no queue ARN")?
        .clone();
    Ok((queue, queue_arn))
}

/// The SNS envelopes waiting in the queue (one receive, waiting up to a second).
pub async fn received(f: &Fixture, queue: &str) -> Result<Vec<Value>> {
    let out = aws_sdk_sqs::Client::new(&f.sdk)
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await?;
    out.messages()
        .iter()
        .map(|m| Ok(serde_json::from_str(m.body().context("no message body")?)?))
        .collect()
}
