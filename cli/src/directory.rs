//! Directory identity sources for `ferry up` and `ferry login` (`--directory FILE`): the sources
//! file of `docs/data-model.md` read and checked, each source's secrets read (a `file:` or
//! `env:` reference; a Secrets Manager ARN with `--aws`), and the LDAP adapters built, so that an
//! operator can try an AD or OpenLDAP configuration on one machine before deploying it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ferry_core::adapters::ldap::{LdapDirectory, read_local_secret};
use ferry_core::domain::directory::{SecretRef, parse_sources};
use ferry_core::ports::{DirectorySource, error_chain};

/// The sources of `path` (none without one). `sdk`: read Secrets Manager references with it.
pub(crate) async fn sources(
    path: Option<&Path>,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<Vec<DirectorySource>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the directory sources file {}", path.display()))?;
    let configs = parse_sources(&text).with_context(|| format!("in {}", path.display()))?;
    let client = sdk.map(aws_sdk_secretsmanager::Client::new);
    let mut out = Vec::with_capacity(configs.len());
    for config in configs {
        let password = secret(&config.bind_password, client.as_ref()).await?;
        let ca = match &config.ca_bundle {
            Some(r) => Some(secret(r, client.as_ref()).await?),
            None => None,
        };
        out.push(LdapDirectory::new(config, &password, ca.as_deref())?.into_source());
    }
    Ok(out)
}

async fn secret(
    reference: &SecretRef,
    client: Option<&aws_sdk_secretsmanager::Client>,
) -> Result<String> {
    if let Some(local) = read_local_secret(reference)? {
        return Ok(local);
    }
    let (SecretRef::SecretsManager(arn), Some(client)) = (reference, client) else {
        bail!("a directory source names a Secrets Manager secret: that needs --aws");
    };
    let value = client
        .get_secret_value()
        .secret_id(arn)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("reading directory secret {arn}: {}", error_chain(&e)))?;
    value
        .secret_string()
        .map(str::to_owned)
        .with_context(|| format!("directory secret {arn} holds no string"))
}
