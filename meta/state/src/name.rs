//! File name rules shared by every operation that takes a name.

use crate::error::NsError;

pub const NAME_MAX_BYTES: usize = 255;

/// Accepts a single path component: not empty, not `.` or `..`, no `/` or NUL, at most
/// 255 bytes (Linux `NAME_MAX`; also the longest S3 key segment we can map both ways).
pub fn validate(name: &str) -> Result<(), NsError> {
    if name.is_empty() {
        return Err(NsError::InvalidName("empty name".into()));
    }
    if name == "." || name == ".." {
        return Err(NsError::InvalidName(format!("{name:?} is reserved")));
    }
    if name.contains('/') {
        return Err(NsError::InvalidName("name contains '/'".into()));
    }
    if name.contains('\0') {
        return Err(NsError::InvalidName("name contains NUL".into()));
    }
    if name.len() > NAME_MAX_BYTES {
        return Err(NsError::NameTooLong);
    }
    Ok(())
}
