//! The SFTP side of `ferry up`: every operation is normalised, mapped to a bucket and key,
//! authorised against the session policy as the S3 calls Transfer would make, and then served
//! from the data folder's object storage. Uploads go to a private file first and appear under
//! their name only when the client closes them; an upload still open when the session ends is
//! moved aside to `partial/` and reported.

use std::collections::HashMap;
use std::fs::{self, File as FsFile};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_core::access::{Request, SessionPolicy, Verdict};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tracing::{info, warn};

use super::paths::{Location, Namespace, PathError, normalize};

/// Largest read served at once (OpenSSH asks for 32 KiB or 256 KiB).
const MAX_READ: u32 = 256 * 1024;

/// What a session may touch and where its data lives.
#[derive(Debug)]
pub(crate) struct SessionContext {
    pub(crate) id: u64,
    pub(crate) username: String,
    pub(crate) home: String,
    pub(crate) namespace: Namespace,
    pub(crate) policy: Option<SessionPolicy>,
    pub(crate) objects: PathBuf,
    pub(crate) uploads: PathBuf,
    pub(crate) partial: PathBuf,
}

enum OpenHandle {
    Read {
        file: FsFile,
        path: String,
    },
    Write {
        file: FsFile,
        temp: PathBuf,
        dest: PathBuf,
        path: String,
        bytes: u64,
    },
    Dir {
        entries: Vec<File>,
        sent: bool,
    },
}

/// One SFTP session.
pub(crate) struct Sftp {
    ctx: Arc<SessionContext>,
    handles: HashMap<String, OpenHandle>,
    next: u64,
}

pub(crate) struct Error(StatusReply);

impl From<Error> for StatusReply {
    fn from(e: Error) -> Self {
        e.0
    }
}

fn err(code: StatusCode, message: &str) -> Error {
    Error(StatusReply::new(code).with_message(message))
}

fn denied() -> Error {
    err(
        StatusCode::PermissionDenied,
        "access denied by the session policy",
    )
}

fn io_err(e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => err(StatusCode::NoSuchFile, "no such file or directory"),
        std::io::ErrorKind::PermissionDenied => {
            err(StatusCode::PermissionDenied, "permission denied")
        }
        std::io::ErrorKind::AlreadyExists => err(StatusCode::Failure, "already exists"),
        _ => err(StatusCode::Failure, "storage error"),
    }
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

static UPLOAD: AtomicU64 = AtomicU64::new(0);

impl Sftp {
    pub(crate) fn new(ctx: Arc<SessionContext>) -> Self {
        Self {
            ctx,
            handles: HashMap::new(),
            next: 0,
        }
    }

    fn resolve(&self, path: &str) -> Result<(String, Location), Error> {
        let visible = normalize(&self.ctx.home, path).map_err(|e| match e {
            PathError::Control => err(StatusCode::BadMessage, "path holds control characters"),
            PathError::TooLong => err(StatusCode::BadMessage, "path is too long"),
            PathError::NotMapped => err(StatusCode::NoSuchFile, "no such file or directory"),
        })?;
        let loc = self
            .ctx
            .namespace
            .locate(&visible)
            .map_err(|_| err(StatusCode::NoSuchFile, "no such file or directory"))?;
        Ok((visible, loc))
    }

    /// The file behind a bucket and key, refusing names that are not plain.
    fn storage(&self, bucket: &str, key: &str) -> Result<PathBuf, Error> {
        let bucket_dir = self.ctx.objects.join(bucket);
        if bucket.is_empty()
            || bucket.starts_with('.')
            || bucket.contains('/')
            || !bucket_dir.is_dir()
        {
            return Err(err(StatusCode::NoSuchFile, "no such bucket"));
        }
        let rel = Path::new(key);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(err(StatusCode::NoSuchFile, "no such file or directory"));
        }
        Ok(bucket_dir.join(rel))
    }

    fn allowed(&self, action: &str, bucket: &str, key: Option<&str>, prefix: Option<&str>) -> bool {
        let Some(policy) = &self.ctx.policy else {
            return true;
        };
        let resource = match key {
            Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        let context: Vec<(&str, &str)> = prefix.map(|p| vec![("s3:prefix", p)]).unwrap_or_default();
        let verdict = policy.evaluate(&Request {
            action,
            resource: &resource,
            context: &context,
        });
        if verdict != Verdict::Allow {
            info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, action, resource = %resource, ?verdict, "DENIED");
        }
        verdict == Verdict::Allow
    }

    fn require(&self, action: &str, bucket: &str, key: &str) -> Result<(), Error> {
        if self.allowed(action, bucket, Some(key), None) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    fn require_list(&self, bucket: &str, key: &str) -> Result<(), Error> {
        let prefix = if key.is_empty() {
            String::new()
        } else {
            format!("{key}/")
        };
        if self.allowed("s3:ListBucket", bucket, None, Some(&prefix)) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    fn handle(&mut self, h: OpenHandle) -> String {
        self.next += 1;
        let name = self.next.to_string();
        self.handles.insert(name.clone(), h);
        name
    }

    fn dir_attrs() -> FileAttributes {
        let mut a = FileAttributes {
            permissions: Some(0o755),
            ..Default::default()
        };
        a.set_dir(true);
        a
    }

    fn attrs_of(&self, path: &str) -> Result<FileAttributes, Error> {
        let (_, loc) = self.resolve(path)?;
        match loc {
            Location::Virtual { .. } => Ok(Self::dir_attrs()),
            Location::Object { bucket, key } => {
                let file = self.storage(&bucket, &key)?;
                let meta = fs::metadata(&file).map_err(|e| io_err(&e))?;
                if meta.is_dir() {
                    self.require_list(&bucket, &key)?;
                } else {
                    self.require("s3:GetObject", &bucket, &key)?;
                }
                Ok(FileAttributes::from(&meta))
            }
        }
    }

    /// Moves uploads that were never closed to `partial/` and reports them.
    pub(crate) fn abandon(&mut self) {
        for (_, h) in self.handles.drain() {
            if let OpenHandle::Write {
                temp, path, bytes, ..
            } = h
            {
                let aside = self.ctx.partial.join(temp.file_name().unwrap_or_default());
                let kept = fs::create_dir_all(&self.ctx.partial)
                    .and_then(|()| fs::rename(&temp, &aside))
                    .is_ok();
                warn!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %path, bytes, kept_at = %aside.display(), kept, "PARTIAL_UPLOAD");
            }
        }
    }
}

impl Drop for Sftp {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl russh_sftp::server::Handler for Sftp {
    type Error = Error;

    fn unimplemented(&self) -> Self::Error {
        err(StatusCode::OpUnsupported, "operation not supported")
    }

    async fn init(
        &mut self,
        _version: u32,
        _ext: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let (visible, _) = match self.resolve(&path) {
            Ok(v) => v,
            // A path that maps nowhere still has a canonical name.
            Err(_) => (
                normalize(&self.ctx.home, &path)
                    .map_err(|_| err(StatusCode::BadMessage, "bad path"))?,
                Location::Virtual { children: vec![] },
            ),
        };
        Ok(Name {
            id,
            files: vec![File::dummy(visible)],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        Ok(Attrs {
            id,
            attrs: self.attrs_of(&path)?,
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        Ok(Attrs {
            id,
            attrs: self.attrs_of(&path)?,
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        match self.handles.get(&handle) {
            Some(OpenHandle::Read { file, .. } | OpenHandle::Write { file, .. }) => {
                let meta = file.metadata().map_err(|e| io_err(&e))?;
                Ok(Attrs {
                    id,
                    attrs: FileAttributes::from(&meta),
                })
            }
            Some(OpenHandle::Dir { .. }) => Ok(Attrs {
                id,
                attrs: Self::dir_attrs(),
            }),
            None => Err(err(StatusCode::Failure, "invalid handle")),
        }
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let (_, loc) = self.resolve(&path)?;
        let entries = match loc {
            Location::Virtual { children } => children
                .into_iter()
                .map(|c| File::new(c, Self::dir_attrs()))
                .collect(),
            Location::Object { bucket, key } => {
                let dir = self.storage(&bucket, &key)?;
                self.require_list(&bucket, &key)?;
                let mut entries = Vec::new();
                for entry in fs::read_dir(&dir).map_err(|e| io_err(&e))? {
                    let entry = entry.map_err(|e| io_err(&e))?;
                    let Ok(name) = entry.file_name().into_string() else {
                        continue;
                    };
                    let Ok(meta) = entry.metadata() else { continue };
                    entries.push(File::new(name, FileAttributes::from(&meta)));
                }
                entries.sort_by(|a, b| a.filename.cmp(&b.filename));
                entries
            }
        };
        Ok(Handle {
            id,
            handle: self.handle(OpenHandle::Dir {
                entries,
                sent: false,
            }),
        })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        match self.handles.get_mut(&handle) {
            Some(OpenHandle::Dir { entries, sent }) if !*sent => {
                *sent = true;
                Ok(Name {
                    id,
                    files: std::mem::take(entries),
                })
            }
            Some(OpenHandle::Dir { .. }) => Err(err(StatusCode::Eof, "end of directory")),
            _ => Err(err(StatusCode::Failure, "invalid handle")),
        }
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let (visible, loc) = self.resolve(&filename)?;
        let Location::Object { bucket, key } = loc else {
            return Err(err(StatusCode::Failure, "is a directory"));
        };
        if key.is_empty() {
            return Err(err(StatusCode::Failure, "is a directory"));
        }
        let dest = self.storage(&bucket, &key)?;
        if pflags.contains(OpenFlags::WRITE)
            || pflags.contains(OpenFlags::CREATE)
            || pflags.contains(OpenFlags::APPEND)
        {
            self.require("s3:PutObject", &bucket, &key)?;
            if dest.is_dir() {
                return Err(err(StatusCode::Failure, "is a directory"));
            }
            if pflags.contains(OpenFlags::EXCLUDE) && dest.exists() {
                return Err(err(StatusCode::Failure, "already exists"));
            }
            if pflags.contains(OpenFlags::APPEND)
                || !pflags.contains(OpenFlags::TRUNCATE) && dest.exists()
            {
                // S3 objects are written whole: no appending or patching in place.
                return Err(err(
                    StatusCode::OpUnsupported,
                    "objects can only be written whole (open with truncate)",
                ));
            }
            match dest.parent() {
                Some(parent) if parent.is_dir() => {}
                _ => return Err(err(StatusCode::NoSuchFile, "no such directory")),
            }
            fs::create_dir_all(&self.ctx.uploads).map_err(|e| io_err(&e))?;
            let temp = self.ctx.uploads.join(format!(
                "{}-{}-{}",
                std::process::id(),
                self.ctx.id,
                UPLOAD.fetch_add(1, Ordering::Relaxed)
            ));
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(|e| io_err(&e))?;
            info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %visible, mode = "write", "OPEN");
            return Ok(Handle {
                id,
                handle: self.handle(OpenHandle::Write {
                    file,
                    temp,
                    dest,
                    path: visible,
                    bytes: 0,
                }),
            });
        }
        self.require("s3:GetObject", &bucket, &key)?;
        let file = FsFile::open(&dest).map_err(|e| io_err(&e))?;
        if file.metadata().map_err(|e| io_err(&e))?.is_dir() {
            return Err(err(StatusCode::Failure, "is a directory"));
        }
        info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %visible, mode = "read", "OPEN");
        Ok(Handle {
            id,
            handle: self.handle(OpenHandle::Read {
                file,
                path: visible,
            }),
        })
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let Some(OpenHandle::Read { file, .. }) = self.handles.get(&handle) else {
            return Err(err(StatusCode::Failure, "invalid handle"));
        };
        let mut buf = vec![0u8; len.min(MAX_READ) as usize];
        let n = file.read_at(&mut buf, offset).map_err(|e| io_err(&e))?;
        if n == 0 {
            return Err(err(StatusCode::Eof, "end of file"));
        }
        buf.truncate(n);
        Ok(Data { id, data: buf })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let Some(OpenHandle::Write { file, bytes, .. }) = self.handles.get_mut(&handle) else {
            return Err(err(StatusCode::Failure, "invalid handle"));
        };
        file.write_all_at(&data, offset).map_err(|e| io_err(&e))?;
        *bytes += data.len() as u64;
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(OpenHandle::Write {
                file,
                temp,
                dest,
                path,
                bytes,
            }) => {
                let size = file.metadata().map(|m| m.len()).unwrap_or(bytes);
                drop(file);
                // The name appears only now, complete: rename is atomic on one filesystem.
                fs::rename(&temp, &dest).map_err(|e| io_err(&e))?;
                info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %path, bytes = size, mode = "write", "CLOSE");
                Ok(ok(id))
            }
            Some(OpenHandle::Read { file, path }) => {
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %path, bytes = size, mode = "read", "CLOSE");
                Ok(ok(id))
            }
            Some(OpenHandle::Dir { .. }) => Ok(ok(id)),
            None => Err(err(StatusCode::Failure, "invalid handle")),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let (_, loc) = self.resolve(&filename)?;
        let Location::Object { bucket, key } = loc else {
            return Err(denied());
        };
        let path = self.storage(&bucket, &key)?;
        self.require("s3:DeleteObject", &bucket, &key)?;
        if path.is_dir() {
            return Err(err(StatusCode::Failure, "is a directory (use rmdir)"));
        }
        fs::remove_file(&path).map_err(|e| io_err(&e))?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let (_, loc) = self.resolve(&path)?;
        let Location::Object { bucket, key } = loc else {
            return Err(err(StatusCode::Failure, "already exists"));
        };
        if key.is_empty() {
            return Err(err(StatusCode::Failure, "already exists"));
        }
        let dir = self.storage(&bucket, &key)?;
        self.require("s3:PutObject", &bucket, &format!("{key}/"))?;
        fs::create_dir(&dir).map_err(|e| io_err(&e))?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let (_, loc) = self.resolve(&path)?;
        let Location::Object { bucket, key } = loc else {
            return Err(denied());
        };
        if key.is_empty() {
            return Err(denied());
        }
        let dir = self.storage(&bucket, &key)?;
        self.require("s3:DeleteObject", &bucket, &format!("{key}/"))?;
        if !dir.is_dir() {
            return Err(err(StatusCode::NoSuchFile, "no such directory"));
        }
        if fs::read_dir(&dir).map_err(|e| io_err(&e))?.next().is_some() {
            return Err(err(StatusCode::Failure, "directory not empty"));
        }
        fs::remove_dir(&dir).map_err(|e| io_err(&e))?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let (_, from) = self.resolve(&oldpath)?;
        let (_, to) = self.resolve(&newpath)?;
        let (
            Location::Object {
                bucket: fb,
                key: fk,
            },
            Location::Object {
                bucket: tb,
                key: tk,
            },
        ) = (from, to)
        else {
            return Err(denied());
        };
        let (src, dst) = (self.storage(&fb, &fk)?, self.storage(&tb, &tk)?);
        // S3 has no rename: it is a copy and a delete.
        self.require("s3:GetObject", &fb, &fk)?;
        self.require("s3:PutObject", &tb, &tk)?;
        self.require("s3:DeleteObject", &fb, &fk)?;
        if src.is_dir() {
            return Err(err(
                StatusCode::OpUnsupported,
                "renaming directories is not supported",
            ));
        }
        if dst.exists() {
            return Err(err(StatusCode::Failure, "target already exists"));
        }
        fs::rename(&src, &dst).map_err(|e| io_err(&e))?;
        Ok(ok(id))
    }

    async fn setstat(
        &mut self,
        _id: u32,
        _path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Err(err(
            StatusCode::OpUnsupported,
            "chmod, chown and times are not supported on object storage",
        ))
    }

    async fn fsetstat(
        &mut self,
        _id: u32,
        _handle: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Err(err(
            StatusCode::OpUnsupported,
            "chmod, chown and times are not supported on object storage",
        ))
    }

    async fn symlink(&mut self, _id: u32, _l: String, _t: String) -> Result<Status, Self::Error> {
        Err(err(
            StatusCode::OpUnsupported,
            "symbolic links are not supported on object storage",
        ))
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> Result<Name, Self::Error> {
        Err(err(
            StatusCode::OpUnsupported,
            "symbolic links are not supported on object storage",
        ))
    }
}
