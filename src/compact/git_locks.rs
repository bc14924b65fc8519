//! Whether git itself is packing a repository right now.
//!
//! Two `git repack`s at once on one repository make one of them fail
//! ("could not find pack"): our own compactions keep apart with their lock
//! (see [`super::repo_lock_file`]), and git's do with theirs, which ours
//! must respect too. `git gc` holds `gc.pid` ("<pid> <host>") while it
//! runs, and `git maintenance run` holds `objects/maintenance.lock`. We
//! read them the way git does and skip the repository while either is held:
//! git's job packs the same objects.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// git treats a `gc.pid` older than this as stale whatever it says
/// (`gc.c`: 12 hours).
const GC_PID_STALE: Duration = Duration::from_secs(12 * 3600);

/// Why the repository at `git_dir` is being packed by git now, or `None`.
pub fn packing(git_dir: &Path) -> Option<String> {
    if let Some(pid) = live_gc(git_dir) {
        return Some(format!("git gc (pid {pid}) is running in this repository"));
    }
    // git maintenance takes this lock with O_EXCL and refuses to run while
    // it exists, stale or not; a stale one blocks git's maintenance as well.
    if git_dir.join("objects/maintenance.lock").exists() {
        return Some(
            "git maintenance is running in this repository (objects/maintenance.lock)".into(),
        );
    }
    None
}

/// The pid of a `git gc` holding `gc.pid` on this host and still alive, as
/// git decides it: the file is recent, names this host, and its process
/// exists. A pid on another host cannot be checked; git then trusts the
/// file until it is stale, and so do we.
fn live_gc(git_dir: &Path) -> Option<u32> {
    let path = git_dir.join("gc.pid");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    if age > GC_PID_STALE {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let (pid, host) = text.trim().split_once(' ')?;
    let pid: u32 = pid.parse().ok()?;
    match hostname() {
        Some(here) if here == host => alive(pid).then_some(pid),
        _ => Some(pid),
    }
}

#[cfg(unix)]
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer and its length are valid; gethostname writes a
    // NUL-terminated name into at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec()).ok()
}

/// Elsewhere the host is unknown, so a `gc.pid` is trusted until stale,
/// as git trusts another host's.
#[cfg(not(unix))]
fn hostname() -> Option<String> {
    None
}

#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}

/// Whether process `pid` exists (signal 0 checks without sending; EPERM
/// means it exists but is another user's).
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_live_gc_on_this_host_is_seen_and_a_dead_or_stale_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let host = hostname().unwrap();
        assert_eq!(packing(dir.path()), None, "nothing held");

        std::fs::write(
            dir.path().join("gc.pid"),
            format!("{} {host}", std::process::id()),
        )
        .unwrap();
        assert_eq!(live_gc(dir.path()), Some(std::process::id()));
        assert!(packing(dir.path()).unwrap().contains("git gc"));

        // A process that has exited: git would take the lock over.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(dir.path().join("gc.pid"), format!("{dead} {host}")).unwrap();
        assert_eq!(live_gc(dir.path()), None);

        // Another host's gc is trusted until the file is stale.
        std::fs::write(dir.path().join("gc.pid"), format!("{dead} not-{host}")).unwrap();
        assert_eq!(live_gc(dir.path()), Some(dead));
        let old = SystemTime::now() - GC_PID_STALE - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("gc.pid"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(live_gc(dir.path()), None);
    }

    #[test]
    fn git_maintenance_is_seen_by_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("objects")).unwrap();
        std::fs::write(dir.path().join("objects/maintenance.lock"), "").unwrap();
        assert!(packing(dir.path()).unwrap().contains("git maintenance"));
    }
}
