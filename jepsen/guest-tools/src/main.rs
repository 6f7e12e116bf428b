//! `guest-tools`: test programs that run inside the kernel-NFS-client test guest
//! (`jepsen/guest`), where there is only busybox. Built on the host and put into the guest with
//! `HARNESS_EXTRA`; it needs only glibc.
//!
//! ```text
//! guest-tools locks FILE    POSIX byte-range locks between two processes; prints PASS/FAIL lines
//! guest-tools excl PATH     open(O_CREAT|O_EXCL): exit 0 if created, 17 if EEXIST, 1 otherwise
//! guest-tools rename OLD NEW   rename(2) as is (busybox mv moves a directory *into* NEW)
//! guest-tools trylock FILE START LEN   one F_SETLK write lock: exit 0 if granted (then
//!                           released), 11 if EAGAIN/EACCES, 1 on another error
//! guest-tools hold FILE START LEN   lock, print "locked", close the fd on a line from stdin
//!                           (the child half of `locks`; also used across two guests)
//! ```
//!
//! `locks` starts a child (this program, `hold`) that takes a write lock on bytes 0..100 of
//! FILE, then checks from the parent, on its own descriptor:
//!
//! - `lock_conflict`: F_SETLK on an overlapping range fails with EAGAIN/EACCES, and F_GETLK
//!   names the child as the holder;
//! - `lock_disjoint`: F_SETLK on bytes 100..200 succeeds;
//! - `lock_release_on_close`: once the child closes its descriptor (without exiting), the
//!   parent gets bytes 0..100.
//!
//! Between processes of one client the Linux client resolves conflicts itself, but every lock
//! it grants is first taken from the server with LOCK, and released with LOCKU.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

/// How long the parent waits for the child's next word; a hung LOCK RPC shows up as a FAIL.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["locks", file] => locks(file),
        ["excl", path] => excl(path),
        ["rename", old, new] => match std::fs::rename(old, new) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rename {old} {new}: {e}");
                ExitCode::FAILURE
            }
        },
        ["hold", file, start, len] => match (start.parse(), len.parse()) {
            (Ok(start), Ok(len)) => hold(file, start, len),
            _ => usage(),
        },
        ["trylock", file, start, len] => match (start.parse(), len.parse()) {
            (Ok(start), Ok(len)) => trylock(file, start, len),
            _ => usage(),
        },
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: guest-tools locks FILE | excl PATH | rename OLD NEW | trylock FILE START LEN \
         | hold FILE START LEN"
    );
    ExitCode::from(2)
}

fn flock(l_type: i32, start: i64, len: i64) -> libc::flock {
    libc::flock {
        // F_RDLCK/F_WRLCK/F_UNLCK and SEEK_SET fit a c_short.
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        l_pid: 0,
    }
}

/// F_SETLK of a write lock (or an unlock) on `start..start+len`.
fn setlk(file: &File, l_type: i32, start: i64, len: i64) -> Result<(), Errno> {
    fcntl(file, FcntlArg::F_SETLK(&flock(l_type, start, len))).map(drop)
}

fn open_rw(path: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// The child: lock, say "locked", close the descriptor when told, say "closed", wait for EOF.
fn hold(path: &str, start: i64, len: i64) -> ExitCode {
    let file = match open_rw(path) {
        Ok(f) => f,
        Err(e) => {
            println!("error open {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = setlk(&file, libc::F_WRLCK, start, len) {
        println!("error F_SETLK: {e}");
        return ExitCode::FAILURE;
    }
    println!("locked");
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    let _ = stdin.read_line(&mut line);
    // Closing the descriptor releases the process's locks on the file (POSIX).
    drop(file);
    println!("closed");
    line.clear();
    while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
    ExitCode::SUCCESS
}

fn trylock(path: &str, start: i64, len: i64) -> ExitCode {
    let file = match open_rw(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("open {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match setlk(&file, libc::F_WRLCK, start, len) {
        Ok(()) => {
            let _ = setlk(&file, libc::F_UNLCK, start, len);
            ExitCode::SUCCESS
        }
        Err(Errno::EAGAIN | Errno::EACCES) => ExitCode::from(11),
        Err(e) => {
            eprintln!("F_SETLK {start}+{len}: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Holder {
    fn start(path: &str, start: i64, len: i64) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .args(["hold", path, &start.to_string(), &len.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            lines,
        })
    }

    fn expect(&self, word: &str) -> Result<(), String> {
        match self.lines.recv_timeout(CHILD_TIMEOUT) {
            Ok(line) if line == word => Ok(()),
            Ok(line) => Err(format!("child said {line:?}, expected {word:?}")),
            Err(_) => Err(format!(
                "child did not say {word:?} within {CHILD_TIMEOUT:?}"
            )),
        }
    }

    fn tell(&mut self, word: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("child stdin closed")?;
        writeln!(stdin, "{word}").map_err(|e| format!("write to child: {e}"))
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(-1)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stdin = None; // EOF: the child exits
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(200));
            if !matches!(self.child.try_wait(), Ok(Some(_))) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn check(&mut self, name: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => println!("PASS {name}{}", paren(&detail)),
            Err(e) => {
                println!("FAIL {name}: {e}");
                self.failed += 1;
            }
        }
    }
}

fn paren(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" ({s})")
    }
}

fn conflict(file: &File, holder: i32) -> Result<String, String> {
    match setlk(file, libc::F_WRLCK, 0, 100) {
        Ok(()) => return Err("F_SETLK on 0..100 succeeded while the child holds it".into()),
        Err(Errno::EAGAIN | Errno::EACCES) => {}
        Err(e) => return Err(format!("F_SETLK on 0..100: {e}, expected EAGAIN")),
    }
    match setlk(file, libc::F_RDLCK, 50, 10) {
        Ok(()) => return Err("F_SETLK read lock on 50..60 succeeded under a write lock".into()),
        Err(Errno::EAGAIN | Errno::EACCES) => {}
        Err(e) => return Err(format!("F_SETLK read lock on 50..60: {e}, expected EAGAIN")),
    }
    let mut probe = flock(libc::F_WRLCK, 0, 100);
    fcntl(file, FcntlArg::F_GETLK(&mut probe)).map_err(|e| format!("F_GETLK: {e}"))?;
    if i32::from(probe.l_type) != libc::F_WRLCK || probe.l_pid != holder {
        return Err(format!(
            "F_GETLK reports type {} pid {} start {} len {}, expected a write lock of pid {holder}",
            probe.l_type, probe.l_pid, probe.l_start, probe.l_len
        ));
    }
    Ok("EAGAIN; F_GETLK names the holder".into())
}

fn locks(path: &str) -> ExitCode {
    let mut report = Report::default();
    let file = match open_rw(path).and_then(|mut f| f.write_all(&[b'x'; 200]).map(|()| f)) {
        Ok(f) => f,
        Err(e) => {
            println!("FAIL lock_setup: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut holder = match Holder::start(path, 0, 100) {
        Ok(h) => h,
        Err(e) => {
            println!("FAIL lock_setup: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = holder.expect("locked") {
        println!("FAIL lock_setup: the child could not lock 0..100: {e}");
        return ExitCode::FAILURE;
    }
    report.check("lock_conflict", conflict(&file, holder.pid()));
    report.check(
        "lock_disjoint",
        setlk(&file, libc::F_WRLCK, 100, 100)
            .map(|()| "100..200 granted".into())
            .map_err(|e| format!("F_SETLK on 100..200: {e}")),
    );
    let released = holder
        .tell("close")
        .and_then(|()| holder.expect("closed"))
        .and_then(|()| {
            setlk(&file, libc::F_WRLCK, 0, 100)
                .map(|()| "0..100 granted after the child closed its fd".into())
                .map_err(|e| format!("F_SETLK on 0..100 after the child's close: {e}"))
        });
    report.check("lock_release_on_close", released);
    let _ = setlk(&file, libc::F_UNLCK, 0, 0);
    drop(holder);
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn excl(path: &str) -> ExitCode {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
    {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => ExitCode::from(17),
        Err(e) => {
            eprintln!("excl {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flock_fields() {
        let l = flock(libc::F_WRLCK, 5, 10);
        assert_eq!(i32::from(l.l_type), libc::F_WRLCK);
        assert_eq!(i32::from(l.l_whence), libc::SEEK_SET);
        assert_eq!((l.l_start, l.l_len), (5, 10));
    }

    #[test]
    fn locks_on_a_local_file() {
        // The same scenario on the host's file system: exercises the program itself.
        let dir = std::env::temp_dir().join(format!("guest-tools-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lockfile");
        let file = open_rw(path.to_str().unwrap()).unwrap();
        setlk(&file, libc::F_WRLCK, 0, 100).unwrap();
        // A lock of our own process never conflicts with itself.
        setlk(&file, libc::F_WRLCK, 50, 10).unwrap();
        setlk(&file, libc::F_UNLCK, 0, 0).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
