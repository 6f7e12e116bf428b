//! `bucketfs ls|cat|cp|put|rm|mkdir|stat`: file commands over NFS v4.1 for machines without a
//! kernel NFS client, through `bucketfs-nfs-client`.
//!
//! Remote paths are absolute paths below the export (`/dir/file`). Failures print one line,
//! `bucketfs: PATH: DESCRIPTION (NFS4ERR_NAME)`, and exit with status 1.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bucketfs_nfs_client::{
    Attributes, Client, ClientOptions, Error, FileHandle, FileType, NfsStatus, NfsTime, Opcode,
    mode_string, split_parent, status_description, status_name,
};
use clap::Args;

/// Where the server is.
#[derive(Args, Clone)]
pub struct NfsTarget {
    /// The NFS server: HOST:PORT, or HOST:PORT/EXPORT to name its export path.
    #[arg(long, env = "BUCKETFS_NFS", value_name = "HOST:PORT[/EXPORT]")]
    target: String,
    /// Export path, when --target names none.
    #[arg(long, default_value = "/")]
    export: String,
    /// AUTH_SYS uid of the calls.
    #[arg(long, default_value_t = 0)]
    uid: u32,
    /// AUTH_SYS gid of the calls.
    #[arg(long, default_value_t = 0)]
    gid: u32,
    /// Seconds to wait for one reply (and to connect) before giving up.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    target: NfsTarget,
    /// Long listing: mode, links, owner, group, size, modification time (UTC), name.
    #[arg(short = 'l')]
    long: bool,
    /// Directory (or file) to list.
    #[arg(default_value = "/")]
    path: String,
}

#[derive(Args)]
pub struct CatArgs {
    #[command(flatten)]
    target: NfsTarget,
    /// Files to print to standard output, in order.
    #[arg(required = true)]
    paths: Vec<String>,
}

#[derive(Args)]
pub struct PutArgs {
    #[command(flatten)]
    target: NfsTarget,
    /// Local file to upload ("-" for standard input).
    local: PathBuf,
    /// Remote file, or an existing remote directory to put it in under the same name.
    remote: String,
}

#[derive(Args)]
#[command(after_help = "Paths are remote unless prefixed with \"local:\":\n  \
    bucketfs cp /a/x /b/y                 copy on the server (through this machine)\n  \
    bucketfs cp local:./x.txt /dir/       upload into /dir/x.txt\n  \
    bucketfs cp /dir/x.txt local:/tmp/    download to /tmp/x.txt\n\
    A destination that is an existing directory gets the source's file name.")]
pub struct CpArgs {
    #[command(flatten)]
    target: NfsTarget,
    /// Source: a remote path, or local:PATH.
    src: String,
    /// Destination: a remote path, or local:PATH.
    dst: String,
}

#[derive(Args)]
pub struct RmArgs {
    #[command(flatten)]
    target: NfsTarget,
    /// Remove directories and everything in them.
    #[arg(short = 'r', short_alias = 'R')]
    recursive: bool,
    /// Files (or, with -r, directories) to remove.
    #[arg(required = true)]
    paths: Vec<String>,
}

#[derive(Args)]
pub struct MkdirArgs {
    #[command(flatten)]
    target: NfsTarget,
    /// Create missing parents too; an existing directory is not an error.
    #[arg(short = 'p')]
    parents: bool,
    /// Permission bits of new directories, octal.
    #[arg(short = 'm', long, default_value = "755")]
    mode: String,
    #[arg(required = true)]
    paths: Vec<String>,
}

#[derive(Args)]
pub struct StatArgs {
    #[command(flatten)]
    target: NfsTarget,
    #[arg(required = true)]
    paths: Vec<String>,
}

/// A failure already reported to the user.
struct Reported;

type CmdResult<T = ()> = Result<T, Reported>;

/// Prints `bucketfs: WHAT: why` for `e`.
fn report(what: &str, e: &Error) -> Reported {
    match e.status() {
        Some(s) => eprintln!(
            "bucketfs: {what}: {} ({})",
            status_description(s),
            status_name(s)
        ),
        None => eprintln!("bucketfs: {what}: {e}"),
    }
    Reported
}

fn report_msg(what: &str, msg: impl std::fmt::Display) -> Reported {
    eprintln!("bucketfs: {what}: {msg}");
    Reported
}

fn nfs_err(status: NfsStatus) -> Error {
    Error::Nfs {
        op: Opcode::Lookup,
        status,
    }
}

async fn connect(t: &NfsTarget) -> CmdResult<Client> {
    let (addr, export) = match t.target.find('/') {
        Some(i) => (&t.target[..i], &t.target[i..]),
        None => (t.target.as_str(), t.export.as_str()),
    };
    let timeout = Duration::from_secs(t.timeout.max(1));
    let opts = ClientOptions {
        uid: t.uid,
        gid: t.gid,
        export: export.to_owned(),
        connect_timeout: timeout,
        call_timeout: timeout,
        max_retries: 2,
        ..ClientOptions::default()
    };
    Client::connect(addr.to_owned(), opts)
        .await
        .map_err(|e| report(&t.target, &e))
}

/// Runs `body` with a connected client, closes it, and maps the outcome to an exit code.
async fn with_client<F, Fut>(t: &NfsTarget, body: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = CmdResult>,
{
    let client = match connect(t).await {
        Ok(c) => c,
        Err(Reported) => return Ok(ExitCode::from(1)),
    };
    let result = body(client.clone()).await;
    client.close().await;
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Reported) => ExitCode::from(1),
    })
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of an NFS time.
fn format_time(t: &NfsTime, with_seconds: bool) -> String {
    let days = t.seconds.div_euclid(86_400);
    let secs = t.seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if with_seconds {
        format!(
            "{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}.{:09} UTC",
            t.nseconds
        )
    } else {
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
    }
}

fn long_line(name: &str, a: &Attributes, link: Option<&[u8]>) -> String {
    let size = match a.file_type {
        FileType::Block | FileType::Char => format!("{}, {}", a.rawdev.0, a.rawdev.1),
        _ => a.size.to_string(),
    };
    let mut line = format!(
        "{} {:>3} {:<8} {:<8} {:>10} {} {}",
        mode_string(a.file_type, a.mode),
        a.nlink,
        a.owner,
        a.owner_group,
        size,
        format_time(&a.mtime, false),
        name
    );
    if let Some(target) = link {
        line.push_str(" -> ");
        line.push_str(&String::from_utf8_lossy(target));
    }
    line
}

pub async fn ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    with_client(&args.target, |c| async move {
        let path = &args.path;
        let (fh, attrs) = c.lookup(path).await.map_err(|e| report(path, &e))?;
        let mut out = std::io::stdout().lock();
        if !attrs.is_dir() {
            let name = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or(path);
            let line = if args.long {
                let link = match attrs.file_type {
                    FileType::Symlink => c.readlink(&fh).await.ok(),
                    _ => None,
                };
                long_line(name, &attrs, link.as_deref())
            } else {
                name.to_owned()
            };
            let _ = writeln!(out, "{line}");
            return Ok(());
        }
        let mut entries = c.readdir(&fh).await.map_err(|e| report(path, &e))?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in entries {
            let line = if args.long {
                let link = match (e.attrs.file_type, &e.fh) {
                    (FileType::Symlink, Some(fh)) => c.readlink(fh).await.ok(),
                    _ => None,
                };
                long_line(&e.name, &e.attrs, link.as_deref())
            } else {
                e.name.clone()
            };
            if writeln!(out, "{line}").is_err() {
                break; // stdout closed (| head)
            }
        }
        Ok(())
    })
    .await
}

pub async fn cat(args: CatArgs) -> anyhow::Result<ExitCode> {
    with_client(&args.target, |c| async move {
        let mut failed = false;
        for path in &args.paths {
            let mut out = std::io::stdout().lock();
            let r = c.read_file_with(path, |chunk| out.write_all(chunk)).await;
            let _ = out.flush();
            if let Err(e) = r {
                report(path, &e);
                failed = true;
            }
        }
        if failed { Err(Reported) } else { Ok(()) }
    })
    .await
}

/// Where a copy into `dst` goes: `dst` itself, or `dst/name` if it is a directory.
async fn remote_dest(c: &Client, dst: &str, name: &str) -> CmdResult<String> {
    match c.lookup(dst).await {
        Ok((_, a)) if a.is_dir() => Ok(format!("{}/{name}", dst.trim_end_matches('/'))),
        Ok(_) => Ok(dst.to_owned()),
        Err(e) if e.is(NfsStatus::NoEnt) => Ok(dst.to_owned()),
        Err(e) => Err(report(dst, &e)),
    }
}

fn base_name(path: &str) -> Option<&str> {
    path.rsplit('/')
        .find(|s| !s.is_empty() && *s != "." && *s != "..")
}

/// Segment size for streaming copies.
const SEGMENT: usize = 8 << 20;

async fn upload(c: &Client, local: &Path, remote: &str) -> CmdResult {
    let shown = local.display().to_string();
    let stdin = local == Path::new("-");
    let mut reader: Box<dyn Read> = if stdin {
        Box::new(std::io::stdin())
    } else {
        let meta = std::fs::metadata(local).map_err(|e| report_msg(&shown, e))?;
        if meta.is_dir() {
            return Err(report_msg(&shown, "is a directory"));
        }
        Box::new(std::fs::File::open(local).map_err(|e| report_msg(&shown, e))?)
    };
    let mode = if stdin {
        0o644
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(local).map_or(0o644, |m| m.permissions().mode() & 0o7777)
    };
    let name = if stdin {
        "stdin".to_owned()
    } else {
        local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| report_msg(&shown, "names no file"))?
    };
    let dest = remote_dest(c, remote, &name).await?;
    let mut w = c
        .create_writer(&dest, mode)
        .await
        .map_err(|e| report(&dest, &e))?;
    let mut buf = vec![0u8; SEGMENT];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(report_msg(&shown, e)),
            }
        }
        if filled == 0 {
            break;
        }
        w.write_segment(&buf[..filled])
            .await
            .map_err(|e| report(&dest, &e))?;
        if filled < buf.len() {
            break;
        }
    }
    w.finish().await.map_err(|e| report(&dest, &e))?;
    Ok(())
}

pub async fn put(args: PutArgs) -> anyhow::Result<ExitCode> {
    with_client(&args.target, |c| async move {
        upload(&c, &args.local, &args.remote).await
    })
    .await
}

async fn download(c: &Client, remote: &str, local: &Path) -> CmdResult {
    let name = base_name(remote).ok_or_else(|| report_msg(remote, "names no file"))?;
    let dest = if local.is_dir() {
        local.join(name)
    } else {
        local.to_path_buf()
    };
    let shown = dest.display().to_string();
    // Open the remote file first so a missing one leaves no empty local file behind.
    let mut reader = c
        .open_reader(remote)
        .await
        .map_err(|e| report(remote, &e))?;
    let mut file = std::fs::File::create(&dest).map_err(|e| report_msg(&shown, e))?;
    loop {
        let seg = reader
            .read_segment(SEGMENT)
            .await
            .map_err(|e| report(remote, &e))?;
        if seg.is_empty() {
            break;
        }
        file.write_all(&seg).map_err(|e| report_msg(&shown, e))?;
    }
    reader.close().await.map_err(|e| report(remote, &e))?;
    Ok(())
}

async fn copy_remote(c: &Client, src: &str, dst: &str) -> CmdResult {
    let name = base_name(src).ok_or_else(|| report_msg(src, "names no file"))?;
    let mut reader = c.open_reader(src).await.map_err(|e| report(src, &e))?;
    let mode = reader.file().map_or(0o644, |f| f.attrs.mode);
    let dest = remote_dest(c, dst, name).await?;
    let mut w = c
        .create_writer(&dest, mode)
        .await
        .map_err(|e| report(&dest, &e))?;
    loop {
        let seg = reader
            .read_segment(SEGMENT)
            .await
            .map_err(|e| report(src, &e))?;
        if seg.is_empty() {
            break;
        }
        w.write_segment(&seg).await.map_err(|e| report(&dest, &e))?;
    }
    reader.close().await.map_err(|e| report(src, &e))?;
    w.finish().await.map_err(|e| report(&dest, &e))?;
    Ok(())
}

pub async fn cp(args: CpArgs) -> anyhow::Result<ExitCode> {
    let local = |s: &str| s.strip_prefix("local:").map(str::to_owned);
    match (local(&args.src), local(&args.dst)) {
        (Some(_), Some(_)) => {
            eprintln!("bucketfs: cp: both paths are local; use cp(1)");
            Ok(ExitCode::from(1))
        }
        (Some(src), None) => {
            with_client(&args.target, |c| async move {
                upload(&c, Path::new(&src), &args.dst).await
            })
            .await
        }
        (None, Some(dst)) => {
            with_client(&args.target, |c| async move {
                download(&c, &args.src, Path::new(&dst)).await
            })
            .await
        }
        (None, None) => {
            with_client(&args.target, |c| async move {
                copy_remote(&c, &args.src, &args.dst).await
            })
            .await
        }
    }
}

/// Removes everything inside directory `dir`.
async fn empty_tree(c: &Client, dir: &FileHandle, shown: &str) -> Result<(), (String, Error)> {
    let entries = c.readdir(dir).await.map_err(|e| (shown.to_owned(), e))?;
    for e in entries {
        let path = format!("{}/{}", shown.trim_end_matches('/'), e.name);
        if e.attrs.is_dir() {
            let fh = match &e.fh {
                Some(fh) => fh.clone(),
                None => {
                    c.lookup_in(dir, &e.name)
                        .await
                        .map_err(|err| (path.clone(), err))?
                        .0
                }
            };
            Box::pin(empty_tree(c, &fh, &path)).await?;
        }
        c.remove(dir, &e.name).await.map_err(|err| (path, err))?;
    }
    Ok(())
}

pub async fn rm(args: RmArgs) -> anyhow::Result<ExitCode> {
    with_client(&args.target, |c| async move {
        let mut failed = false;
        for path in &args.paths {
            let r = async {
                let (parent, name) = split_parent(path).map_err(|e| (path.clone(), e))?;
                let (dir, _) = c.lookup(parent).await.map_err(|e| (path.clone(), e))?;
                let (fh, attrs) = c
                    .lookup_in(&dir, name)
                    .await
                    .map_err(|e| (path.clone(), e))?;
                if attrs.is_dir() {
                    if !args.recursive {
                        return Err((path.clone(), nfs_err(NfsStatus::IsDir)));
                    }
                    empty_tree(&c, &fh, path).await?;
                }
                c.remove(&dir, name).await.map_err(|e| (path.clone(), e))
            }
            .await;
            if let Err((p, e)) = r {
                report(&p, &e);
                failed = true;
            }
        }
        if failed { Err(Reported) } else { Ok(()) }
    })
    .await
}

pub async fn mkdir(args: MkdirArgs) -> anyhow::Result<ExitCode> {
    let mode = match u32::from_str_radix(&args.mode, 8) {
        Ok(m) if m <= 0o7777 => m,
        _ => {
            eprintln!(
                "bucketfs: mkdir: invalid mode {:?} (octal, e.g. 755)",
                args.mode
            );
            return Ok(ExitCode::from(1));
        }
    };
    with_client(&args.target, |c| async move {
        let mut failed = false;
        for path in &args.paths {
            let r = if args.parents {
                mkdir_parents(&c, path, mode).await
            } else {
                async {
                    let (dir, name) = c.lookup_parent(path).await?;
                    c.mkdir(&dir, name, mode).await.map(drop)
                }
                .await
            };
            if let Err(e) = r {
                report(path, &e);
                failed = true;
            }
        }
        if failed { Err(Reported) } else { Ok(()) }
    })
    .await
}

async fn mkdir_parents(c: &Client, path: &str, mode: u32) -> Result<(), Error> {
    let mut dir = c.root().clone();
    for comp in path.split('/').filter(|s| !s.is_empty() && *s != ".") {
        dir = match c.lookup_in(&dir, comp).await {
            Ok((fh, a)) if a.is_dir() => fh,
            Ok(_) => return Err(nfs_err(NfsStatus::NotDir)),
            Err(e) if e.is(NfsStatus::NoEnt) => match c.mkdir(&dir, comp, mode).await {
                Ok((fh, _)) => fh,
                // Someone else made it meanwhile.
                Err(e) if e.is(NfsStatus::Exist) => c.lookup_in(&dir, comp).await?.0,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
    }
    Ok(())
}

pub async fn stat(args: StatArgs) -> anyhow::Result<ExitCode> {
    with_client(&args.target, |c| async move {
        let mut failed = false;
        for path in &args.paths {
            match c.lookup(path).await {
                Ok((fh, a)) => {
                    let link = match a.file_type {
                        FileType::Symlink => c.readlink(&fh).await.ok(),
                        _ => None,
                    };
                    print_stat(path, &a, link.as_deref());
                }
                Err(e) => {
                    report(path, &e);
                    failed = true;
                }
            }
        }
        if failed { Err(Reported) } else { Ok(()) }
    })
    .await
}

fn print_stat(path: &str, a: &Attributes, link: Option<&[u8]>) {
    let mut s = format!("  File: {path}");
    if let Some(t) = link {
        s.push_str(&format!(" -> {}", String::from_utf8_lossy(t)));
    }
    println!("{s}");
    println!("  Type: {}", a.file_type.name());
    println!("  Size: {:<12} Space used: {}", a.size, a.space_used);
    println!(
        "  Mode: {:04o} ({})  Links: {}",
        a.mode,
        mode_string(a.file_type, a.mode),
        a.nlink
    );
    println!("  Owner: {}  Group: {}", a.owner, a.owner_group);
    if matches!(a.file_type, FileType::Block | FileType::Char) {
        println!("  Device: {}, {}", a.rawdev.0, a.rawdev.1);
    }
    println!("  Fileid: {}  Fsid: {}.{}", a.fileid, a.fsid.0, a.fsid.1);
    println!("  Access: {}", format_time(&a.atime, true));
    println!("  Modify: {}", format_time(&a.mtime, true));
    println!("  Change: {}", format_time(&a.ctime, true));
    println!("  Change attribute: {}", a.change);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_utc() {
        let t = |seconds| NfsTime {
            seconds,
            nseconds: 5,
        };
        assert_eq!(format_time(&t(0), false), "1970-01-01 00:00");
        assert_eq!(
            format_time(&t(1_700_000_000), true),
            "2023-11-14 22:13:20.000000005 UTC"
        );
        assert_eq!(format_time(&t(951_782_400), false), "2000-02-29 00:00");
        assert_eq!(format_time(&t(-1), false), "1969-12-31 23:59");
    }
}
