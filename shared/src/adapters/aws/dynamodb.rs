//! The user store on DynamoDB: one strongly consistent GetItem per login; the two writes a login
//! can make (re-hash, migration), both conditional; the `saltVersion-index` GSI that tells which
//! salt versions are still in use; and the seed design's legacy table.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};
use tracing::instrument;

use crate::domain::user::UserRecord;
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
            .key("username", AttributeValue::S(username.as_str().to_owned()))
            .consistent_read(true)
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
        crate::ports::parse_stored(self.get_raw(username).await?)
    }

    #[instrument(skip_all, fields(table = %self.table, username = %username))]
    async fn replace_hash(
        &self,
        username: &Username,
        old_hash: &str,
        new_hash: &str,
        salt_version: &str,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("username", AttributeValue::S(username.as_str().to_owned()))
            .update_expression("SET passwordHash = :new, saltVersion = :version")
            .condition_expression("passwordHash = :old")
            .expression_attribute_values(":new", AttributeValue::S(new_hash.to_owned()))
            .expression_attribute_values(":version", AttributeValue::S(salt_version.to_owned()))
            .expression_attribute_values(":old", AttributeValue::S(old_hash.to_owned()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn create_user(&self, record: &Value) -> Result<bool, StoreError> {
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
            .key_condition_expression("saltVersion = :v")
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
            .key_condition_expression("saltVersion = :v")
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
        let Some(item) = out.item else {
            return Ok(None);
        };
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .filter(|s| !s.is_empty())
                .cloned()
                .ok_or_else(|| StoreError::Malformed(format!("legacy user item has no {name}")))
        };
        Ok(Some(LegacyUser {
            username: text("username")?,
            bucket: text("bucket")?,
            home: text("home")?,
            policy_arn: text("iamPolicyArn")?,
        }))
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

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable {
        what: "DynamoDB",
        source: Box::new(e),
    }
}

impl UserAdmin for DynamoUserStore {
    #[instrument(skip_all, fields(table = %self.table))]
    async fn put_user(&self, record: &Value, overwrite: bool) -> Result<bool, StoreError> {
        let item = json_to_item(record)
            .ok_or_else(|| StoreError::Malformed("a user record must be a JSON object".into()))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        if !overwrite {
            put = put.condition_expression("attribute_not_exists(username)");
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
        out.item.as_ref().map(item_to_json).transpose()
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn delete_user(&self, username: &Username) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("username", AttributeValue::S(username.as_str().to_owned()))
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
            scan = scan.exclusive_start_key("username", AttributeValue::S(after));
        }
        let out = scan.send().await.map_err(unavailable)?;
        let users = out
            .items()
            .iter()
            .map(item_to_json)
            .collect::<Result<Vec<_>, _>>()?;
        let next = out
            .last_evaluated_key()
            .and_then(|k| k.get("username"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(UserPage { users, next })
    }
}

/// Converts an item to the plain JSON the record parser reads: lists and string sets become
/// arrays, numbers become JSON numbers.
pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Result<Value, StoreError> {
    let mut map = Map::with_capacity(item.len());
    for (k, v) in item {
        map.insert(k.clone(), attr_to_json(k, v)?);
    }
    Ok(Value::Object(map))
}

/// An attribute value in DynamoDB's JSON wire format (`{"S": "x"}`, `{"N": "1"}`, …), as stream
/// records carry them. `None` for anything that is not one.
pub fn wire_to_attr(v: &Value) -> Option<AttributeValue> {
    let (tag, inner) = v.as_object().filter(|o| o.len() == 1)?.iter().next()?;
    let blob = |x: &Value| -> Option<aws_sdk_dynamodb::primitives::Blob> {
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, x.as_str()?)
            .ok()
            .map(aws_sdk_dynamodb::primitives::Blob::new)
    };
    let strings = |x: &Value| -> Option<Vec<String>> {
        x.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    Some(match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_owned()),
        "N" => AttributeValue::N(inner.as_str()?.to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(inner.as_bool()?),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "B" => AttributeValue::B(blob(inner)?),
        "BS" => AttributeValue::Bs(inner.as_array()?.iter().map(blob).collect::<Option<_>>()?),
        "L" => AttributeValue::L(
            inner
                .as_array()?
                .iter()
                .map(wire_to_attr)
                .collect::<Option<_>>()?,
        ),
        "M" => AttributeValue::M(
            inner
                .as_object()?
                .iter()
                .map(|(k, x)| Some((k.clone(), wire_to_attr(x)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// An attribute value in DynamoDB's JSON wire format: the inverse of [`wire_to_attr`]. A type
/// this SDK does not know becomes `{"NULL": true}`, which no stored value equals, so a condition
/// built on it fails rather than matching something else.
pub fn attr_to_wire(v: &AttributeValue) -> Value {
    use base64::Engine as _;
    let b64 = |b: &aws_sdk_dynamodb::primitives::Blob| {
        Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))
    };
    let one = |tag: &str, inner: Value| {
        let mut m = Map::with_capacity(1);
        m.insert(tag.to_owned(), inner);
        Value::Object(m)
    };
    match v {
        AttributeValue::S(s) => one("S", Value::String(s.clone())),
        AttributeValue::N(n) => one("N", Value::String(n.clone())),
        AttributeValue::Bool(b) => one("BOOL", Value::Bool(*b)),
        AttributeValue::Null(b) => one("NULL", Value::Bool(*b)),
        AttributeValue::Ss(ss) => one("SS", ss.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(ns) => one("NS", ns.iter().cloned().map(Value::String).collect()),
        AttributeValue::B(b) => one("B", b64(b)),
        AttributeValue::Bs(bs) => one("BS", bs.iter().map(b64).collect()),
        AttributeValue::L(l) => one("L", l.iter().map(attr_to_wire).collect()),
        AttributeValue::M(m) => one(
            "M",
            Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), attr_to_wire(x)))
                    .collect(),
            ),
        ),
        _ => one("NULL", Value::Bool(true)),
    }
}

/// A stream image (wire format) as the plain JSON the record parser reads.
pub fn image_to_json(image: &Map<String, Value>) -> Result<Value, StoreError> {
    let mut out = Map::with_capacity(image.len());
    for (k, v) in image {
        let attr = wire_to_attr(v).ok_or_else(|| {
            StoreError::Malformed(format!("attribute {k} is not a DynamoDB value"))
        })?;
        out.insert(k.clone(), attr_to_json(k, &attr)?);
    }
    Ok(Value::Object(out))
}

fn attr_to_json(name: &str, v: &AttributeValue) -> Result<Value, StoreError> {
    Ok(match v {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(name, n)?,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Ss(ss) => Value::Array(ss.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(
            ns.iter()
                .map(|n| number(name, n))
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::L(list) => Value::Array(
            list.iter()
                .map(|x| attr_to_json(name, x))
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::M(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, x) in m {
                out.insert(k.clone(), attr_to_json(name, x)?);
            }
            Value::Object(out)
        }
        _ => {
            return Err(StoreError::Malformed(format!(
                "attribute {name} has a binary or unknown type"
            )));
        }
    })
}

fn number(name: &str, n: &str) -> Result<Value, StoreError> {
    let parsed = n
        .parse::<i64>()
        .map(Number::from)
        .ok()
        .or_else(|| n.parse::<f64>().ok().and_then(Number::from_f64));
    parsed.map(Value::Number).ok_or_else(|| {
        StoreError::Malformed(format!("attribute {name} holds an unreadable number"))
    })
}

/// Converts plain JSON back to an item (the inverse of [`item_to_json`], lists as L).
pub fn json_to_item(value: &Value) -> Option<HashMap<String, AttributeValue>> {
    value.as_object().map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), json_to_attr(v)))
            .collect()
    })
}

fn json_to_attr(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(json_to_attr).collect()),
        Value::Object(m) => AttributeValue::M(
            m.iter()
                .map(|(k, v)| (k.clone(), json_to_attr(v)))
                .collect(),
        ),
    }
}

impl crate::ports::VerdictWriter for DynamoUserStore {
    #[instrument(skip(self, seen), fields(table = %self.table))]
    async fn write_verdict(
        &self,
        username: &str,
        seen: &[(&'static str, Option<Value>)],
        status: Option<&str>,
        reason: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut set = vec!["statusReason = :reason", "validatedAt = :at"];
        let mut conditions = vec!["attribute_exists(username)".to_owned()];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("username", AttributeValue::S(username.to_owned()))
            .expression_attribute_values(":reason", AttributeValue::S(reason.to_owned()))
            .expression_attribute_values(":at", AttributeValue::N(at.to_string()));
        if let Some(status) = status {
            // `status` is a DynamoDB reserved word.
            set.push("#status = :status");
            req = req
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", AttributeValue::S(status.to_owned()));
        }
        for (i, (field, value)) in seen.iter().enumerate() {
            let name = format!("#f{i}");
            req = req.expression_attribute_names(&name, *field);
            match value {
                Some(v) => {
                    let attr = wire_to_attr(v).ok_or_else(|| {
                        StoreError::Malformed(format!("attribute {field} is not a DynamoDB value"))
                    })?;
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

    #[test]
    fn every_attribute_type_survives_the_wire_format_both_ways() {
        use aws_sdk_dynamodb::primitives::Blob;
        let all = AttributeValue::M(HashMap::from([
            ("s".to_owned(), AttributeValue::S("x".into())),
            ("n".to_owned(), AttributeValue::N("1.5".into())),
            ("bool".to_owned(), AttributeValue::Bool(false)),
            ("null".to_owned(), AttributeValue::Null(true)),
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
            ),
            ("ns".to_owned(), AttributeValue::Ns(vec!["1".into()])),
            ("b".to_owned(), AttributeValue::B(Blob::new(vec![0, 255]))),
            (
                "bs".to_owned(),
                AttributeValue::Bs(vec![Blob::new(vec![1])]),
            ),
            (
                "l".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("y".into())]),
            ),
        ]));
        let wire = attr_to_wire(&all);
        assert_eq!(wire["M"]["ss"], json!({"SS": ["a", "b"]}));
        assert_eq!(wire["M"]["b"], json!({"B": "AP8="}));
        assert_eq!(wire_to_attr(&wire), Some(all));
    }

    #[test]
    fn sets_lists_maps_and_numbers_become_plain_json() {
        let item = HashMap::from([
            ("username".to_owned(), AttributeValue::S("alice".into())),
            (
                "expiresAt".to_owned(),
                AttributeValue::N("1700000000".into()),
            ),
            ("chroot".to_owned(), AttributeValue::Bool(true)),
            (
                "allowedIps".to_owned(),
                AttributeValue::Ss(vec!["10.0.0.0/8".into()]),
            ),
            (
                "publicKeys".to_owned(),
                AttributeValue::L(vec![AttributeValue::M(HashMap::from([
                    (
                        "key".to_owned(),
                        AttributeValue::S("ssh-ed25519 AAAA".into()),
                    ),
                    ("expiresAt".to_owned(), AttributeValue::N("5".into())),
                ]))]),
            ),
        ]);
        let v = item_to_json(&item).unwrap();
        assert_eq!(v["expiresAt"], json!(1_700_000_000));
        assert_eq!(v["chroot"], json!(true));
        assert_eq!(v["allowedIps"], json!(["10.0.0.0/8"]));
        assert_eq!(v["publicKeys"][0]["expiresAt"], json!(5));
    }

    #[test]
    fn binary_attributes_and_bad_numbers_are_malformed_not_panics() {
        let item = HashMap::from([("x".to_owned(), AttributeValue::B(vec![1u8].into()))]);
        assert!(matches!(item_to_json(&item), Err(StoreError::Malformed(_))));
        let item = HashMap::from([("n".to_owned(), AttributeValue::N("twelve".into()))]);
        assert!(matches!(item_to_json(&item), Err(StoreError::Malformed(_))));
    }

    #[test]
    fn json_round_trips_through_an_item() {
        let v = json!({"username": "a-b", "n": 3, "l": ["x"], "m": {"k": true}});
        let item = json_to_item(&v).unwrap();
        assert_eq!(item_to_json(&item).unwrap(), v);
    }
}
