//! Where a file system object lives in the bucket (S3FILES_SPEC.md §2.1, §2.4): a file or a
//! symlink at `prefix + path`, a directory as the zero-byte marker `prefix + path + "/"`. The
//! root is the prefix itself and has no marker of its own.

/// The object key of the object at `path` ("a/b/c", relative to the file system root) in a
/// file system rooted at `prefix` ("" or "some/prefix/").
pub fn object_key(prefix: &str, path: &str) -> String {
    format!("{prefix}{path}")
}

/// The directory marker of the directory at `path`; `None` for the root.
pub fn marker_key(prefix: &str, path: &str) -> Option<String> {
    if path.is_empty() {
        None
    } else {
        Some(format!("{prefix}{path}/"))
    }
}

/// A prefix as the file system records it: empty, or ending with exactly one "/".
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// S3 refuses keys longer than 1,024 bytes (S3FILES_SPEC.md §2.2: "PathTooLong").
pub const MAX_KEY_BYTES: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_prefixes() {
        assert_eq!(object_key("", "a/b"), "a/b");
        assert_eq!(object_key("data/", "a/b"), "data/a/b");
        assert_eq!(marker_key("data/", "a"), Some("data/a/".to_owned()));
        assert_eq!(marker_key("data/", ""), None);
        assert_eq!(normalize_prefix("/data/set/"), "data/set/");
        assert_eq!(normalize_prefix("data"), "data/");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix(""), "");
    }
}
