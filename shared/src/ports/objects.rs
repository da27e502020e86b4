//! Object storage as the SFTP front door sees it: buckets of `/`-separated keys, where a folder is
//! either a real directory (the local data folder) or implied by keys below it and a `folder/`
//! marker object (S3). Stores provide these primitives only; what must exist before an operation
//! and what is refused is decided once, by the caller, so every store behaves alike.
//!
//! Keys are relative (no leading or trailing `/`); the empty key is the bucket's root.

use std::future::Future;
use std::path::Path;
use std::time::SystemTime;

use super::BoxError;

/// What a file's listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// What a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File(ObjectMeta),
    Dir,
    Missing,
}

/// One name in a folder listing (`kind` is never [`Kind::Missing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
}

/// Why a store could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("no such file or directory")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("directory not empty")]
    NotEmpty,
    /// A key this store cannot hold (a `..` segment, an empty segment).
    #[error("the name cannot be stored")]
    BadKey,
    #[error("{0}")]
    Unsupported(&'static str),
    /// The storage itself failed (disk, network, credentials…).
    #[error("{what} failed")]
    Unavailable {
        what: &'static str,
        #[source]
        source: BoxError,
    },
}

/// Reads one object, at any offset. Sequential reads should be cheap: the S3 reader keeps one
/// ranged GET streaming and only starts another when the offset jumps.
pub trait ObjectReader: Send + Sync + 'static {
    /// Up to `len` bytes from `offset`; fewer only at the end of the object, none past it.
    fn read_at(
        &mut self,
        offset: u64,
        len: usize,
    ) -> impl Future<Output = Result<Vec<u8>, ObjectError>> + Send;
}

/// A folder's listing, read a page at a time: however large the folder, a listing holds one
/// page (the data folder: an open directory; S3: one ListObjectsV2 answer of at most 1,000 keys).
pub trait ObjectLister: Send + Sync + 'static {
    /// Up to `max` more names (`max` at least 1); an empty page means the listing is done.
    fn next_page(
        &mut self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Entry>, ObjectError>> + Send;
}

/// A bucket store.
pub trait ObjectStore: Send + Sync + 'static {
    type Reader: ObjectReader;
    type Lister: ObjectLister;

    /// What `key` is; the empty key is the bucket itself ([`ObjectError::NoSuchBucket`] if it
    /// does not exist).
    fn stat(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Kind, ObjectError>> + Send;

    /// Starts listing the names directly inside folder `dir`, in the store's order (S3: key
    /// order; the data folder: the directory's own order, as OpenSSH's `sftp-server` sends it).
    fn list_pages(
        &self,
        bucket: &str,
        dir: &str,
    ) -> impl Future<Output = Result<Self::Lister, ObjectError>> + Send;

    /// Every name directly inside folder `dir`, sorted: for small folders and tests (a listing
    /// a client asked for goes page by page through [`ObjectStore::list_pages`]).
    fn list(
        &self,
        bucket: &str,
        dir: &str,
    ) -> impl Future<Output = Result<Vec<Entry>, ObjectError>> + Send {
        async move {
            let mut lister = self.list_pages(bucket, dir).await?;
            let mut entries = Vec::new();
            loop {
                let page = lister.next_page(1_000).await?;
                if page.is_empty() {
                    break;
                }
                entries.extend(page);
            }
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(entries)
        }
    }

    /// Whether folder `dir` holds anything (one page of one name, whatever its size).
    fn is_empty_dir(
        &self,
        bucket: &str,
        dir: &str,
    ) -> impl Future<Output = Result<bool, ObjectError>> + Send {
        async move {
            let mut lister = self.list_pages(bucket, dir).await?;
            Ok(lister.next_page(1).await?.is_empty())
        }
    }

    /// Opens an object for reading.
    fn open(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(Self::Reader, ObjectMeta), ObjectError>> + Send;

    /// Stores the finished upload in `spool` under `key` and consumes the spool file; returns
    /// the stored size. The object appears whole or not at all.
    fn put_file(
        &self,
        bucket: &str,
        key: &str,
        spool: &Path,
    ) -> impl Future<Output = Result<u64, ObjectError>> + Send;

    /// Deletes an object.
    fn delete(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;

    /// Creates one folder (its parent exists).
    fn make_dir(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;

    /// Makes sure a folder exists, with its parents (a home directory at login).
    fn ensure_dir(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;

    /// Removes an empty folder.
    fn remove_dir(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;

    /// Moves an object (S3: copy, then delete).
    fn rename(
        &self,
        bucket: &str,
        from: &str,
        to_bucket: &str,
        to: &str,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;
}

/// The parent folder of a key (`""` for a key at the bucket's root).
pub fn parent_key(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(parent, _)| parent)
}
