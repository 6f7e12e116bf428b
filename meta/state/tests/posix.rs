//! The namespace rules as readable tables: every `tests/testdata/*.txt` file is a list of
//! cases, each a fresh file system ("main") and a script of commands with the expected
//! outcome after `=>` (a line without `=>` must succeed with `ok`). See
//! `tests/testdata/README.md` for the commands.

mod common;

use std::path::Path;

use bucketfs_meta_state::command::{CreateMode, NewInode, RemoveKind};
use bucketfs_meta_state::types::{FileType, FsId, InodeId, ObjectLink, SetAttrs, Timestamp};
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use common::{Harness, create, error_name, remove};

fn outcome(result: Result<String, NsError>) -> String {
    result.unwrap_or_else(|e| error_name(&e))
}

/// "ok" for a change, "unchanged" when the reply reports no change to the parents
/// (an idempotent CREATE or a no-op RENAME).
fn changed(reply: Reply) -> String {
    match reply {
        Reply::Changed {
            parent_before,
            parent_after,
            other_before,
            other_after,
            ..
        } if parent_before == parent_after && other_before == other_after => "unchanged".into(),
        Reply::Changed { .. } => "ok".into(),
        other => panic!("expected Changed, got {other:?}"),
    }
}

/// Like [`changed`] for RENAME, which also says what it replaced: `ok`, `unchanged`,
/// `replaced` (the target lost a name and still exists) or `replaced-deleted`.
fn renamed(reply: Reply) -> String {
    let Reply::Renamed {
        src_before,
        src_after,
        dst_before,
        dst_after,
        replaced,
        ..
    } = reply
    else {
        panic!("expected Renamed, got {reply:?}")
    };
    match replaced {
        _ if src_before == src_after && dst_before == dst_after => {
            assert_eq!(replaced, None, "a no-op rename replaces nothing");
            "unchanged".into()
        }
        None => "ok".into(),
        Some(t) if t.nlink == 0 => "replaced-deleted".into(),
        Some(_) => "replaced".into(),
    }
}

fn kind_word(kind: FileType) -> &'static str {
    match kind {
        FileType::File => "file",
        FileType::Dir => "dir",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharDev => "chardev",
        FileType::BlockDev => "blockdev",
    }
}

fn kind_of_word(word: &str) -> FileType {
    [
        FileType::File,
        FileType::Dir,
        FileType::Symlink,
        FileType::Fifo,
        FileType::Socket,
        FileType::CharDev,
        FileType::BlockDev,
    ]
    .into_iter()
    .find(|k| kind_word(*k) == word)
    .unwrap_or_else(|| panic!("unknown kind {word}"))
}

/// `/` + the Path query's answer, `(none)` for an inode without a name.
fn path_of(h: &Harness, fs: FsId, ino: InodeId) -> Result<String, NsError> {
    match h.query(Query::Path { fs, ino })? {
        QueryReply::Path(Some(p)) => Ok(format!("/{p}")),
        QueryReply::Path(None) => Ok("(none)".into()),
        other => panic!("Path: {other:?}"),
    }
}

fn how(word: &str) -> CreateMode {
    match word {
        "unchecked" => CreateMode::Unchecked,
        "guarded" => CreateMode::Guarded,
        w => match w.strip_prefix("exclusive:") {
            Some(v) => CreateMode::Exclusive {
                verifier: v.parse().expect("verifier"),
            },
            None => panic!("unknown create mode {w}"),
        },
    }
}

fn kind(word: Option<&&str>) -> NewInode {
    match word.copied() {
        None | Some("file") => NewInode::File,
        Some("dir") => NewInode::Dir,
        Some(w) => match (w.strip_prefix("symlink:"), w.strip_prefix("special:")) {
            (Some(t), _) => NewInode::Symlink { target: t.into() },
            (_, Some(k)) => NewInode::Special {
                kind: kind_of_word(k),
                major: 0,
                minor: 0,
            },
            _ => panic!("unknown kind {w}"),
        },
    }
}

fn setattr(h: &mut Harness, path: &str, attrs: SetAttrs) -> Result<String, NsError> {
    let (fs, ino) = h.resolve_id(path)?;
    h.run(Command::SetAttr {
        fs,
        ino,
        attrs,
        guard_ctime: None,
    })?;
    Ok("ok".into())
}

fn step(h: &mut Harness, words: &[&str]) -> Result<String, NsError> {
    let arg = |i: usize| -> &str {
        words
            .get(i)
            .unwrap_or_else(|| panic!("{words:?}: argument {i}"))
    };
    let num = |i: usize| -> u64 {
        arg(i)
            .parse()
            .unwrap_or_else(|_| panic!("{words:?}: number"))
    };
    match words[0] {
        "mkfs" => {
            let reply = h.run(Command::CreateFs {
                name: arg(1).into(),
                bucket: "bucket".into(),
                prefix: String::new(),
            })?;
            assert!(matches!(reply, Reply::Fs(_)));
            Ok("ok".into())
        }
        "touch" | "mkdir" | "symlink" | "create" => {
            let (fs, parent, name) = h.split(arg(1))?;
            let (kind, how) = match words[0] {
                "touch" => (NewInode::File, CreateMode::Guarded),
                "mkdir" => (NewInode::Dir, CreateMode::Guarded),
                "symlink" => (
                    NewInode::Symlink {
                        target: arg(2).into(),
                    },
                    CreateMode::Guarded,
                ),
                _ => (kind(words.get(3)), how(arg(2))),
            };
            Ok(changed(h.run(create(fs, parent, name, kind, how))?))
        }
        "link" => {
            let (fs, ino) = h.resolve_id(arg(1))?;
            let (_, new_parent, new_name) = h.split(arg(2))?;
            Ok(changed(h.run(Command::Link {
                fs,
                ino,
                new_parent,
                new_name,
            })?))
        }
        "unlink" | "rmdir" | "remove" => {
            let (fs, parent, name) = h.split(arg(1))?;
            let kind = match words[0] {
                "unlink" => RemoveKind::NotDir,
                "rmdir" => RemoveKind::Dir,
                _ => RemoveKind::Any,
            };
            Ok(changed(h.run(remove(fs, parent, name, kind))?))
        }
        "rename" => {
            let (src_fs, src_parent, src_name) = h.split(arg(1))?;
            let (dst_fs, dst_parent, dst_name) = h.split(arg(2))?;
            Ok(renamed(h.run(Command::Rename {
                src_fs,
                src_parent,
                src_name,
                dst_fs,
                dst_parent,
                dst_name,
            })?))
        }
        "mknod" => {
            let (fs, parent, name) = h.split(arg(1))?;
            let (major, minor) = match words.get(3) {
                Some(dev) => {
                    let (a, b) = dev.split_once(',').expect("MAJOR,MINOR");
                    (a.parse().expect("major"), b.parse().expect("minor"))
                }
                None => (0, 0),
            };
            let kind = NewInode::Special {
                kind: kind_of_word(arg(2)),
                major,
                minor,
            };
            Ok(changed(h.run(create(
                fs,
                parent,
                name,
                kind,
                CreateMode::Guarded,
            ))?))
        }
        "chmod" => setattr(
            h,
            arg(1),
            SetAttrs {
                mode: Some(u32::from_str_radix(arg(2), 8).expect("octal mode")),
                ..SetAttrs::default()
            },
        ),
        "chown" => setattr(
            h,
            arg(1),
            SetAttrs {
                uid: Some(num(2) as u32),
                gid: Some(num(3) as u32),
                ..SetAttrs::default()
            },
        ),
        "truncate" => setattr(
            h,
            arg(1),
            SetAttrs {
                size: Some(num(2)),
                ..SetAttrs::default()
            },
        ),
        "commit" => {
            let (fs, ino) = h.resolve_id(arg(1))?;
            h.run(Command::CommitObject {
                fs,
                ino,
                size: num(2),
                mtime: Timestamp::new(1, 0),
                object: ObjectLink {
                    key: arg(1).into(),
                    version_id: None,
                    etag: "etag".into(),
                },
                expect_change: None,
                data_changed: true,
            })?;
            Ok("ok".into())
        }
        "handle" => {
            let (fs, ino) = h.resolve_id(arg(2))?;
            h.handles.insert(arg(1).into(), (fs, ino));
            Ok("ok".into())
        }
        "lookup" => h.resolve(arg(1)).map(|_| "ok".into()),
        "stat" => {
            let (_, i) = h.resolve(arg(1))?;
            let mut out = format!(
                "{} nlink={} size={} mode={:o}",
                kind_word(i.kind),
                i.nlink,
                i.size,
                i.mode
            );
            if i.rdev != (0, 0) || i.kind.is_device() {
                out += &format!(" rdev={},{}", i.rdev.0, i.rdev.1);
            }
            Ok(out)
        }
        "path" => {
            let (fs, ino) = h.resolve_id(arg(1))?;
            path_of(h, fs, ino)
        }
        "links" => {
            let (fs, ino) = h.resolve_id(arg(1))?;
            let QueryReply::Links(links) = h.query(Query::Links { fs, ino })? else {
                panic!("Links answers with links");
            };
            let mut out = Vec::new();
            for (parent, name) in links {
                let dir = path_of(h, fs, parent)?;
                out.push(format!("{}/{name}", dir.trim_end_matches('/')));
            }
            Ok(if out.is_empty() {
                "(none)".into()
            } else {
                out.join(" ")
            })
        }
        "readlink" => {
            let (fs, ino) = h.resolve_id(arg(1))?;
            match h.query(Query::ReadLink { fs, ino })? {
                QueryReply::Target(t) => Ok(t),
                other => panic!("ReadLink: {other:?}"),
            }
        }
        "same" => {
            let a = h.resolve(arg(1))?.1.id;
            let b = h.resolve(arg(2))?.1.id;
            Ok(if a == b { "yes" } else { "no" }.into())
        }
        "parent" => {
            let (fs, dir) = h.resolve_id(arg(1))?;
            let QueryReply::Inode(p) = h.query(Query::LookupParent { fs, dir })? else {
                panic!("LookupParent answers with an inode");
            };
            if p.id == bucketfs_meta_state::types::InodeId::ROOT {
                return Ok("/".into());
            }
            let path = h.tree(fs).into_iter().find(|(_, i)| i.id == p.id);
            Ok(path
                .map(|(p, _)| p)
                .unwrap_or_else(|| "<unreachable>".into()))
        }
        "tree" => {
            let fs = h.fs_id(words.get(1).copied().unwrap_or("main"))?;
            let paths: Vec<String> = h.tree(fs).into_iter().map(|(p, _)| p).collect();
            Ok(if paths.is_empty() {
                "(empty)".into()
            } else {
                paths.join(" ")
            })
        }
        other => panic!("unknown command {other}"),
    }
}

struct Case {
    title: String,
    /// (line number, command words, expected outcome)
    steps: Vec<(usize, String, String)>,
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(title) = line.strip_prefix("case ") {
            cases.push(Case {
                title: title.to_string(),
                steps: Vec::new(),
            });
            continue;
        }
        let (command, expected) = match line.split_once("=>") {
            Some((c, e)) => (c.trim(), e.trim()),
            None => (line, "ok"),
        };
        cases
            .last_mut()
            .unwrap_or_else(|| panic!("line {}: command before the first case", n + 1))
            .steps
            .push((n + 1, command.to_string(), expected.to_string()));
    }
    cases
}

/// Expands every `c*N` in an expected outcome, as paths do.
fn expand_all(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            word.split('/')
                .map(common::expand)
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_file(path: &Path, failures: &mut Vec<String>) -> usize {
    let text = std::fs::read_to_string(path).expect("read test data");
    let cases = parse(&text);
    for case in &cases {
        let mut h = Harness::new();
        h.mkfs("main");
        for (line, command, expected) in &case.steps {
            let words: Vec<&str> = command.split_whitespace().collect();
            let got = outcome(step(&mut h, &words));
            let expected = expand_all(expected);
            if got != expected {
                failures.push(format!(
                    "{}:{line} [{}] `{command}`\n    expected: {expected}\n    got:      {got}",
                    path.display(),
                    case.title
                ));
                break;
            }
        }
    }
    cases.len()
}

#[test]
fn posix_tables() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let cases: usize = files.iter().map(|f| run_file(f, &mut failures)).sum();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // Guards against a parser change that silently drops cases.
    assert!(cases >= 53, "only {cases} cases ran");
}
