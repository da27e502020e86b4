//! Reads a table's DynamoDB stream from DynamoDB Local and turns its records into the event
//! Lambda would deliver (DynamoDB JSON wire format), so stream functions are tested on the
//! records the real engine produced.

use std::collections::HashMap;

use anyhow::{Context, Result};
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use serde_json::{Map, Value, json};

/// A stream being followed: where each shard was left.
#[derive(Debug)]
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    iterators: HashMap<String, Option<String>>,
}

impl StreamReader {
    /// Turns on NEW_AND_OLD_IMAGES on `table` and follows it from the start.
    pub async fn enable(sdk: &aws_config::SdkConfig, table: &str) -> Result<Self> {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let out = ddb
            .update_table()
            .table_name(table)
            .stream_specification(
                aws_sdk_dynamodb::types::StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages)
                    .build()?,
            )
            .send()
            .await
            .context("enable the stream")?;
        let arn = out
            .table_description()
            .and_then(|d| d.latest_stream_arn())
            .context("no stream ARN")?
            .to_owned();
        Ok(Self {
            client: aws_sdk_dynamodbstreams::Client::new(sdk),
            arn,
            iterators: HashMap::new(),
        })
    }

    /// The records written since the last call, as a Lambda event's `Records`.
    pub async fn next_records(&mut self) -> Result<Vec<Value>> {
        let stream = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await?;
        let shards: Vec<String> = stream
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut records = Vec::new();
        for shard in shards {
            let iterator = match self.iterators.get(&shard) {
                Some(Some(it)) => it.clone(),
                Some(None) => continue,
                None => self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.arn)
                    .shard_id(&shard)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await?
                    .shard_iterator()
                    .context("no shard iterator")?
                    .to_owned(),
            };
            let out = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await?;
            for r in out.records() {
                records.push(record_event(r, &self.arn));
            }
            self.iterators
                .insert(shard, out.next_shard_iterator().map(str::to_owned));
        }
        Ok(records)
    }
}

fn record_event(r: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> Value {
    let mut ddb = Map::new();
    if let Some(d) = r.dynamodb() {
        if let Some(k) = d.keys() {
            ddb.insert("Keys".into(), image(k));
        }
        if let Some(n) = d.new_image() {
            ddb.insert("NewImage".into(), image(n));
        }
        if let Some(o) = d.old_image() {
            ddb.insert("OldImage".into(), image(o));
        }
        if let Some(s) = d.sequence_number() {
            ddb.insert("SequenceNumber".into(), json!(s));
        }
        ddb.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
        ddb.insert("SizeBytes".into(), json!(d.size_bytes().unwrap_or(0)));
    }
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": arn,
        "dynamodb": Value::Object(ddb),
    })
}

/// An image in DynamoDB's JSON wire format, as Lambda delivers stream records.
fn image(m: &HashMap<String, AttributeValue>) -> Value {
    // serde_dynamo's items serialise in the wire format ({"S": …}, {"N": …}, …).
    serde_json::to_value(serde_dynamo::Item::from(m.clone())).unwrap_or(Value::Null)
}
