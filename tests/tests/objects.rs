//! The S3 object store against moto, through the real SDK: folders as prefixes and markers,
//! listings, ranged reads, multipart uploads and renames of awkward names.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ferry_core::adapters::aws::s3::S3Objects;
use ferry_core::ports::{Kind, ObjectError, ObjectLister, ObjectReader, ObjectStore};
use ferry_tests::Fixture;

async fn store() -> (Fixture, S3Objects, String) {
    let fixture = Fixture::new().await.unwrap();
    let bucket = fixture.bucket().await.unwrap();
    let store = S3Objects::new(fixture.s3());
    (fixture, store, bucket)
}

fn spool(bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(ferry_tests::fixture::unique("spool"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test]
async fn folders_are_prefixes_or_markers_and_listings_show_each_name_once() {
    let (_f, s, b) = store().await;
    assert_eq!(s.stat(&b, "").await.unwrap(), Kind::Dir);
    assert!(matches!(
        s.stat("no-such-bucket-here", "").await,
        Err(ObjectError::NoSuchBucket)
    ));
    s.make_dir(&b, "empty").await.unwrap();
    s.put_file(&b, "docs/a.txt", &spool(b"aaa")).await.unwrap();
    s.put_file(&b, "docs/deep/b.txt", &spool(b"b"))
        .await
        .unwrap();
    assert_eq!(s.stat(&b, "empty").await.unwrap(), Kind::Dir);
    assert_eq!(s.stat(&b, "docs").await.unwrap(), Kind::Dir);
    assert_eq!(s.stat(&b, "docs/deep").await.unwrap(), Kind::Dir);
    assert!(matches!(s.stat(&b, "docs/a.txt").await.unwrap(), Kind::File(m) if m.size == 3));
    assert_eq!(s.stat(&b, "doc").await.unwrap(), Kind::Missing);
    let root: Vec<_> = s.list(&b, "").await.unwrap();
    let names: Vec<_> = root.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["docs", "empty"]);
    let docs = s.list(&b, "docs").await.unwrap();
    let names: Vec<_> = docs
        .iter()
        .map(|e| (e.name.as_str(), e.kind == Kind::Dir))
        .collect();
    assert_eq!(names, [("a.txt", false), ("deep", true)]);
    assert!(
        s.list(&b, "empty").await.unwrap().is_empty(),
        "a marker is not its own entry"
    );
    s.remove_dir(&b, "empty").await.unwrap();
    assert_eq!(s.stat(&b, "empty").await.unwrap(), Kind::Missing);
}

#[tokio::test]
async fn a_folder_of_several_s3_answers_is_listed_a_page_at_a_time_in_key_order() {
    let (f, s, b) = store().await;
    // 2,300 objects, two subfolders (one only a marker) and the folder's own marker: three
    // ListObjectsV2 answers of at most 1,000 keys.
    let mut keys: Vec<String> = (0..2_300).map(|n| format!("big/f{n:04}")).collect();
    keys.extend(["big/".into(), "big/m-sub/".into(), "big/sub/x".into()]);
    let s3 = f.s3();
    for chunk in keys.chunks(32) {
        let mut puts = tokio::task::JoinSet::new();
        for key in chunk {
            puts.spawn(
                s3.put_object()
                    .bucket(&b)
                    .key(key)
                    .body(Vec::new().into())
                    .send(),
            );
        }
        while let Some(done) = puts.join_next().await {
            done.unwrap().unwrap();
        }
    }
    let mut lister = s.list_pages(&b, "big").await.unwrap();
    let mut names = Vec::new();
    loop {
        let page = lister.next_page(100).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 100, "a page of {}", page.len());
        names.extend(page.into_iter().map(|e| (e.name, e.kind == Kind::Dir)));
    }
    assert_eq!(
        names.len(),
        2_302,
        "every file and both subfolders, not the marker"
    );
    assert!(
        names.windows(2).all(|w| w[0].0 < w[1].0),
        "in key order, none twice"
    );
    assert!(names.contains(&("m-sub".to_owned(), true)));
    assert!(names.contains(&("sub".to_owned(), true)));
    assert!(names.contains(&("f2299".to_owned(), false)));
    assert!(!s.is_empty_dir(&b, "big").await.unwrap());
    assert!(s.is_empty_dir(&b, "big/m-sub").await.unwrap());
}

#[tokio::test]
async fn reads_follow_any_offset_and_stop_at_the_end() {
    let (_f, s, b) = store().await;
    let body: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    s.put_file(&b, "r.bin", &spool(&body)).await.unwrap();
    let (mut r, meta) = s.open(&b, "r.bin").await.unwrap();
    assert_eq!(meta.size, 300_000);
    assert_eq!(r.read_at(0, 70_000).await.unwrap(), body[..70_000]);
    assert_eq!(
        r.read_at(70_000, 70_000).await.unwrap(),
        body[70_000..140_000]
    );
    // A jump back starts a new ranged read.
    assert_eq!(r.read_at(5, 10).await.unwrap(), body[5..15]);
    assert_eq!(r.read_at(299_990, 100).await.unwrap(), body[299_990..]);
    assert!(r.read_at(300_000, 100).await.unwrap().is_empty());
    assert!(matches!(
        s.open(&b, "nope").await,
        Err(ObjectError::NotFound)
    ));
}

#[tokio::test]
async fn a_large_upload_goes_multipart_and_arrives_whole() {
    let (_f, s, b) = store().await;
    // Just over the 64 MiB threshold: five parts.
    let len = 64 * 1024 * 1024 + 4097;
    let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let path = spool(&body);
    assert_eq!(s.put_file(&b, "big.bin", &path).await.unwrap(), len as u64);
    assert!(!path.exists(), "the spool file is consumed");
    let (mut r, meta) = s.open(&b, "big.bin").await.unwrap();
    assert_eq!(meta.size, len as u64);
    let mut back = Vec::with_capacity(len);
    loop {
        let chunk = r.read_at(back.len() as u64, 1 << 20).await.unwrap();
        if chunk.is_empty() {
            break;
        }
        back.extend_from_slice(&chunk);
    }
    assert!(back == body, "multipart round trip changed bytes");
}

#[tokio::test]
async fn renames_move_names_with_spaces_and_unicode() {
    let (_f, s, b) = store().await;
    s.put_file(&b, "in/a file+é&?.txt", &spool(b"x"))
        .await
        .unwrap();
    s.rename(&b, "in/a file+é&?.txt", &b, "out/%20 ü.txt")
        .await
        .unwrap();
    assert_eq!(
        s.stat(&b, "in/a file+é&?.txt").await.unwrap(),
        Kind::Missing
    );
    assert!(matches!(s.stat(&b, "out/%20 ü.txt").await.unwrap(), Kind::File(m) if m.size == 1));
    s.delete(&b, "out/%20 ü.txt").await.unwrap();
    assert_eq!(s.stat(&b, "out").await.unwrap(), Kind::Missing);
}
