//! `--edit`: the message opens in the user's editor before committing.

use std::path::Path;
use std::process::Command;

use ai_commit::{Error, Result};

/// git's order: $GIT_EDITOR, core.editor, $VISUAL, $EDITOR, vi.
fn editor(cwd: &Path) -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    env("GIT_EDITOR")
        .or_else(|| {
            git2::Repository::discover(cwd)
                .and_then(|r| r.config())
                .or_else(|_| git2::Config::open_default())
                .ok()
                .and_then(|c| c.get_string("core.editor").ok())
        })
        .or_else(|| env("VISUAL"))
        .or_else(|| env("EDITOR"))
        .unwrap_or_else(|| "vi".into())
}

/// Edit `message`; `None` (abort) when the result is empty.
pub fn edit(message: &str, cwd: &Path) -> Result<Option<String>> {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("ai-commit-{}.COMMIT_EDITMSG", std::process::id()));
    let text = format!(
        "{message}\n\n# Edit the commit message. Lines starting with '#' are ignored;\n# an empty message aborts the commit (your changes stay staged).\n"
    );
    std::fs::write(&path, text)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    let ed = editor(cwd);
    // The editor setting is a shell snippet by git's convention ("code --wait").
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{ed} \"$@\""))
        .arg(&ed)
        .arg(&path)
        .status()
        .map_err(|e| Error::Editor {
            detail: format!("cannot start {ed:?}: {e}"),
        })?;
    let edited = std::fs::read_to_string(&path);
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        return Err(Error::Editor {
            detail: format!("{ed:?} exited with {status}"),
        });
    }
    let edited = edited.map_err(|e| Error::io("cannot read the edited message", e))?;
    let kept: Vec<&str> = edited.lines().filter(|l| !l.starts_with('#')).collect();
    let msg = kept.join("\n").trim().to_string();
    Ok((!msg.is_empty()).then_some(msg))
}
