//! Object storage in S3: folders are common prefixes and `folder/` marker objects, as the S3
//! console and Transfer Family make them. Uploads arrive as a finished spool file and are sent
//! whole (multipart above 64 MiB), so an object appears complete or not at all. Also the upload
//! processor's operations: conditional reads and copies (multipart above 5 GiB), and tags.

use std::collections::VecDeque;
use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tracing::{instrument, warn};

use crate::ports::StoreError;
use crate::ports::{BodyStream, CopyRequest, CopyResult, Head, UploadStore};
use crate::ports::{Entry, Kind, ObjectError, ObjectLister, ObjectMeta, ObjectReader, ObjectStore};

/// Uploads above this go multipart (PutObject alone stops at 5 GiB).
const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// The smallest part; larger when a file would otherwise need more than 10,000 parts.
const PART_SIZE: u64 = 16 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;

/// Characters escaped in a CopySource key: everything but unreserved ones and `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Buckets in S3 (or anything speaking its API).
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
}

impl S3Objects {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn classify<E>(e: SdkError<E, HttpResponse>) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    match e.code() {
        Some("NoSuchBucket") => ObjectError::NoSuchBucket,
        Some("NoSuchKey" | "NotFound") => ObjectError::NotFound,
        // HEAD answers carry no error code, only the status.
        _ if status == Some(404) => ObjectError::NotFound,
        _ => ObjectError::Unavailable {
            what: "S3",
            source: Box::new(e),
        },
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> ObjectError {
    ObjectError::Unavailable {
        what: "S3",
        source: Box::new(e),
    }
}

fn modified(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<std::time::SystemTime> {
    t.and_then(|t| std::time::SystemTime::try_from(*t).ok())
}

fn size(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

fn length(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The prefix that lists folder `dir`.
fn folder(dir: &str) -> String {
    if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    }
}

/// One object being read: a ranged GET stays open while reads follow each other.
#[derive(Debug)]
pub struct S3Reader {
    client: Client,
    bucket: String,
    key: String,
    /// The object read is the one opened: a replaced object fails the next GET.
    etag: Option<String>,
    size: u64,
    pos: u64,
    body: Option<ByteStream>,
    pending: Bytes,
}

impl ObjectReader for S3Reader {
    async fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, ObjectError> {
        if offset >= self.size || len == 0 {
            return Ok(Vec::new());
        }
        if self.body.is_none() || offset != self.pos {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .set_if_match(self.etag.clone())
                .range(format!("bytes={offset}-"))
                .send()
                .await
                .map_err(classify)?;
            self.body = Some(out.body);
            self.pos = offset;
            self.pending = Bytes::new();
        }
        let want = usize::try_from(self.size - offset).map_or(len, |left| left.min(len));
        let mut out = Vec::with_capacity(want);
        while out.len() < want {
            if self.pending.is_empty() {
                let Some(body) = self.body.as_mut() else {
                    break;
                };
                match body.try_next().await {
                    Ok(Some(chunk)) => self.pending = chunk,
                    Ok(None) => break,
                    Err(e) => {
                        self.body = None;
                        return Err(unavailable(e));
                    }
                }
            }
            let take = (want - out.len()).min(self.pending.len());
            out.extend_from_slice(&self.pending.split_to(take));
        }
        self.pos += out.len() as u64;
        Ok(out)
    }
}

impl S3Objects {
    async fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectMeta, Option<String>)>, ObjectError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some((
                ObjectMeta {
                    size: size(out.content_length()),
                    modified: modified(out.last_modified()),
                },
                out.e_tag().map(str::to_owned),
            ))),
            Err(e) => match classify(e) {
                ObjectError::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn multipart(
        &self,
        bucket: &str,
        key: &str,
        spool: &Path,
        total: u64,
    ) -> Result<(), ObjectError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(classify)?;
        let upload_id = created
            .upload_id()
            .ok_or(ObjectError::Unsupported(
                "S3 returned no multipart upload id",
            ))?
            .to_owned();
        let result = async {
            let part_size = PART_SIZE.max(total.div_ceil(MAX_PARTS));
            let mut parts = Vec::new();
            let mut offset = 0;
            let mut number = 1;
            while offset < total {
                let len = part_size.min(total - offset);
                // Streamed from the spool file: a part is never held in memory whole.
                let body = ByteStream::read_from()
                    .path(spool)
                    .offset(offset)
                    .length(Length::Exact(len))
                    .build()
                    .await
                    .map_err(unavailable)?;
                let out = self
                    .client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .content_length(length(len))
                    .body(body)
                    .send()
                    .await
                    .map_err(classify)?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag)
                        .set_checksum_crc32(out.checksum_crc32)
                        .build(),
                );
                offset += len;
                number += 1;
            }
            self.client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(classify)?;
            Ok(())
        }
        .await;
        if result.is_err() {
            // No orphaned parts left to bill for.
            if let Err(e) = self
                .client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await
            {
                warn!(error = %e, "aborting a failed multipart upload failed");
            }
        }
        result
    }
}

/// A folder listed one ListObjectsV2 answer (at most 1,000 keys) at a time: the continuation
/// token is all a listing keeps between answers, so a folder of any size costs one answer.
#[derive(Debug)]
pub struct S3Lister {
    client: Client,
    bucket: String,
    prefix: String,
    token: Option<String>,
    done: bool,
    buffered: VecDeque<Entry>,
}

impl S3Lister {
    /// Reads the next answer into the buffer, in key order (folders and files interleaved as
    /// their keys are).
    #[instrument(skip(self), fields(bucket = %self.bucket, prefix = %self.prefix))]
    async fn fetch(&mut self) -> Result<(), ObjectError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .delimiter("/")
            .set_continuation_token(self.token.take())
            .send()
            .await
            .map_err(classify)?;
        let plain = |name: &&str| !name.is_empty() && *name != "." && *name != "..";
        let mut page: Vec<(String, Entry)> = Vec::new();
        for p in out.common_prefixes() {
            let Some(key) = p.prefix() else { continue };
            let name = key
                .strip_prefix(self.prefix.as_str())
                .map(|n| n.trim_end_matches('/'));
            if let Some(name) = name.filter(plain) {
                let entry = Entry {
                    name: name.to_owned(),
                    kind: Kind::Dir,
                };
                page.push((key.to_owned(), entry));
            }
        }
        for o in out.contents() {
            let Some(key) = o.key() else { continue };
            // The folder's own marker (`dir/`) is not one of its entries.
            if let Some(name) = key.strip_prefix(self.prefix.as_str()).filter(plain) {
                let entry = Entry {
                    name: name.to_owned(),
                    kind: Kind::File(ObjectMeta {
                        size: size(o.size()),
                        modified: modified(o.last_modified()),
                    }),
                };
                page.push((key.to_owned(), entry));
            }
        }
        page.sort_by(|a, b| a.0.cmp(&b.0));
        self.buffered.extend(page.into_iter().map(|(_, e)| e));
        self.token = out
            .next_continuation_token()
            .filter(|_| out.is_truncated() == Some(true))
            .map(str::to_owned);
        self.done = self.token.is_none();
        Ok(())
    }
}

impl ObjectLister for S3Lister {
    async fn next_page(&mut self, max: usize) -> Result<Vec<Entry>, ObjectError> {
        // An answer can hold nothing to show (only the folder's marker): read on until it does.
        while self.buffered.len() < max.max(1) && !self.done {
            self.fetch().await?;
        }
        let n = self.buffered.len().min(max.max(1));
        Ok(self.buffered.drain(..n).collect())
    }
}

impl ObjectStore for S3Objects {
    type Reader = S3Reader;
    type Lister = S3Lister;

    #[instrument(skip(self))]
    async fn stat(&self, bucket: &str, key: &str) -> Result<Kind, ObjectError> {
        if key.is_empty() {
            return match self.client.head_bucket().bucket(bucket).send().await {
                Ok(_) => Ok(Kind::Dir),
                Err(e) => Err(match classify(e) {
                    ObjectError::NotFound => ObjectError::NoSuchBucket,
                    e => e,
                }),
            };
        }
        if let Some((meta, _)) = self.head(bucket, key).await? {
            return Ok(Kind::File(meta));
        }
        // A folder is any prefix with something under it, its marker included.
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(folder(key))
            .max_keys(1)
            .send()
            .await
            .map_err(classify)?;
        Ok(
            if out.key_count().unwrap_or(0) > 0 || !out.contents().is_empty() {
                Kind::Dir
            } else {
                Kind::Missing
            },
        )
    }

    async fn list_pages(&self, bucket: &str, dir: &str) -> Result<S3Lister, ObjectError> {
        Ok(S3Lister {
            client: self.client.clone(),
            bucket: bucket.to_owned(),
            prefix: folder(dir),
            token: None,
            done: false,
            buffered: VecDeque::new(),
        })
    }

    #[instrument(skip(self))]
    async fn open(&self, bucket: &str, key: &str) -> Result<(S3Reader, ObjectMeta), ObjectError> {
        let (meta, etag) = self.head(bucket, key).await?.ok_or(ObjectError::NotFound)?;
        Ok((
            S3Reader {
                client: self.client.clone(),
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                etag,
                size: meta.size,
                pos: 0,
                body: None,
                pending: Bytes::new(),
            },
            meta,
        ))
    }

    #[instrument(skip(self, spool))]
    async fn put_file(&self, bucket: &str, key: &str, spool: &Path) -> Result<u64, ObjectError> {
        let total = std::fs::metadata(spool).map_err(unavailable)?.len();
        if total > MULTIPART_THRESHOLD {
            self.multipart(bucket, key, spool, total).await?;
        } else {
            let body = ByteStream::read_from()
                .path(spool)
                .build()
                .await
                .map_err(unavailable)?;
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_length(length(total))
                .body(body)
                .send()
                .await
                .map_err(classify)?;
        }
        if let Err(e) = std::fs::remove_file(spool) {
            warn!(error = %e, spool = %spool.display(), "the uploaded spool file could not be removed");
        }
        Ok(total)
    }

    #[instrument(skip(self))]
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn make_dir(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(folder(key))
            .content_length(0)
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn ensure_dir(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        if key.is_empty() || self.stat(bucket, key).await? != Kind::Missing {
            return Ok(());
        }
        self.make_dir(bucket, key).await
    }

    async fn remove_dir(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        ObjectStore::delete(self, bucket, &folder(key)).await
    }

    #[instrument(skip(self))]
    async fn rename(
        &self,
        bucket: &str,
        from: &str,
        to_bucket: &str,
        to: &str,
    ) -> Result<(), ObjectError> {
        // S3 has no rename: copy, then delete the source once the copy exists.
        self.client
            .copy_object()
            .copy_source(format!(
                "{bucket}/{}",
                utf8_percent_encode(from, COPY_SOURCE)
            ))
            .bucket(to_bucket)
            .key(to)
            .send()
            .await
            .map_err(classify)?;
        ObjectStore::delete(self, bucket, from).await
    }
}

/// Objects above this are copied in parts (CopyObject stops at 5 GiB).
const COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;
/// Part size of a multipart copy.
const COPY_PART: u64 = 512 * 1024 * 1024;

fn store_err(e: ObjectError) -> StoreError {
    match e {
        ObjectError::Unavailable { what, source } => StoreError::Unavailable { what, source },
        other => StoreError::Malformed(other.to_string()),
    }
}

/// Whether an S3 error says a condition (If-Match) failed or the object is gone.
fn precondition<E>(e: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    matches!(status, Some(404 | 412))
        || matches!(e.code(), Some("PreconditionFailed" | "NoSuchKey"))
}

fn tagging(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An object's body, streamed.
#[derive(Debug)]
pub struct S3Body(ByteStream);

impl BodyStream for S3Body {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        self.0
            .try_next()
            .await
            .map_err(|e| store_err(unavailable(e)))
    }
}

impl UploadStore for S3Objects {
    type Body = S3Body;

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<Head>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(Head {
                size: size(out.content_length()),
                etag: out.e_tag().unwrap_or_default().to_owned(),
                version_id: out.version_id().map(str::to_owned),
            })),
            Err(e) => match classify(e) {
                ObjectError::NotFound => Ok(None),
                e => Err(store_err(e)),
            },
        }
    }

    async fn tags(&self, bucket: &str, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self
            .client
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()),
            Err(e) => match classify(e) {
                ObjectError::NotFound => Ok(Vec::new()),
                e => Err(store_err(e)),
            },
        }
    }

    async fn body(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<S3Body>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Some(S3Body(out.body))),
            Err(e) if precondition(&e) => Ok(None),
            Err(e) => Err(store_err(classify(e))),
        }
    }

    async fn copy(&self, req: &CopyRequest<'_>) -> Result<CopyResult, StoreError> {
        let CopyRequest {
            bucket,
            key,
            etag,
            size,
            to_bucket,
            to_key,
            tags,
        } = *req;
        let source = format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE));
        if size <= COPY_LIMIT {
            let out = self
                .client
                .copy_object()
                .copy_source(&source)
                .copy_source_if_match(etag)
                .bucket(to_bucket)
                .key(to_key)
                .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace)
                .tagging(tagging(tags))
                .send()
                .await;
            match out {
                Ok(_) => {}
                Err(e) if precondition(&e) => return Ok(CopyResult::SourceChanged),
                Err(e) => return Err(store_err(classify(e))),
            }
            // S3 honours CopySourceIfMatch; emulators may not. Checked again, so a copy of a
            // replacement never carries the checksum of the file that was hashed.
            let now = UploadStore::head(self, bucket, key).await?;
            if now.is_none_or(|h| h.etag != etag) {
                warn!(
                    key,
                    "source replaced during the copy: the copy is withdrawn"
                );
                ObjectStore::delete(self, to_bucket, to_key)
                    .await
                    .map_err(store_err)?;
                return Ok(CopyResult::SourceChanged);
            }
            return Ok(CopyResult::Copied);
        }
        // Above 5 GiB: a multipart upload of ranged part copies, each conditional on the ETag.
        let created = self
            .client
            .create_multipart_upload()
            .bucket(to_bucket)
            .key(to_key)
            .tagging(tagging(tags))
            .send()
            .await
            .map_err(|e| store_err(classify(e)))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result: Result<CopyResult, StoreError> = async {
            let mut parts = Vec::new();
            let (mut offset, mut number) = (0u64, 1);
            while offset < size {
                let end = (offset + COPY_PART).min(size) - 1;
                let out = self
                    .client
                    .upload_part_copy()
                    .bucket(to_bucket)
                    .key(to_key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .copy_source(&source)
                    .copy_source_if_match(etag)
                    .copy_source_range(format!("bytes={offset}-{end}"))
                    .send()
                    .await;
                let out = match out {
                    Ok(o) => o,
                    Err(e) if precondition(&e) => return Ok(CopyResult::SourceChanged),
                    Err(e) => return Err(store_err(classify(e))),
                };
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(
                            out.copy_part_result()
                                .and_then(|r| r.e_tag())
                                .map(str::to_owned),
                        )
                        .build(),
                );
                offset = end + 1;
                number += 1;
            }
            self.client
                .complete_multipart_upload()
                .bucket(to_bucket)
                .key(to_key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| store_err(classify(e)))?;
            Ok(CopyResult::Copied)
        }
        .await;
        if !matches!(result, Ok(CopyResult::Copied)) {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(to_bucket)
                .key(to_key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError> {
        let set = tags
            .iter()
            .map(|(k, v)| aws_sdk_s3::types::Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Malformed(e.to_string()))?;
        self.client
            .put_object_tagging()
            .bucket(bucket)
            .key(key)
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .set_tag_set(Some(set))
                    .build()
                    .map_err(|e| StoreError::Malformed(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| store_err(classify(e)))?;
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        ObjectStore::delete(self, bucket, key)
            .await
            .map_err(store_err)
    }
}
