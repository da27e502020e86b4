//! The auth Lambda: AWS Transfer Family's custom identity provider. Wiring only: the logic is
//! `ferry_core::app::login`, shared with the local stack and the CLI.

use std::sync::Arc;

use ferry_core::adapters::aws::defender::DynamoFailureStore;
use ferry_core::adapters::aws::dynamodb::{DynamoLegacyUsers, DynamoUserStore};
use ferry_core::adapters::aws::eventbridge::EventBridgePublisher;
use ferry_core::adapters::aws::iam::IamPolicySource;
use ferry_core::adapters::aws::secretsmanager::SecretsManagerSaltSource;
use ferry_core::adapters::ldap::{LdapDirectory, read_local_secret};
use ferry_core::adapters::logging;
use ferry_core::app::audit::BackgroundAudit;
use ferry_core::app::login::{Authenticator, Settings};
use ferry_core::config::AuthConfig;
use ferry_core::domain::directory::{DirectoryConfig, SecretRef};
use ferry_core::ports::{DirectorySource, error_chain};
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{LambdaEvent, LambdaInvocation, Runtime, service_fn};
use serde_json::Value;

type Auth = Authenticator<
    DynamoUserStore,
    SecretsManagerSaltSource,
    IamPolicySource,
    DynamoLegacyUsers,
    DynamoFailureStore,
>;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(std::env::var("RUST_LOG").ok().as_deref());

    let config = AuthConfig::from_env().map_err(|e| {
        tracing::error!(error = %e, "configuration error");
        e
    })?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    // Audit events leave through a background task (started here, inside the runtime), so a
    // login never waits on EventBridge.
    let audit = config.audit_event_bus.map(|bus| {
        Arc::new(BackgroundAudit::start(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&aws),
            bus,
        ))) as Arc<dyn ferry_core::ports::AuditSink>
    });
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    // Directory sources are built once per cold start, their secrets read then; a source that
    // cannot be built stops the process, as any configuration error does.
    let directories = directory_sources(config.directories, &secrets)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "directory source configuration error");
            e
        })?;
    let mut authenticator = Authenticator::new(
        DynamoUserStore::new(dynamodb.clone(), config.users_table),
        SecretsManagerSaltSource::new(secrets, config.salt_secret_id),
        IamPolicySource::new(aws_sdk_iam::Client::new(&aws)),
        Settings {
            default_role_arn: config.default_role_arn,
            salt_cache: config.salt_cache,
            policy_cache: config.policy_cache,
            verified_cache: config.verified_cache,
        },
    )
    // Without LEGACY_USERS_TABLE this is switched off and costs nothing.
    .with_legacy(DynamoLegacyUsers::new(
        dynamodb.clone(),
        config.legacy_users_table,
    ))
    // Without DEFENDER_TABLE the defender is off and costs nothing.
    .with_defender(
        DynamoFailureStore::new(dynamodb, config.defender_table),
        config.defender,
    )
    // Without DISABLE_AFTER_INACTIVE_DAYS and PASSWORD_MAX_AGE_DAYS only users' own limits apply.
    .with_lifecycle(config.lifecycle)
    // Without DIRECTORY_SOURCES every user is ferry's own.
    .with_directories(directories);
    if let Some(sink) = audit {
        authenticator = authenticator.with_audit(sink);
    }
    let auth: Arc<Auth> = Arc::new(authenticator);

    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let auth = Arc::clone(&auth);
        // Boxed: a login's future nests the store, keyring and policy calls, and the runtime's
        // layers on top of it took the compiler past its layout depth limit.
        async move {
            Ok::<Value, lambda_runtime::Error>(Box::pin(auth.handle_event(&event.payload)).await)
        }
    });
    Runtime::new(handler)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(UnreadableAsNull)
        .run()
        .await
}

/// Builds each configured directory source, reading its bind secret and CA bundle (Secrets
/// Manager, at its AWSCURRENT stage).
async fn directory_sources(
    configs: Vec<DirectoryConfig>,
    secrets: &aws_sdk_secretsmanager::Client,
) -> Result<Vec<DirectorySource>, lambda_runtime::Error> {
    let mut out = Vec::with_capacity(configs.len());
    for config in configs {
        let password = secret(&config.bind_password, secrets).await?;
        let ca = match &config.ca_bundle {
            Some(r) => Some(secret(r, secrets).await?),
            None => None,
        };
        out.push(LdapDirectory::new(config, &password, ca.as_deref())?.into_source());
    }
    Ok(out)
}

async fn secret(
    reference: &SecretRef,
    secrets: &aws_sdk_secretsmanager::Client,
) -> Result<String, lambda_runtime::Error> {
    if let Some(local) = read_local_secret(reference)? {
        return Ok(local);
    }
    let SecretRef::SecretsManager(arn) = reference else {
        return Err("a directory secret could not be read".into());
    };
    let value = secrets
        .get_secret_value()
        .secret_id(arn)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .map_err(|e| format!("reading directory secret {arn}: {}", error_chain(&e)))?;
    value
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| format!("directory secret {arn} holds no string").into())
}

/// Replaces a payload that is not JSON (bad UTF-8, truncated, binary) with `null` before the
/// runtime deserialises it. Otherwise the runtime answers with a Lambda error of its own; with
/// this the handler sees `null` and answers with a plain denial like any other bad request.
#[derive(Debug, Clone, Copy)]
struct UnreadableAsNull;

impl<S> Layer<S> for UnreadableAsNull {
    type Service = Sanitise<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Sanitise(inner)
    }
}

#[derive(Debug, Clone)]
struct Sanitise<S>(S);

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for Sanitise<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: LambdaInvocation) -> Self::Future {
        // A full parse: skipping a value (IgnoredAny) would not check the UTF-8 inside strings.
        if serde_json::from_slice::<Value>(&req.body).is_err() {
            req.body = bytes::Bytes::from_static(b"null");
        }
        self.0.call(req)
    }
}
