//! Typed file attributes: the 15 the Linux client asks for on every GETATTR.

use bucketfs_nfs_wire::nfs::attr::*;
use bucketfs_nfs_wire::nfs::{Attr, Bitmap, Fattr, NfsFileType, NfsTime};

use crate::error::{Error, Result};

/// The Linux client's GETATTR bitmap: type, change, size, fsid, fileid, mode, numlinks,
/// owner, owner_group, rawdev, space_used, time_access, time_metadata, time_modify,
/// mounted_on_fileid (words 0x0010011a, 0x00b0a23a).
pub fn getattr_bitmap() -> Bitmap {
    Bitmap::from_bits(&[
        FATTR4_TYPE,
        FATTR4_CHANGE,
        FATTR4_SIZE,
        FATTR4_FSID,
        FATTR4_FILEID,
        FATTR4_MODE,
        FATTR4_NUMLINKS,
        FATTR4_OWNER,
        FATTR4_OWNER_GROUP,
        FATTR4_RAWDEV,
        FATTR4_SPACE_USED,
        FATTR4_TIME_ACCESS,
        FATTR4_TIME_METADATA,
        FATTR4_TIME_MODIFY,
        FATTR4_MOUNTED_ON_FILEID,
    ])
}

/// The type of a file system object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    Block,
    Char,
    Socket,
    Fifo,
    /// Named-attribute directories and attributes (not used by this client).
    Other,
}

impl From<NfsFileType> for FileType {
    fn from(t: NfsFileType) -> Self {
        match t {
            NfsFileType::Regular => FileType::Regular,
            NfsFileType::Directory => FileType::Directory,
            NfsFileType::Link => FileType::Symlink,
            NfsFileType::Block => FileType::Block,
            NfsFileType::Char => FileType::Char,
            NfsFileType::Socket => FileType::Socket,
            NfsFileType::Fifo => FileType::Fifo,
            NfsFileType::AttrDir | NfsFileType::NamedAttr => FileType::Other,
        }
    }
}

impl FileType {
    /// The `S_IFMT` bits of this type, for building an `st_mode`.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::Block => 0o060000,
            FileType::Char => 0o020000,
            FileType::Socket => 0o140000,
            FileType::Fifo => 0o010000,
            FileType::Other => 0,
        }
    }

    /// `ls -l`'s type letter.
    pub fn letter(self) -> char {
        match self {
            FileType::Regular => '-',
            FileType::Directory => 'd',
            FileType::Symlink => 'l',
            FileType::Block => 'b',
            FileType::Char => 'c',
            FileType::Socket => 's',
            FileType::Fifo => 'p',
            FileType::Other => '?',
        }
    }

    /// A human name ("regular file", "directory", ...).
    pub fn name(self) -> &'static str {
        match self {
            FileType::Regular => "regular file",
            FileType::Directory => "directory",
            FileType::Symlink => "symbolic link",
            FileType::Block => "block device",
            FileType::Char => "character device",
            FileType::Socket => "socket",
            FileType::Fifo => "fifo",
            FileType::Other => "named attribute",
        }
    }
}

/// The attributes of one object. Attributes the server did not return keep their default
/// (0, empty) and are absent from `returned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub file_type: FileType,
    /// The change attribute: differs after every data or metadata change.
    pub change: u64,
    pub size: u64,
    pub fsid: (u64, u64),
    pub fileid: u64,
    /// Permission bits (07777).
    pub mode: u32,
    pub nlink: u32,
    /// As the server sent it: a number ("1000") or a name ("user@domain").
    pub owner: String,
    pub owner_group: String,
    /// Device numbers (major, minor) of block and character devices.
    pub rawdev: (u32, u32),
    pub space_used: u64,
    pub atime: NfsTime,
    /// Status change time (ctime).
    pub ctime: NfsTime,
    pub mtime: NfsTime,
    pub mounted_on_fileid: u64,
    /// Which attributes the server actually returned.
    pub returned: Bitmap,
}

impl Attributes {
    /// Decodes a GETATTR/READDIR fattr4. The type must be present.
    pub fn from_fattr(f: &Fattr) -> Result<Self> {
        let values = f
            .decode_attrs()
            .map_err(|e| Error::Malformed(format!("fattr4: {e}")))?;
        Self::from_values(f.mask.clone(), values)
    }

    /// Builds the struct from decoded values (`returned` is their mask).
    pub fn from_values(returned: Bitmap, values: Vec<Attr>) -> Result<Self> {
        let zero = NfsTime {
            seconds: 0,
            nseconds: 0,
        };
        let mut a = Attributes {
            file_type: FileType::Other,
            change: 0,
            size: 0,
            fsid: (0, 0),
            fileid: 0,
            mode: 0,
            nlink: 0,
            owner: String::new(),
            owner_group: String::new(),
            rawdev: (0, 0),
            space_used: 0,
            atime: zero.clone(),
            ctime: zero.clone(),
            mtime: zero,
            mounted_on_fileid: 0,
            returned,
        };
        let mut typed = false;
        for v in values {
            match v {
                Attr::Type(t) => {
                    a.file_type = t.into();
                    typed = true;
                }
                Attr::Change(v) => a.change = v,
                Attr::Size(v) => a.size = v,
                Attr::Fsid(v) => a.fsid = (v.major, v.minor),
                Attr::FileId(v) => a.fileid = v,
                Attr::Mode(v) => a.mode = v & 0o7777,
                Attr::NumLinks(v) => a.nlink = v,
                Attr::Owner(v) => a.owner = v,
                Attr::OwnerGroup(v) => a.owner_group = v,
                Attr::RawDev(v) => a.rawdev = (v.major, v.minor),
                Attr::SpaceUsed(v) => a.space_used = v,
                Attr::TimeAccess(v) => a.atime = v,
                Attr::TimeMetadata(v) => a.ctime = v,
                Attr::TimeModify(v) => a.mtime = v,
                Attr::MountedOnFileId(v) => a.mounted_on_fileid = v,
                // Anything else the server volunteered is ignored.
                _ => {}
            }
        }
        if !typed {
            return Err(Error::Malformed("fattr4 without the type attribute".into()));
        }
        Ok(a)
    }

    /// The owner as a numeric uid, when the server sends numbers.
    pub fn uid(&self) -> Option<u32> {
        self.owner.parse().ok()
    }

    /// The group as a numeric gid, when the server sends numbers.
    pub fn gid(&self) -> Option<u32> {
        self.owner_group.parse().ok()
    }

    /// `st_mode`: type bits and permission bits.
    pub fn st_mode(&self) -> u32 {
        self.file_type.mode_bits() | self.mode
    }

    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Directory
    }
}

/// `ls -l`'s mode string ("drwxr-xr-x"), with setuid/setgid/sticky letters.
pub fn mode_string(file_type: FileType, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(file_type.letter());
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let special = |x: u32, sp: u32, set: char, unset: char| match (mode & x != 0, mode & sp != 0) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use bucketfs_nfs_wire::nfs::types::SpecData;

    #[test]
    fn bitmap_is_the_linux_one() {
        assert_eq!(getattr_bitmap().words(), &[0x0010_011a, 0x00b0_a23a]);
    }

    #[test]
    fn decodes_and_requires_type() {
        let f = Fattr::encode_attrs(
            &getattr_bitmap(),
            [
                Attr::Type(NfsFileType::Directory),
                Attr::Mode(0o40755),
                Attr::Owner("1000".into()),
                Attr::RawDev(SpecData { major: 1, minor: 2 }),
                Attr::Size(9),
            ],
        );
        let a = Attributes::from_fattr(&f).unwrap();
        assert!(a.is_dir());
        assert_eq!(
            (a.mode, a.size, a.uid(), a.rawdev),
            (0o755, 9, Some(1000), (1, 2))
        );
        assert_eq!(a.st_mode(), 0o40755);
        let no_type = Fattr::encode_attrs(&getattr_bitmap(), [Attr::Size(1)]);
        assert!(matches!(
            Attributes::from_fattr(&no_type),
            Err(Error::Malformed(_))
        ));
        let junk = Fattr {
            mask: getattr_bitmap(),
            vals: vec![0, 0, 0, 1],
        };
        assert!(matches!(
            Attributes::from_fattr(&junk),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn mode_strings() {
        assert_eq!(mode_string(FileType::Directory, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(FileType::Regular, 0o4644), "-rwSr--r--");
        assert_eq!(mode_string(FileType::Directory, 0o1777), "drwxrwxrwt");
    }
}
