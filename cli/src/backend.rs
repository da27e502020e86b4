//! Where the commands read and write: the data folder (`--local`) or AWS, built once from the
//! command line, and the small conversions every command shares.

use anyhow::{Context, Result, anyhow};
use ferry_core::adapters::aws::dynamodb::{DynamoLegacyUsers, DynamoUserStore};
use ferry_core::adapters::aws::iam::IamPolicySource;
use ferry_core::adapters::aws::secretsmanager::SecretsManagerSaltSource;
use ferry_core::adapters::local::store::{DEFAULT_BUCKET, DEFAULT_POLICY, LocalStore, policy_arn};
use ferry_core::app::admin::{Admin, AdminError, Defaults};
use ferry_core::domain::keyring::Keyring;
use ferry_core::domain::user::attr;
use ferry_core::domain::username::Username;
use ferry_core::ports::{SaltSource, StoreError, error_chain};

use crate::Target;

/// The adapters of one run. The salt source is kept with the reason it is missing, because only
/// the commands that hash or verify need it.
pub(crate) struct Backend<U, S, P> {
    pub(crate) users: U,
    pub(crate) salts: Salts<S>,
    pub(crate) policies: P,
    /// Where `user validate --write` records verdicts (AWS only).
    pub(crate) verdicts: Option<DynamoUserStore>,
    /// What a new user gets when no bucket or policy is named (the data folder has its own).
    pub(crate) defaults: Defaults,
    /// DynamoDB, for the seed design's users table when a command names one (AWS only).
    pub(crate) dynamodb: Option<aws_sdk_dynamodb::Client>,
}

impl<U, S, P> Backend<U, S, P> {
    /// The seed design's users table, if `table` names one.
    pub(crate) fn legacy(&self, table: Option<String>) -> Result<Option<DynamoLegacyUsers>> {
        match (table, &self.dynamodb) {
            (None, _) => Ok(None),
            (Some(t), Some(client)) => Ok(Some(DynamoLegacyUsers::new(client.clone(), Some(t)))),
            (Some(_), None) => {
                anyhow::bail!("--legacy-table is a DynamoDB table: not with --local")
            }
        }
    }
}

impl<U, S, P> Backend<U, S, P> {
    /// The administration use cases over this backend.
    pub(crate) fn admin(&self) -> Admin<&U, &Salts<S>> {
        Admin::new(&self.users, &self.salts, self.defaults.clone())
    }
}

/// A salt source, or why there is none (no `--salt-secret` on AWS).
pub(crate) struct Salts<S>(pub(crate) Result<S, String>);

impl<S> Salts<S> {
    pub(crate) fn get(&self) -> Result<&S> {
        self.0.as_ref().map_err(|e| anyhow!("{e}"))
    }
}

impl<S: SaltSource> SaltSource for Salts<S> {
    async fn load_keyring(&self) -> Result<Keyring, StoreError> {
        match &self.0 {
            Ok(s) => s.load_keyring().await,
            Err(why) => Err(StoreError::Unavailable {
                what: "the salt keyring",
                source: why.clone().into(),
            }),
        }
    }
}

/// The data folder as every port.
pub(crate) fn local(data: &LocalStore) -> Backend<&LocalStore, &LocalStore, &LocalStore> {
    Backend {
        users: data,
        salts: Salts(Ok(data)),
        policies: data,
        verdicts: None,
        dynamodb: None,
        defaults: local_defaults(),
    }
}

/// What a new user of the data folder gets when no bucket or policy is named.
pub(crate) fn local_defaults() -> Defaults {
    Defaults {
        bucket: Some(DEFAULT_BUCKET.to_owned()),
        policy_arn: Some(policy_arn(DEFAULT_POLICY)),
    }
}

/// DynamoDB, Secrets Manager and IAM, from the standard AWS configuration (and
/// `AWS_ENDPOINT_URL*` for local emulators).
pub(crate) async fn aws(
    target: &Target,
) -> Result<Backend<DynamoUserStore, SecretsManagerSaltSource, IamPolicySource>> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = target
        .table
        .as_deref()
        .context("no users table: pass --table or set USERS_TABLE (or use --local)")?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let users = DynamoUserStore::new(dynamodb.clone(), table);
    Ok(Backend {
        dynamodb: Some(dynamodb),
        verdicts: Some(users.clone()),
        users,
        salts: Salts(
            target
                .salt_secret
                .as_deref()
                .map(|id| {
                    SecretsManagerSaltSource::new(aws_sdk_secretsmanager::Client::new(&sdk), id)
                })
                .ok_or_else(|| "no salt secret: pass --salt-secret or set SALT_SECRET_ID".into()),
        ),
        policies: IamPolicySource::new(aws_sdk_iam::Client::new(&sdk)),
        defaults: Defaults::default(),
    })
}

pub(crate) fn parse_name(name: &str) -> Result<Username> {
    Username::parse(name).map_err(|e| anyhow!("{name:?}: {e}"))
}

/// One line for a store failure, with its cause chain.
pub(crate) fn store(e: StoreError) -> anyhow::Error {
    anyhow!(error_chain(&e))
}

/// A refused change as the operator reads it: attributes named by the flag that sets them.
pub(crate) fn refused(e: AdminError) -> anyhow::Error {
    match e {
        AdminError::Required(attribute) => {
            let flag = match attribute {
                attr::BUCKET => "--bucket",
                attr::HOME => "--home",
                attr::IAM_POLICY_ARN => "--policy-arn",
                other => other,
            };
            anyhow!("{flag} is required for a new user")
        }
        AdminError::AlreadyExists(u) => {
            anyhow!("user {u} already exists (use --update to change it)")
        }
        AdminError::Store(e) => store(e),
        other => anyhow!("{other}"),
    }
}
