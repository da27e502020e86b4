//! Object storage in the data folder: buckets are directories under `objects/`, keys are files
//! and folders below them.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use crate::ports::{Entry, Kind, ObjectError, ObjectLister, ObjectMeta, ObjectReader, ObjectStore};

/// Buckets as directories: `<root>/<bucket>/<key>`. Folders are real directories, so an empty
/// folder exists without a marker; uploads are renamed into place, which is atomic.
#[derive(Debug, Clone)]
pub struct FileObjects {
    root: PathBuf,
}

fn disk(e: std::io::Error) -> ObjectError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => ObjectError::NotFound,
        K::AlreadyExists => ObjectError::AlreadyExists,
        K::DirectoryNotEmpty => ObjectError::NotEmpty,
        _ => ObjectError::Unavailable {
            what: "the data folder",
            source: Box::new(e),
        },
    }
}

impl FileObjects {
    /// Buckets are the directories directly under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The path of a key, refusing bucket names and keys that are not plain.
    pub fn path(&self, bucket: &str, key: &str) -> Result<PathBuf, ObjectError> {
        let bucket_dir = self.root.join(bucket);
        if bucket.is_empty()
            || bucket.starts_with('.')
            || bucket.contains('/')
            || !bucket_dir.is_dir()
        {
            return Err(ObjectError::NoSuchBucket);
        }
        if key.is_empty() {
            return Ok(bucket_dir);
        }
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
            || !Path::new(key)
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(ObjectError::BadKey);
        }
        Ok(bucket_dir.join(key))
    }
}

fn meta_of(m: &fs::Metadata) -> ObjectMeta {
    ObjectMeta {
        size: m.len(),
        modified: m.modified().ok(),
    }
}

/// An open local file.
#[derive(Debug)]
pub struct FileReader(fs::File);

impl ObjectReader for FileReader {
    async fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, ObjectError> {
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let n = self
                .0
                .read_at(&mut buf[filled..], offset + filled as u64)
                .map_err(disk)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

/// An open directory, read as the client asks: a folder of any size costs one directory stream
/// and a page of names, never the whole listing (unsorted, as OpenSSH's `sftp-server` sends it;
/// clients sort what they show).
#[derive(Debug)]
pub struct DirLister(fs::ReadDir);

impl ObjectLister for DirLister {
    async fn next_page(&mut self, max: usize) -> Result<Vec<Entry>, ObjectError> {
        let mut page = Vec::new();
        while page.len() < max.max(1) {
            let Some(entry) = self.0.next() else { break };
            let entry = entry.map_err(disk)?;
            // Names that are not UTF-8 cannot be S3 keys, and a file deleted since the
            // directory was read is simply gone.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            let kind = if meta.is_dir() {
                Kind::Dir
            } else if meta.is_file() {
                Kind::File(meta_of(&meta))
            } else {
                continue;
            };
            page.push(Entry { name, kind });
        }
        Ok(page)
    }
}

// Local disk calls are short and the SFTP session is sequential anyway: they run inline.
impl ObjectStore for FileObjects {
    type Reader = FileReader;
    type Lister = DirLister;

    async fn stat(&self, bucket: &str, key: &str) -> Result<Kind, ObjectError> {
        let path = self.path(bucket, key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => Ok(Kind::Dir),
            Ok(m) if m.is_file() => Ok(Kind::File(meta_of(&m))),
            // Sockets, devices and the like are not objects.
            Ok(_) => Ok(Kind::Missing),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Kind::Missing),
            // A file where a folder was expected on the way (`file.txt/x`).
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(Kind::Missing),
            Err(e) => Err(disk(e)),
        }
    }

    async fn list_pages(&self, bucket: &str, dir: &str) -> Result<DirLister, ObjectError> {
        let path = self.path(bucket, dir)?;
        Ok(DirLister(fs::read_dir(&path).map_err(disk)?))
    }

    async fn open(&self, bucket: &str, key: &str) -> Result<(FileReader, ObjectMeta), ObjectError> {
        let file = fs::File::open(self.path(bucket, key)?).map_err(disk)?;
        let meta = file.metadata().map_err(disk)?;
        if !meta.is_file() {
            return Err(ObjectError::NotFound);
        }
        Ok((FileReader(file), meta_of(&meta)))
    }

    async fn put_file(&self, bucket: &str, key: &str, spool: &Path) -> Result<u64, ObjectError> {
        let dest = self.path(bucket, key)?;
        let size = fs::metadata(spool).map_err(disk)?.len();
        match fs::rename(spool, &dest) {
            Ok(()) => Ok(size),
            // Spool and objects on different filesystems: copy beside the target, then rename.
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                let name = dest.file_name().unwrap_or_default().to_string_lossy();
                let beside = dest.with_file_name(format!(".{name}.ferry-part"));
                fs::copy(spool, &beside).map_err(disk)?;
                fs::rename(&beside, &dest).map_err(disk)?;
                fs::remove_file(spool).map_err(disk)?;
                Ok(size)
            }
            Err(e) => Err(disk(e)),
        }
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        fs::remove_file(self.path(bucket, key)?).map_err(disk)
    }

    async fn make_dir(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        fs::create_dir(self.path(bucket, key)?).map_err(disk)
    }

    async fn ensure_dir(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        fs::create_dir_all(self.path(bucket, key)?).map_err(disk)
    }

    async fn remove_dir(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        fs::remove_dir(self.path(bucket, key)?).map_err(disk)
    }

    async fn rename(
        &self,
        bucket: &str,
        from: &str,
        to_bucket: &str,
        to: &str,
    ) -> Result<(), ObjectError> {
        let (src, dst) = (self.path(bucket, from)?, self.path(to_bucket, to)?);
        fs::rename(src, dst).map_err(disk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::parent_key;

    fn store() -> (tempfile::TempDir, FileObjects) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("b")).unwrap();
        let store = FileObjects::new(dir.path());
        (dir, store)
    }

    #[tokio::test]
    async fn folders_files_and_missing_keys_are_told_apart() {
        let (dir, s) = store();
        fs::create_dir(dir.path().join("b/d")).unwrap();
        fs::write(dir.path().join("b/d/f.txt"), "hello").unwrap();
        assert_eq!(s.stat("b", "").await.unwrap(), Kind::Dir);
        assert_eq!(s.stat("b", "d").await.unwrap(), Kind::Dir);
        assert!(matches!(s.stat("b", "d/f.txt").await.unwrap(), Kind::File(m) if m.size == 5));
        assert_eq!(s.stat("b", "d/nope").await.unwrap(), Kind::Missing);
        assert_eq!(s.stat("b", "d/f.txt/x").await.unwrap(), Kind::Missing);
        assert!(matches!(
            s.stat("nobucket", "").await,
            Err(ObjectError::NoSuchBucket)
        ));
        let names: Vec<_> = s.list("b", "d").await.unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].name, "f.txt");
    }

    #[tokio::test]
    async fn keys_that_climb_or_hide_are_refused() {
        let (_dir, s) = store();
        for key in ["../x", "a/../../x", "a//b", "./a", "/etc/passwd"] {
            assert!(
                matches!(s.stat("b", key).await, Err(ObjectError::BadKey)),
                "{key}"
            );
        }
        for bucket in ["", ".", "..", "a/b", ".hidden"] {
            assert!(matches!(
                s.stat(bucket, "x").await,
                Err(ObjectError::NoSuchBucket)
            ));
        }
    }

    #[tokio::test]
    async fn a_spooled_upload_is_moved_into_place_and_read_back_at_any_offset() {
        let (dir, s) = store();
        let spool = dir.path().join("spool");
        fs::write(&spool, b"0123456789").unwrap();
        assert_eq!(s.put_file("b", "n.bin", &spool).await.unwrap(), 10);
        assert!(!spool.exists());
        let (mut r, meta) = s.open("b", "n.bin").await.unwrap();
        assert_eq!(meta.size, 10);
        assert_eq!(r.read_at(3, 4).await.unwrap(), b"3456");
        assert_eq!(r.read_at(8, 100).await.unwrap(), b"89");
        assert!(r.read_at(10, 4).await.unwrap().is_empty());
        s.rename("b", "n.bin", "b", "m.bin").await.unwrap();
        assert_eq!(s.stat("b", "n.bin").await.unwrap(), Kind::Missing);
        s.delete("b", "m.bin").await.unwrap();
        assert!(matches!(
            s.delete("b", "m.bin").await,
            Err(ObjectError::NotFound)
        ));
    }

    #[tokio::test]
    async fn only_empty_folders_are_removed() {
        let (dir, s) = store();
        s.ensure_dir("b", "x/y").await.unwrap();
        fs::write(dir.path().join("b/x/y/f"), "1").unwrap();
        assert!(matches!(
            s.remove_dir("b", "x").await,
            Err(ObjectError::NotEmpty)
        ));
        s.delete("b", "x/y/f").await.unwrap();
        s.remove_dir("b", "x/y").await.unwrap();
        s.make_dir("b", "x/z").await.unwrap();
        assert_eq!(s.stat("b", "x/z").await.unwrap(), Kind::Dir);
        assert_eq!(parent_key("x/z"), "x");
        assert_eq!(parent_key("x"), "");
    }

    #[tokio::test]
    async fn a_listing_comes_a_page_at_a_time_with_every_name_once() {
        let (dir, s) = store();
        s.ensure_dir("b", "big/sub").await.unwrap();
        for n in 0..249 {
            fs::write(dir.path().join(format!("b/big/f{n:03}")), "x").unwrap();
        }
        let mut lister = s.list_pages("b", "big").await.unwrap();
        let mut sizes = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        loop {
            let page = lister.next_page(100).await.unwrap();
            if page.is_empty() {
                break;
            }
            sizes.push(page.len());
            for e in page {
                assert!(names.insert(e.name.clone()), "{} twice", e.name);
                assert_eq!(e.kind == Kind::Dir, e.name == "sub");
            }
        }
        assert_eq!(sizes, [100, 100, 50]);
        assert!(names.contains("f000") && names.contains("f248") && names.contains("sub"));
        assert!(!s.is_empty_dir("b", "big").await.unwrap());
        assert!(s.is_empty_dir("b", "big/sub").await.unwrap());
    }
}
