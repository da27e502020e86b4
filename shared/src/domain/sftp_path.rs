//! What a path an SFTP client sends means: normalised lexically (so `..` can never climb above `/`),
//! then mapped, as Transfer Family maps it, to a bucket and key, or to a virtual directory that
//! only exists because logical mappings sit below it.

use super::user::Mapping;

/// Where a visible path lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory that only holds mapping entries (or `/` of a PATH user): `children` are the
    /// names visible in it.
    Virtual { children: Vec<String> },
    /// `key` is empty for the bucket's root.
    Object { bucket: String, key: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path holds NUL or control characters")]
    Control,
    #[error("no such file or directory")]
    NotMapped,
    #[error("path is too long")]
    TooLong,
}

/// Makes `path` absolute (relative to `cwd`) and resolves `.` and `..` lexically, never above
/// the root.
pub fn normalize(cwd: &str, path: &str) -> Result<String, PathError> {
    if path.chars().any(char::is_control) {
        return Err(PathError::Control);
    }
    if path.len() > 4096 {
        return Err(PathError::TooLong);
    }
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{cwd}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// How a user's visible paths map to storage.
#[derive(Debug, Clone)]
pub enum Namespace {
    /// PATH home: the visible path is `/bucket/key`.
    Path,
    /// LOGICAL home: `Entry` paths replaced by their `Target`.
    Logical(Vec<Mapping>),
}

impl Namespace {
    /// Maps a normalised absolute path.
    pub fn locate(&self, path: &str) -> Result<Location, PathError> {
        match self {
            Self::Path => Ok(split_target(path).unwrap_or(Location::Virtual {
                children: Vec::new(),
            })),
            Self::Logical(mappings) => {
                // The longest entry that is the path or one of its ancestors wins.
                let best = mappings
                    .iter()
                    .filter_map(|m| {
                        let entry = m.entry.trim_end_matches('/');
                        let rest = if entry.is_empty() {
                            Some(path)
                        } else if path == entry {
                            Some("")
                        } else {
                            path.strip_prefix(entry).filter(|r| r.starts_with('/'))
                        };
                        rest.map(|r| (entry.len(), m, r))
                    })
                    .max_by_key(|(len, _, _)| *len);
                if let Some((_, m, rest)) = best {
                    let target = format!(
                        "{}/{}",
                        m.target.trim_end_matches('/'),
                        rest.trim_start_matches('/')
                    );
                    return split_target(&normalize("/", &target)?).ok_or(PathError::NotMapped);
                }
                // Not mapped: a directory only if some entry lies below it.
                let prefix = if path == "/" {
                    "/".to_owned()
                } else {
                    format!("{path}/")
                };
                let mut children: Vec<String> = mappings
                    .iter()
                    .filter_map(|m| m.entry.strip_prefix(&prefix))
                    .filter_map(|r| r.split('/').find(|s| !s.is_empty()))
                    .map(str::to_owned)
                    .collect();
                children.sort();
                children.dedup();
                if children.is_empty() {
                    Err(PathError::NotMapped)
                } else {
                    Ok(Location::Virtual { children })
                }
            }
        }
    }
}

/// `/bucket/a/b` → bucket `bucket`, key `a/b`; `/` → `None`.
fn split_target(path: &str) -> Option<Location> {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        return None;
    }
    let (bucket, key) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    Some(Location::Object {
        bucket: bucket.to_owned(),
        key: key.trim_end_matches('/').to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(bucket: &str, key: &str) -> Location {
        Location::Object {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    #[test]
    fn dot_dot_never_climbs_above_the_root() {
        assert_eq!(
            normalize("/b/home/alice", "../../../../etc/passwd").unwrap(),
            "/etc/passwd"
        );
        assert_eq!(
            normalize("/b/home/alice", "x/./y/../z").unwrap(),
            "/b/home/alice/x/z"
        );
        assert_eq!(normalize("/", "..").unwrap(), "/");
        assert_eq!(normalize("/a", "/c//d/").unwrap(), "/c/d");
        assert_eq!(normalize("/a", "b\0c"), Err(PathError::Control));
        assert_eq!(normalize("/a", "b\nc"), Err(PathError::Control));
    }

    #[test]
    fn path_homes_see_buckets_and_keys() {
        let ns = Namespace::Path;
        assert_eq!(
            ns.locate("/ferry-local/home/alice/f.txt").unwrap(),
            obj("ferry-local", "home/alice/f.txt")
        );
        assert_eq!(ns.locate("/ferry-local").unwrap(), obj("ferry-local", ""));
        assert_eq!(
            ns.locate("/").unwrap(),
            Location::Virtual { children: vec![] }
        );
    }

    #[test]
    fn a_chroot_maps_everything_under_its_target() {
        let ns = Namespace::Logical(vec![Mapping {
            entry: "/".into(),
            target: "/ferry-local/home/bob".into(),
            kind: None,
        }]);
        assert_eq!(ns.locate("/").unwrap(), obj("ferry-local", "home/bob"));
        assert_eq!(
            ns.locate("/in/x.csv").unwrap(),
            obj("ferry-local", "home/bob/in/x.csv")
        );
        // ".." is resolved before mapping, so it cannot reach the target's parent.
        assert_eq!(
            ns.locate(&normalize("/", "../../x").unwrap()).unwrap(),
            obj("ferry-local", "home/bob/x")
        );
    }

    #[test]
    fn logical_entries_win_by_length_and_their_parents_are_virtual() {
        let ns = Namespace::Logical(vec![
            Mapping {
                entry: "/data".into(),
                target: "/b1/x".into(),
                kind: None,
            },
            Mapping {
                entry: "/data/special".into(),
                target: "/b2/y".into(),
                kind: None,
            },
            Mapping {
                entry: "/reports/2026".into(),
                target: "/b3/r".into(),
                kind: None,
            },
        ]);
        assert_eq!(ns.locate("/data/f").unwrap(), obj("b1", "x/f"));
        assert_eq!(ns.locate("/data/special/f").unwrap(), obj("b2", "y/f"));
        assert_eq!(
            ns.locate("/data/specialist").unwrap(),
            obj("b1", "x/specialist")
        );
        assert_eq!(
            ns.locate("/").unwrap(),
            Location::Virtual {
                children: vec!["data".into(), "reports".into()]
            }
        );
        assert_eq!(
            ns.locate("/reports").unwrap(),
            Location::Virtual {
                children: vec!["2026".into()]
            }
        );
        assert_eq!(ns.locate("/elsewhere"), Err(PathError::NotMapped));
    }
}
