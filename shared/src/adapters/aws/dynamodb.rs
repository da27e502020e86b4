//! The user store on DynamoDB: one strongly consistent GetItem per login; the writes a login
//! can make (re-hash, migration, `lastLoginAt`), all conditional; the `saltVersion-index` GSI that tells which
//! salt versions are still in use; and the seed design's legacy table.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use tracing::instrument;

use crate::domain::user::{StoredRecord, UserRecord, attr};
use crate::domain::username::Username;
use crate::ports::{
    LegacyUser, LegacyUsers, SaltUsage, StoreError, UserAdmin, UserPage, UserStore,
};

/// Users in a DynamoDB table keyed by `username`.
#[derive(Debug, Clone)]
pub struct DynamoUserStore {
    client: Client,
    table: String,
}

impl DynamoUserStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A user's item with DynamoDB's own types (one consistent read). A conditional write must
    /// compare against these: a string set and a list read as the same JSON array.
    #[instrument(skip(self), fields(table = %self.table))]
    pub async fn get_item(
        &self,
        username: &Username,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self.read_user(username).send().await.map_err(unavailable)?;
        Ok(out.item)
    }

    /// The consistent GetItem of one user. A request, not an async fn: the login path awaits it
    /// directly, since every nested future deepens the auth function's (already deep) future type.
    fn read_user(
        &self,
        username: &Username,
    ) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(&self.table)
            .key(
                attr::USERNAME,
                AttributeValue::S(username.as_str().to_owned()),
            )
            .consistent_read(true)
    }
}

impl DynamoUserStore {
    /// Sets `passwordHash` and `saltVersion` only if the stored hash is still `old` (or, with
    /// `None`, only if the user exists and has none yet, and then `passwordChangedAt` to
    /// `changed_at`): `Ok(false)` when the condition failed.
    async fn write_hash(
        &self,
        username: &Username,
        new_hash: &str,
        salt_version: &str,
        old: Option<&str>,
        changed_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let changed = match changed_at {
            Some(_) => format!(", {} = :changed", attr::PASSWORD_CHANGED_AT),
            None => String::new(),
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(
                attr::USERNAME,
                AttributeValue::S(username.as_str().to_owned()),
            )
            .update_expression(format!(
                "SET {} = :new, {} = :version{changed}",
                attr::PASSWORD_HASH,
                attr::SALT_VERSION
            ))
            .expression_attribute_values(":new", AttributeValue::S(new_hash.to_owned()))
            .expression_attribute_values(":version", AttributeValue::S(salt_version.to_owned()));
        if let Some(t) = changed_at {
            update =
                update.expression_attribute_values(":changed", AttributeValue::N(t.to_string()));
        }
        update = match old {
            Some(old) => update
                .condition_expression(format!("{} = :old", attr::PASSWORD_HASH))
                .expression_attribute_values(":old", AttributeValue::S(old.to_owned())),
            None => update.condition_expression(format!(
                "attribute_exists({}) AND attribute_not_exists({})",
                attr::USERNAME,
                attr::PASSWORD_HASH
            )),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// The users table's keys-only GSI on `saltVersion`.
pub const SALT_VERSION_INDEX: &str = "saltVersion-index";

fn conditional_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(aws_sdk_dynamodb::error::ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

impl UserStore for DynamoUserStore {
    async fn get_user(&self, username: &Username) -> Result<Option<UserRecord>, StoreError> {
        let out = self.read_user(username).send().await.map_err(unavailable)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let stored: StoredRecord = serde_dynamo::from_item(item).map_err(malformed)?;
        UserRecord::from_stored(stored)
            .map(Some)
            .map_err(|e| StoreError::Malformed(e.to_string()))
    }

    #[instrument(skip_all, fields(table = %self.table, username = %username))]
    async fn replace_hash(
        &self,
        username: &Username,
        old_hash: &str,
        new_hash: &str,
        salt_version: &str,
    ) -> Result<bool, StoreError> {
        self.write_hash(username, new_hash, salt_version, Some(old_hash), None)
            .await
    }

    #[instrument(skip_all, fields(table = %self.table, username = %username))]
    async fn set_first_hash(
        &self,
        username: &Username,
        new_hash: &str,
        salt_version: &str,
        changed_at: i64,
    ) -> Result<bool, StoreError> {
        self.write_hash(username, new_hash, salt_version, None, Some(changed_at))
            .await
    }

    #[instrument(skip_all, fields(table = %self.table, username = %username))]
    async fn touch_last_login(
        &self,
        username: &Username,
        seen: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        // `attribute_exists(username)`: UpdateItem would otherwise create a stub item for a user
        // removed since the login read them.
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(
                attr::USERNAME,
                AttributeValue::S(username.as_str().to_owned()),
            )
            .update_expression(format!("SET {} = :now", attr::LAST_LOGIN_AT))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        update = match seen {
            Some(seen) => update
                .condition_expression(format!(
                    "attribute_exists({}) AND {} = :seen",
                    attr::USERNAME,
                    attr::LAST_LOGIN_AT
                ))
                .expression_attribute_values(":seen", AttributeValue::N(seen.to_string())),
            None => update.condition_expression(format!(
                "attribute_exists({}) AND attribute_not_exists({})",
                attr::USERNAME,
                attr::LAST_LOGIN_AT
            )),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        self.put_user(record, false).await
    }
}

impl SaltUsage for DynamoUserStore {
    #[instrument(skip(self), fields(table = %self.table))]
    async fn in_use(&self, version: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SALT_VERSION_INDEX)
            .key_condition_expression(format!("{} = :v", attr::SALT_VERSION))
            .expression_attribute_values(":v", AttributeValue::S(version.to_owned()))
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.count() > 0)
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn count(&self, version: &str) -> Result<u64, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SALT_VERSION_INDEX)
            .key_condition_expression(format!("{} = :v", attr::SALT_VERSION))
            .expression_attribute_values(":v", AttributeValue::S(version.to_owned()))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .into_paginator()
            .send();
        let mut total = 0u64;
        while let Some(page) = pages.try_next().await.map_err(unavailable)? {
            total += u64::try_from(page.count()).unwrap_or(0);
        }
        Ok(total)
    }
}

/// The seed design's table: items keyed by `hashPassword`, with username, bucket, home and
/// iamPolicyArn.
#[derive(Debug, Clone)]
pub struct DynamoLegacyUsers {
    client: Client,
    table: Option<String>,
}

impl DynamoLegacyUsers {
    /// `table` is `None` when no legacy table is configured.
    pub fn new(client: Client, table: Option<String>) -> Self {
        Self { client, table }
    }

    fn table(&self) -> Result<&str, StoreError> {
        self.table
            .as_deref()
            .ok_or_else(|| StoreError::NotFound("a legacy users table".into()))
    }
}

impl LegacyUsers for DynamoLegacyUsers {
    fn enabled(&self) -> bool {
        self.table.is_some()
    }

    // The key is derived from the password: never in a log field.
    #[instrument(skip_all)]
    async fn find(&self, key: &str) -> Result<Option<LegacyUser>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table()?)
            .key("hashPassword", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.as_ref().map(legacy_user).transpose()
    }

    #[instrument(skip_all)]
    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(self.table()?)
            .key("hashPassword", AttributeValue::S(key.to_owned()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn items_of(&self, username: &str) -> Result<Vec<(String, LegacyUser)>, StoreError> {
        let table = self.table()?;
        let mut pages = self
            .client
            .scan()
            .table_name(table)
            .filter_expression("username = :u")
            .expression_attribute_values(":u", AttributeValue::S(username.to_owned()))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.try_next().await.map_err(unavailable)? {
            for item in page.items() {
                let key = item
                    .get("hashPassword")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(|| {
                        StoreError::Malformed("legacy item has no hashPassword".into())
                    })?;
                found.push((key, legacy_user(item)?));
            }
        }
        Ok(found)
    }

    #[instrument(skip(self))]
    async fn count(&self) -> Result<u64, StoreError> {
        let Some(table) = &self.table else {
            return Ok(0);
        };
        let mut pages = self
            .client
            .scan()
            .table_name(table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .into_paginator()
            .send();
        let mut total = 0u64;
        while let Some(page) = pages.try_next().await.map_err(unavailable)? {
            total += u64::try_from(page.count()).unwrap_or(0);
        }
        Ok(total)
    }
}

/// A seed-design item as a legacy user: its four attributes, all non-empty strings.
fn legacy_user(item: &HashMap<String, AttributeValue>) -> Result<LegacyUser, StoreError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .filter(|s| !s.is_empty())
            .cloned()
            .ok_or_else(|| StoreError::Malformed(format!("legacy user item has no {name}")))
    };
    Ok(LegacyUser {
        username: text("username")?,
        bucket: text("bucket")?,
        home: text("home")?,
        policy_arn: text("iamPolicyArn")?,
    })
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable {
        what: "DynamoDB",
        source: Box::new(e),
    }
}

impl UserAdmin for DynamoUserStore {
    #[instrument(skip_all, fields(table = %self.table))]
    async fn put_user(&self, record: &UserRecord, overwrite: bool) -> Result<bool, StoreError> {
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(record.to_stored()).map_err(malformed)?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        if !overwrite {
            put = put.condition_expression(format!("attribute_not_exists({})", attr::USERNAME));
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn get_raw(&self, username: &Username) -> Result<Option<Value>, StoreError> {
        let out = self.read_user(username).send().await.map_err(unavailable)?;
        out.item
            .map(|item| serde_dynamo::from_item(item).map_err(malformed))
            .transpose()
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn delete_user(&self, username: &Username) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(
                attr::USERNAME,
                AttributeValue::S(username.as_str().to_owned()),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn list_users(&self, start: Option<String>) -> Result<UserPage, StoreError> {
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true);
        if let Some(after) = start {
            scan = scan.exclusive_start_key(attr::USERNAME, AttributeValue::S(after));
        }
        let out = scan.send().await.map_err(unavailable)?;
        let users = out
            .items()
            .iter()
            .map(|item| serde_dynamo::from_item(item.clone()).map_err(malformed))
            .collect::<Result<Vec<Value>, _>>()?;
        let next = out
            .last_evaluated_key()
            .and_then(|k| k.get(attr::USERNAME))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(UserPage { users, next })
    }

    /// A scan with the prefix as a filter, page after page until `limit` users are found: the
    /// table still reads every item it passes (a scan has no order to start from), but only the
    /// matches cross the wire. The next page starts after the last user returned.
    #[instrument(skip(self, start), fields(table = %self.table))]
    async fn find_users(
        &self,
        prefix: &str,
        start: Option<String>,
        limit: usize,
    ) -> Result<UserPage, StoreError> {
        let limit = limit.max(1);
        let mut users: Vec<Value> = Vec::new();
        let mut cursor = start;
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true);
            if !prefix.is_empty() {
                scan = scan
                    .filter_expression("begins_with(#u, :p)")
                    .expression_attribute_names("#u", attr::USERNAME)
                    .expression_attribute_values(":p", AttributeValue::S(prefix.to_owned()));
            }
            if let Some(after) = cursor {
                scan = scan.exclusive_start_key(attr::USERNAME, AttributeValue::S(after));
            }
            let out = scan.send().await.map_err(unavailable)?;
            for item in out.items() {
                users.push(serde_dynamo::from_item(item.clone()).map_err(malformed)?);
            }
            cursor = out
                .last_evaluated_key()
                .and_then(|k| k.get(attr::USERNAME))
                .and_then(|v| v.as_s().ok())
                .cloned();
            if users.len() >= limit || cursor.is_none() {
                break;
            }
        }
        let more = users.len() > limit || cursor.is_some();
        users.truncate(limit);
        let next = users
            .last()
            .filter(|_| more)
            .and_then(|u| u.get(attr::USERNAME))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(UserPage { users, next })
    }
}

/// An item, or a value inside one, that does not fit the data model's types (a binary
/// attribute, an unreadable number, a wrong type).
fn malformed(e: serde_dynamo::Error) -> StoreError {
    StoreError::Malformed(format!("the item does not fit the data model: {e}"))
}

impl crate::ports::VerdictWriter for DynamoUserStore {
    #[instrument(skip(self, seen), fields(table = %self.table))]
    async fn write_verdict(
        &self,
        username: &str,
        seen: &[(&'static str, Option<serde_dynamo::AttributeValue>)],
        status: Option<crate::domain::user::Status>,
        reason: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut set = vec!["statusReason = :reason", "validatedAt = :at"];
        let mut conditions = vec!["attribute_exists(username)".to_owned()];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::USERNAME, AttributeValue::S(username.to_owned()))
            .expression_attribute_values(":reason", AttributeValue::S(reason.to_owned()))
            .expression_attribute_values(":at", AttributeValue::N(at.to_string()));
        if let Some(status) = status {
            // `status` is a DynamoDB reserved word.
            set.push("#status = :status");
            req = req
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(
                    ":status",
                    AttributeValue::S(status.as_str().to_owned()),
                );
        }
        for (i, (field, value)) in seen.iter().enumerate() {
            let name = format!("#f{i}");
            req = req.expression_attribute_names(&name, *field);
            match value {
                Some(v) => {
                    let attr = AttributeValue::from(v.clone());
                    let placeholder = format!(":v{i}");
                    conditions.push(format!("{name} = {placeholder}"));
                    req = req.expression_attribute_values(placeholder, attr);
                }
                None => conditions.push(format!("attribute_not_exists({name})")),
            }
        }
        let out = req
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl crate::ports::RulesSource for DynamoUserStore {
    async fn rules_for(
        &self,
        user: &str,
    ) -> Result<Option<crate::domain::upload_rules::UserRules>, StoreError> {
        crate::ports::rules_of(self, user).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(extra: Value) -> UserRecord {
        let mut v = json!({
            "username": "alice",
            "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB",
            "saltVersion": "1",
            "bucket": "ferry-data",
            "home": "partners/alice",
            "iamPolicyArn": "arn:aws:iam::123456789012:policy/ferry-scope-down",
        });
        for (k, x) in extra.as_object().into_iter().flatten() {
            v[k] = x.clone();
        }
        UserRecord::from_json(v).expect("a valid record")
    }

    #[test]
    fn a_record_survives_an_item_both_ways_with_numbers_lists_and_unknown_attributes() {
        let user = record(json!({
            "chroot": true,
            "expiresAt": 1_700_000_000,
            "allowedIps": ["10.0.0.0/8"],
            "publicKeys": [{"key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a", "expiresAt": 5}],
            "posixProfile": {"Uid": 1000, "Gid": 100, "SecondaryGids": [7]},
            "uploadRules": {"maxObjectBytes": 10},
            "statusReason": "ok",
        }));
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(user.to_stored()).expect("serialises");
        assert_eq!(
            item[attr::EXPIRES_AT],
            AttributeValue::N("1700000000".into())
        );
        let back: StoredRecord = serde_dynamo::from_item(item).expect("deserialises");
        assert_eq!(UserRecord::from_stored(back).expect("valid"), user);
    }

    #[test]
    fn string_sets_read_as_lists() {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(record(json!({})).to_stored()).expect("serialises");
        item.insert(
            attr::ALLOWED_IPS.into(),
            AttributeValue::Ss(vec!["10.0.0.0/8".into(), "192.0.2.7".into()]),
        );
        let back: StoredRecord = serde_dynamo::from_item(item).expect("deserialises");
        assert_eq!(back.allowed_ips.len(), 2);
    }

    #[test]
    fn binary_attributes_and_bad_numbers_are_malformed_not_panics() {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(record(json!({})).to_stored()).expect("serialises");
        item.insert(attr::EXPIRES_AT.into(), AttributeValue::N("twelve".into()));
        let err = serde_dynamo::from_item::<_, StoredRecord>(item.clone()).map_err(malformed);
        assert!(matches!(err, Err(StoreError::Malformed(_))));
        item.insert(attr::EXPIRES_AT.into(), AttributeValue::B(vec![1u8].into()));
        let err = serde_dynamo::from_item::<_, Value>(item).map_err(malformed);
        assert!(matches!(err, Err(StoreError::Malformed(_))));
    }
}
