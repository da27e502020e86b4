//! The SFTP side of `ferry up`: every operation is normalised, mapped to a bucket and key,
//! authorised against the session policy as the S3 calls Transfer would make, and then served
//! from object storage (the data folder's files, or S3 with `--aws`). The rules (what must exist,
//! what is refused) live here, once; stores only provide primitives. Uploads are spooled to a
//! private file and stored under their name only when the client closes them; an upload still
//! open when the session ends, or one the store refused, is moved aside to `partial/` and
//! reported.

use std::collections::HashMap;
use std::fs::{self, File as FsFile};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_core::domain::access::{Request, SessionPolicy, Verdict};
use ferry_core::ports::{
    Kind, ObjectError, ObjectLister, ObjectMeta, ObjectReader, ObjectStore, parent_key,
};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tracing::{info, warn};

use ferry_core::domain::sftp_path::{Location, Namespace, PathError, normalize};

/// Largest read served at once (OpenSSH asks for 32 KiB or 256 KiB).
const MAX_READ: u32 = 256 * 1024;

/// Names per READDIR reply, as OpenSSH's `sftp-server` sends: its `sftp` client refuses any
/// reply over 256 KiB, which a whole folder of a few thousand names exceeds.
const NAMES_PER_READDIR: usize = 100;

/// What a SETSTAT or FSETSTAT (`chmod`, `chown`, times) gets: objects have no modes or owners,
/// and their times are the store's. Transfer Family's `SetStatOption`: `ENABLE_NO_OP` is
/// `ignore`, its default is `refuse`. `ferry up` ignores by default, since clients that set times
/// after an upload (rclone, WinSCP) report a refused SETSTAT as a failed copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SetStat {
    /// Answer "unsupported".
    Refuse,
    /// Answer OK, change nothing, and log `SETSTAT_IGNORED`.
    #[default]
    Ignore,
}

/// What a session may touch and where its uploads are spooled.
pub(crate) struct SessionContext {
    pub(crate) id: u64,
    pub(crate) username: String,
    pub(crate) home: String,
    pub(crate) namespace: Namespace,
    /// Every operation is authorised against it: a session without one is never started.
    pub(crate) policy: SessionPolicy,
    pub(crate) uploads: PathBuf,
    pub(crate) partial: PathBuf,
    /// Runs the upload processor on a stored upload (bucket, key), in the background.
    pub(crate) on_upload: Option<UploadHook>,
    pub(crate) limits: SessionLimits,
    pub(crate) setstat: SetStat,
}

/// What one SFTP session may hold (see the front door's `Bounds`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLimits {
    pub(crate) max_handles: usize,
    /// No write may end past this many bytes.
    pub(crate) max_file_bytes: u64,
    /// No write may start further than this past the end of what the file holds: a write at
    /// offset 2^40 would otherwise ask for a 1 TiB file (sparse on disk, but then stored,
    /// hashed and copied in full).
    pub(crate) max_write_gap_bytes: u64,
}

/// What `ferry up` does with every completed upload.
pub(crate) type UploadHook = Arc<dyn Fn(String, String) + Send + Sync>;

enum OpenHandle<R, L> {
    Read {
        reader: R,
        meta: ObjectMeta,
        path: String,
        bytes: u64,
    },
    Write {
        file: FsFile,
        temp: PathBuf,
        bucket: String,
        key: String,
        path: String,
        bytes: u64,
        /// The end of the furthest write so far.
        end: u64,
    },
    /// A listing handed out a page per READDIR.
    Dir(Listing<L>),
}

/// What an open directory hands out.
enum Listing<L> {
    /// The logical root of a user with home mappings: a handful of names, known at once.
    Virtual(std::vec::IntoIter<File>),
    /// A folder in a store, read a page per READDIR (never whole: folders can be huge).
    Store(L),
}

/// One SFTP session.
pub(crate) struct Sftp<O: ObjectStore> {
    ctx: Arc<SessionContext>,
    store: Arc<O>,
    handles: HashMap<String, OpenHandle<O::Reader, O::Lister>>,
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

fn no_such_file() -> Error {
    err(StatusCode::NoSuchFile, "no such file or directory")
}

/// The client's view of a store failure; the cause goes to the log, not to the client.
fn store_err(e: &ObjectError) -> Error {
    match e {
        ObjectError::NotFound | ObjectError::BadKey => no_such_file(),
        ObjectError::NoSuchBucket => err(StatusCode::NoSuchFile, "no such bucket"),
        ObjectError::AlreadyExists => err(StatusCode::Failure, "already exists"),
        ObjectError::NotEmpty => err(StatusCode::Failure, "directory not empty"),
        ObjectError::Unsupported(what) => err(StatusCode::OpUnsupported, what),
        ObjectError::Unavailable { .. } => {
            warn!(target: "ferry::session", error = %ferry_core::ports::error_chain(e), "storage failed");
            err(StatusCode::Failure, "storage error")
        }
    }
}

fn spool_err(e: &std::io::Error) -> Error {
    warn!(target: "ferry::session", error = %e, "spool file failed");
    err(StatusCode::Failure, "storage error")
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn dir_attrs() -> FileAttributes {
    let mut a = FileAttributes {
        permissions: Some(0o755),
        ..Default::default()
    };
    a.set_dir(true);
    a
}

fn file_attrs(meta: &ObjectMeta) -> FileAttributes {
    let mtime = meta
        .modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u32::try_from(d.as_secs()).ok());
    let mut a = FileAttributes {
        size: Some(meta.size),
        permissions: Some(0o644),
        mtime,
        atime: mtime,
        ..Default::default()
    };
    a.set_regular(true);
    a
}

fn whole_only() -> Error {
    // S3 objects are written whole: no appending or patching in place.
    err(
        StatusCode::OpUnsupported,
        "objects can only be written whole (open with truncate)",
    )
}

static UPLOAD: AtomicU64 = AtomicU64::new(0);

impl<O: ObjectStore> Sftp<O> {
    pub(crate) fn new(ctx: Arc<SessionContext>, store: Arc<O>) -> Self {
        Self {
            ctx,
            store,
            handles: HashMap::new(),
            next: 0,
        }
    }

    fn resolve(&self, path: &str) -> Result<(String, Location), Error> {
        let visible = normalize(&self.ctx.home, path).map_err(|e| match e {
            PathError::Control => err(StatusCode::BadMessage, "path holds control characters"),
            PathError::TooLong => err(StatusCode::BadMessage, "path is too long"),
            PathError::NotMapped => no_such_file(),
        })?;
        let loc = self
            .ctx
            .namespace
            .locate(&visible)
            .map_err(|_| no_such_file())?;
        Ok((visible, loc))
    }

    /// The bucket and key a path names; virtual folders are refused with `virtual_err`.
    fn object(
        &self,
        path: &str,
        virtual_err: fn() -> Error,
    ) -> Result<(String, String, String), Error> {
        match self.resolve(path)? {
            (visible, Location::Object { bucket, key }) => Ok((visible, bucket, key)),
            (_, Location::Virtual { .. }) => Err(virtual_err()),
        }
    }

    async fn kind(&self, bucket: &str, key: &str) -> Result<Kind, Error> {
        self.store
            .stat(bucket, key)
            .await
            .map_err(|e| store_err(&e))
    }

    /// Refuses unless `key`'s parent folder exists (the bucket's root always does).
    async fn require_parent(&self, bucket: &str, key: &str) -> Result<(), Error> {
        match self.kind(bucket, parent_key(key)).await? {
            Kind::Dir => Ok(()),
            _ => Err(err(StatusCode::NoSuchFile, "no such directory")),
        }
    }

    fn allowed(&self, action: &str, bucket: &str, key: Option<&str>, prefix: Option<&str>) -> bool {
        let policy = &self.ctx.policy;
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

    fn list_prefix(key: &str) -> String {
        if key.is_empty() {
            String::new()
        } else {
            format!("{key}/")
        }
    }

    fn may_list(&self, bucket: &str, key: &str) -> bool {
        self.allowed("s3:ListBucket", bucket, None, Some(&Self::list_prefix(key)))
    }

    fn require_list(&self, bucket: &str, key: &str) -> Result<(), Error> {
        if self.may_list(bucket, key) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    /// Refuses a new handle when the session holds as many as it may.
    fn room_for_a_handle(&self) -> Result<(), Error> {
        if self.handles.len() >= self.ctx.limits.max_handles {
            info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, limit = self.ctx.limits.max_handles, "HANDLE_REFUSED");
            return Err(err(StatusCode::Failure, "too many open handles"));
        }
        Ok(())
    }

    fn handle(&mut self, h: OpenHandle<O::Reader, O::Lister>) -> String {
        self.next += 1;
        let name = self.next.to_string();
        self.handles.insert(name.clone(), h);
        name
    }

    async fn attrs_of(&self, path: &str) -> Result<FileAttributes, Error> {
        let (_, loc) = self.resolve(path)?;
        let Location::Object { bucket, key } = loc else {
            return Ok(dir_attrs());
        };
        // Asked before storage is touched, so a refused path reveals nothing, not even whether
        // it exists.
        let (may_read, may_list) = (
            !key.is_empty() && self.allowed("s3:GetObject", &bucket, Some(&key), None),
            self.may_list(&bucket, &key),
        );
        if !may_read && !may_list {
            return Err(denied());
        }
        match self.kind(&bucket, &key).await? {
            Kind::File(meta) if may_read => Ok(file_attrs(&meta)),
            Kind::Dir if may_list => Ok(dir_attrs()),
            Kind::Missing => Err(no_such_file()),
            _ => Err(denied()),
        }
    }

    /// The answer to SETSTAT and FSETSTAT on `path`, as the session's [`SetStat`] says.
    fn set_stat(&self, id: u32, path: Option<&str>) -> Result<Status, Error> {
        match self.ctx.setstat {
            SetStat::Refuse => Err(err(
                StatusCode::OpUnsupported,
                "chmod, chown and times are not supported on object storage",
            )),
            SetStat::Ignore => {
                info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path, "SETSTAT_IGNORED");
                Ok(ok(id))
            }
        }
    }

    /// Moves an upload's spool file to `partial/` and reports it.
    fn set_aside(&self, temp: &std::path::Path, path: &str, bytes: u64, why: &'static str) {
        let aside = self.ctx.partial.join(temp.file_name().unwrap_or_default());
        let kept = fs::create_dir_all(&self.ctx.partial)
            .and_then(|()| fs::rename(temp, &aside))
            .is_ok();
        warn!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %path, bytes, kept_at = %aside.display(), kept, why, "PARTIAL_UPLOAD");
    }

    /// Moves uploads that were never closed to `partial/` and reports them.
    pub(crate) fn abandon(&mut self) {
        let handles: Vec<_> = self.handles.drain().collect();
        for (_, h) in handles {
            if let OpenHandle::Write {
                temp, path, bytes, ..
            } = h
            {
                self.set_aside(&temp, &path, bytes, "session ended before close");
            }
        }
    }
}

impl<O: ObjectStore> Drop for Sftp<O> {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl<O: ObjectStore> russh_sftp::server::Handler for Sftp<O> {
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
            attrs: self.attrs_of(&path).await?,
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        Ok(Attrs {
            id,
            attrs: self.attrs_of(&path).await?,
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let attrs = match self.handles.get(&handle) {
            Some(OpenHandle::Read { meta, .. }) => file_attrs(meta),
            Some(OpenHandle::Write { file, .. }) => {
                let meta = file.metadata().map_err(|e| spool_err(&e))?;
                file_attrs(&ObjectMeta {
                    size: meta.len(),
                    modified: Some(SystemTime::now()),
                })
            }
            Some(OpenHandle::Dir(_)) => dir_attrs(),
            None => return Err(err(StatusCode::Failure, "invalid handle")),
        };
        Ok(Attrs { id, attrs })
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        self.room_for_a_handle()?;
        let (_, loc) = self.resolve(&path)?;
        let listing = match loc {
            Location::Virtual { children } => Listing::Virtual(
                children
                    .into_iter()
                    .map(|c| File::new(c, dir_attrs()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
            Location::Object { bucket, key } => {
                self.require_list(&bucket, &key)?;
                match self.kind(&bucket, &key).await? {
                    Kind::Dir => {}
                    Kind::File(_) => return Err(err(StatusCode::Failure, "not a directory")),
                    Kind::Missing => return Err(no_such_file()),
                }
                Listing::Store(
                    self.store
                        .list_pages(&bucket, &key)
                        .await
                        .map_err(|e| store_err(&e))?,
                )
            }
        };
        Ok(Handle {
            id,
            handle: self.handle(OpenHandle::Dir(listing)),
        })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let Some(OpenHandle::Dir(listing)) = self.handles.get_mut(&handle) else {
            return Err(err(StatusCode::Failure, "invalid handle"));
        };
        let files: Vec<File> = match listing {
            Listing::Virtual(names) => names.by_ref().take(NAMES_PER_READDIR).collect(),
            Listing::Store(lister) => lister
                .next_page(NAMES_PER_READDIR)
                .await
                .map_err(|e| store_err(&e))?
                .into_iter()
                .map(|e| {
                    let attrs = match e.kind {
                        Kind::File(meta) => file_attrs(&meta),
                        _ => dir_attrs(),
                    };
                    File::new(e.name, attrs)
                })
                .collect(),
        };
        if files.is_empty() {
            return Err(err(StatusCode::Eof, "end of directory"));
        }
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        self.room_for_a_handle()?;
        let is_dir = || err(StatusCode::Failure, "is a directory");
        let (visible, bucket, key) = self.object(&filename, is_dir)?;
        if key.is_empty() {
            return Err(is_dir());
        }
        if pflags.contains(OpenFlags::WRITE)
            || pflags.contains(OpenFlags::CREATE)
            || pflags.contains(OpenFlags::APPEND)
        {
            self.require("s3:PutObject", &bucket, &key)?;
            match self.kind(&bucket, &key).await? {
                Kind::Dir => return Err(is_dir()),
                Kind::File(_) if pflags.contains(OpenFlags::EXCLUDE) => {
                    return Err(err(StatusCode::Failure, "already exists"));
                }
                Kind::File(_) if !pflags.contains(OpenFlags::TRUNCATE) => {
                    return Err(whole_only());
                }
                _ => {}
            }
            if pflags.contains(OpenFlags::APPEND) {
                return Err(whole_only());
            }
            self.require_parent(&bucket, &key).await?;
            fs::create_dir_all(&self.ctx.uploads).map_err(|e| spool_err(&e))?;
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
                .map_err(|e| spool_err(&e))?;
            info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %visible, mode = "write", "OPEN");
            return Ok(Handle {
                id,
                handle: self.handle(OpenHandle::Write {
                    file,
                    temp,
                    bucket,
                    key,
                    path: visible,
                    bytes: 0,
                    end: 0,
                }),
            });
        }
        self.require("s3:GetObject", &bucket, &key)?;
        let (reader, meta) = match self.store.open(&bucket, &key).await {
            Ok(opened) => opened,
            // A folder is not an object: say so rather than "no such file".
            Err(ObjectError::NotFound) if self.kind(&bucket, &key).await? == Kind::Dir => {
                return Err(is_dir());
            }
            Err(e) => return Err(store_err(&e)),
        };
        info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %visible, mode = "read", "OPEN");
        Ok(Handle {
            id,
            handle: self.handle(OpenHandle::Read {
                reader,
                meta,
                path: visible,
                bytes: 0,
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
        let Some(OpenHandle::Read { reader, bytes, .. }) = self.handles.get_mut(&handle) else {
            return Err(err(StatusCode::Failure, "invalid handle"));
        };
        let data = reader
            .read_at(offset, len.min(MAX_READ) as usize)
            .await
            .map_err(|e| store_err(&e))?;
        if data.is_empty() {
            return Err(err(StatusCode::Eof, "end of file"));
        }
        *bytes += data.len() as u64;
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let limits = self.ctx.limits;
        let Some(OpenHandle::Write {
            file, bytes, end, ..
        }) = self.handles.get_mut(&handle)
        else {
            return Err(err(StatusCode::Failure, "invalid handle"));
        };
        let len = data.len() as u64;
        let write_end = offset
            .checked_add(len)
            .filter(|e| *e <= limits.max_file_bytes)
            .ok_or_else(|| err(StatusCode::Failure, "the file would be larger than allowed"))?;
        if offset > end.saturating_add(limits.max_write_gap_bytes) {
            return Err(err(
                StatusCode::Failure,
                "the write would leave a larger gap than allowed",
            ));
        }
        file.write_all_at(&data, offset)
            .map_err(|e| spool_err(&e))?;
        *bytes += len;
        *end = (*end).max(write_end);
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(OpenHandle::Write {
                file,
                temp,
                bucket,
                key,
                path,
                bytes,
                ..
            }) => {
                drop(file);
                // The name appears only now, complete: a rename on disk, a whole PUT in S3.
                match self.store.put_file(&bucket, &key, &temp).await {
                    Ok(size) => {
                        info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %path, bytes = size, mode = "write", "CLOSE");
                        if let Some(hook) = &self.ctx.on_upload {
                            hook(bucket, key);
                        }
                        Ok(ok(id))
                    }
                    Err(e) => {
                        // Nothing the client sent is lost: the spool is kept and reported.
                        let reply = store_err(&e);
                        self.set_aside(&temp, &path, bytes, "storing the upload failed");
                        Err(reply)
                    }
                }
            }
            Some(OpenHandle::Read { path, bytes, .. }) => {
                info!(target: "ferry::session", session = self.ctx.id, user = %self.ctx.username, path = %path, bytes, mode = "read", "CLOSE");
                Ok(ok(id))
            }
            Some(OpenHandle::Dir(_)) => Ok(ok(id)),
            None => Err(err(StatusCode::Failure, "invalid handle")),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let (_, bucket, key) = self.object(&filename, denied)?;
        if key.is_empty() {
            return Err(denied());
        }
        self.require("s3:DeleteObject", &bucket, &key)?;
        match self.kind(&bucket, &key).await? {
            Kind::File(_) => {}
            Kind::Dir => return Err(err(StatusCode::Failure, "is a directory (use rmdir)")),
            Kind::Missing => return Err(no_such_file()),
        }
        self.store
            .delete(&bucket, &key)
            .await
            .map_err(|e| store_err(&e))?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let exists = || err(StatusCode::Failure, "already exists");
        let (_, bucket, key) = self.object(&path, exists)?;
        if key.is_empty() {
            return Err(exists());
        }
        self.require("s3:PutObject", &bucket, &format!("{key}/"))?;
        if self.kind(&bucket, &key).await? != Kind::Missing {
            return Err(exists());
        }
        self.require_parent(&bucket, &key).await?;
        self.store
            .make_dir(&bucket, &key)
            .await
            .map_err(|e| store_err(&e))?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let (_, bucket, key) = self.object(&path, denied)?;
        if key.is_empty() {
            return Err(denied());
        }
        self.require("s3:DeleteObject", &bucket, &format!("{key}/"))?;
        match self.kind(&bucket, &key).await? {
            Kind::Dir => {}
            Kind::File(_) => return Err(err(StatusCode::Failure, "not a directory")),
            Kind::Missing => return Err(err(StatusCode::NoSuchFile, "no such directory")),
        }
        let empty = self
            .store
            .is_empty_dir(&bucket, &key)
            .await
            .map_err(|e| store_err(&e))?;
        if !empty {
            return Err(err(StatusCode::Failure, "directory not empty"));
        }
        self.store
            .remove_dir(&bucket, &key)
            .await
            .map_err(|e| store_err(&e))?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let (_, fb, fk) = self.object(&oldpath, denied)?;
        let (_, tb, tk) = self.object(&newpath, denied)?;
        if fk.is_empty() || tk.is_empty() {
            return Err(denied());
        }
        // S3 has no rename: it is a copy and a delete.
        self.require("s3:GetObject", &fb, &fk)?;
        self.require("s3:PutObject", &tb, &tk)?;
        self.require("s3:DeleteObject", &fb, &fk)?;
        match self.kind(&fb, &fk).await? {
            Kind::File(_) => {}
            Kind::Dir => {
                return Err(err(
                    StatusCode::OpUnsupported,
                    "renaming directories is not supported",
                ));
            }
            Kind::Missing => return Err(no_such_file()),
        }
        if self.kind(&tb, &tk).await? != Kind::Missing {
            return Err(err(StatusCode::Failure, "target already exists"));
        }
        self.require_parent(&tb, &tk).await?;
        self.store
            .rename(&fb, &fk, &tb, &tk)
            .await
            .map_err(|e| store_err(&e))?;
        // On S3 the copy is an `ObjectCreated:Copy`, which the upload processor judges under
        // the new name: `tool.bin` renamed to `invoice.pdf` must be looked at again.
        if let Some(hook) = &self.ctx.on_upload {
            hook(tb, tk);
        }
        Ok(ok(id))
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        // Normalised first, so the log never carries a client's raw (control-laden) path.
        let (visible, _) = self.resolve(&path)?;
        self.set_stat(id, Some(&visible))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let path = match self.handles.get(&handle) {
            Some(OpenHandle::Read { path, .. } | OpenHandle::Write { path, .. }) => {
                Some(path.clone())
            }
            Some(OpenHandle::Dir(_)) => None,
            None => return Err(err(StatusCode::Failure, "invalid handle")),
        };
        self.set_stat(id, path.as_deref())
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
