//! The upload processor's operations on the local stack's data folder: objects are files under
//! `objects/`, their tags JSON files under `tags/` (so listings never show them), and an object's
//! "ETag" is derived from its inode, size and modification time, so a replaced file has another.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use bytes::Bytes;
use serde_json::Value;

use crate::adapters::local::objects::FileObjects;
use crate::domain::audit::AuditEvent;
use crate::ports::ObjectError;
use crate::ports::StoreError;
use crate::ports::{
    BodyStream, CopyRequest, CopyResult, EventPublisher, Head, Notifier, UploadStore,
};

/// Chunk size of a local read.
const CHUNK: usize = 256 * 1024;

/// The data folder's objects and tags.
#[derive(Debug, Clone)]
pub struct FileUploads {
    objects: FileObjects,
    tags: PathBuf,
}

impl FileUploads {
    /// `data` is the data folder (`objects/` and `tags/` inside it).
    pub fn new(data: impl Into<PathBuf>) -> Self {
        let data = data.into();
        Self {
            objects: FileObjects::new(data.join("objects")),
            tags: data.join("tags"),
        }
    }

    fn tag_file(&self, bucket: &str, key: &str) -> Result<PathBuf, StoreError> {
        // The object path check refuses `..` and the like; tags mirror it.
        self.objects.path(bucket, key).map_err(object)?;
        Ok(self.tags.join(bucket).join(format!("{key}.json")))
    }
}

fn object(e: ObjectError) -> StoreError {
    match e {
        ObjectError::Unavailable { what, source } => StoreError::Unavailable { what, source },
        other => StoreError::Malformed(other.to_string()),
    }
}

fn disk(e: std::io::Error) -> StoreError {
    StoreError::Unavailable {
        what: "the data folder",
        source: Box::new(e),
    }
}

fn etag_of(m: &fs::Metadata) -> String {
    format!(
        "{:x}-{:x}-{:x}",
        m.ino(),
        m.size(),
        m.mtime_nsec() as u64 ^ ((m.mtime() as u64) << 30)
    )
}

/// A local file, read in chunks.
#[derive(Debug)]
pub struct FileBody(fs::File);

impl BodyStream for FileBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        let mut buf = vec![0u8; CHUNK];
        let n = self.0.read(&mut buf).map_err(disk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some(Bytes::from(buf)))
    }
}

impl UploadStore for FileUploads {
    type Body = FileBody;

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<Head>, StoreError> {
        let path = self.objects.path(bucket, key).map_err(object)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(Head {
                size: m.len(),
                etag: etag_of(&m),
                version_id: None,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(disk(e)),
        }
    }

    async fn tags(&self, bucket: &str, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        match fs::read_to_string(self.tag_file(bucket, key)?) {
            Ok(text) => {
                Ok(serde_json::from_str::<Vec<(String, String)>>(&text).unwrap_or_default())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(disk(e)),
        }
    }

    async fn body(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<FileBody>, StoreError> {
        let path = self.objects.path(bucket, key).map_err(object)?;
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(disk(e)),
        };
        // The open file is the one with this ETag, whatever happens to the name later.
        if etag_of(&file.metadata().map_err(disk)?) != etag {
            return Ok(None);
        }
        Ok(Some(FileBody(file)))
    }

    async fn copy(&self, req: &CopyRequest<'_>) -> Result<CopyResult, StoreError> {
        let source = self.objects.path(req.bucket, req.key).map_err(object)?;
        let mut file = match fs::File::open(&source) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CopyResult::SourceChanged);
            }
            Err(e) => return Err(disk(e)),
        };
        if etag_of(&file.metadata().map_err(disk)?) != req.etag {
            return Ok(CopyResult::SourceChanged);
        }
        let dest = self
            .objects
            .path(req.to_bucket, req.to_key)
            .map_err(object)?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(disk)?;
        }
        // Copied beside the target, then renamed: the copy appears whole.
        let name = dest
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let temp = dest.with_file_name(format!(".{name}.ferry-copy"));
        let mut out = fs::File::create(&temp).map_err(disk)?;
        std::io::copy(&mut file, &mut out).map_err(disk)?;
        fs::rename(&temp, &dest).map_err(disk)?;
        self.put_tags(req.to_bucket, req.to_key, req.tags).await?;
        Ok(CopyResult::Copied)
    }

    async fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError> {
        let path = self.tag_file(bucket, key)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(disk)?;
        }
        let text = serde_json::to_string(tags).map_err(|e| StoreError::Malformed(e.to_string()))?;
        fs::write(path, text).map_err(disk)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let path = self.objects.path(bucket, key).map_err(object)?;
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(disk(e)),
        }
        let _ = fs::remove_file(self.tag_file(bucket, key)?);
        Ok(())
    }
}

/// Notices as JSON lines in a file of the data folder, and in the log.
#[derive(Debug, Clone)]
pub struct JsonLines(pub PathBuf);

impl Notifier for JsonLines {
    async fn notify(
        &self,
        message: &Value,
        _attributes: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        use std::io::Write;
        tracing::info!(target: "ferry::upload", notice = %message, "UPLOAD_PROCESSED");
        // One write per line: `writeln!` on a file issues a write per formatting fragment, so
        // a reader saw half a line and two uploads finishing together could interleave theirs.
        // A single O_APPEND write lands whole after every earlier one.
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .map_err(disk)?;
        f.write_all(&line).map_err(disk)
    }
}

/// Audit events locally: one JSON line each (`{"detailType": …, "detail": {…}}`), appended
/// whole like the notices.
impl EventPublisher for JsonLines {
    async fn publish(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        use std::io::Write;
        let mut lines = Vec::new();
        for e in events {
            let line = serde_json::json!({
                "detailType": e.kind().detail_type(),
                "detail": e,
            });
            lines.extend_from_slice(line.to_string().as_bytes());
            lines.push(b'\n');
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .map_err(disk)?;
        f.write_all(&lines).map_err(disk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn notices_written_at_once_from_many_tasks_stay_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let notices = JsonLines(dir.path().join("notifications.jsonl"));
        let filler = "x".repeat(3000);
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let notices = notices.clone();
                let filler = filler.clone();
                tokio::spawn(async move {
                    for n in 0..50 {
                        let message = serde_json::json!({"task": task, "n": n, "filler": filler});
                        notices.notify(&message, &[]).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let text = fs::read_to_string(&notices.0).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
            .collect();
        assert_eq!(lines.len(), 8 * 50);
    }
}
