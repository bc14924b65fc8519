//! `ai-commit hook install`: a prepare-commit-msg hook that fills in the
//! message when the user runs plain `git commit`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::git::Repo;

/// First line after the shebang; marks hooks we wrote (and may replace).
pub const MARKER: &str = "# installed by ai-commit";

/// The hook: only for a plain `git commit` (no -m, merge, squash, amend);
/// any failure leaves git's own template alone, so committing never breaks.
pub const SCRIPT: &str = r#"#!/bin/sh
# installed by ai-commit
# Fills in the commit message from the staged diff (ai-commit message).
case "$2" in merge|squash|commit|message) exit 0 ;; esac
command -v ai-commit >/dev/null 2>&1 || exit 0
msg=$(ai-commit message --quiet 2>/dev/null) || exit 0
[ -n "$msg" ] || exit 0
{ printf '%s\n' "$msg"; cat "$1"; } > "$1.ai-commit" && mv "$1.ai-commit" "$1"
exit 0
"#;

#[derive(Debug)]
pub enum Installed {
    New(PathBuf),
    Updated(PathBuf),
}

/// Install into the repository around `cwd` (respecting `core.hooksPath`).
/// A hook that someone else wrote is never overwritten.
pub fn install(cwd: &Path) -> Result<Installed> {
    let repo = Repo::discover(cwd)?;
    let dir = repo.hooks_dir();
    let path = dir.join("prepare-commit-msg");
    let existed = match std::fs::read_to_string(&path) {
        Ok(text) if text.contains(MARKER) => true,
        Ok(_) => {
            return Err(Error::io(
                format!("{} exists and was not written by ai-commit; add the line `ai-commit message` to it yourself, or move it away and run again", path.display()),
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let tmp = dir.join(".prepare-commit-msg.ai-commit");
    std::fs::write(&tmp, SCRIPT)
        .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(format!("cannot make {} executable", tmp.display()), e))?;
    }
    std::fs::rename(&tmp, &path)
        .map_err(|e| Error::io(format!("cannot install {}", path.display()), e))?;
    Ok(if existed {
        Installed::Updated(path)
    } else {
        Installed::New(path)
    })
}
