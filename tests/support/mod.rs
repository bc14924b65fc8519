//! Test support: sandboxed real git repositories with a real bare remote,
//! the real `ai-commit` binary run with a controlled environment, and git's
//! own CLI as an oracle.

#![allow(dead_code)]

pub mod nvim;
pub mod ollama;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temp dir holding `home/` (HOME, XDG dirs, global git config without an
/// identity), `remote.git` (bare) and `work/` (a clone-to-be with `origin`).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub work: PathBuf,
    pub bare: PathBuf,
    /// Value for OLLAMA_HOST given to ai-commit.
    pub ollama: String,
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ai-commit"))
}

impl Sandbox {
    /// An empty work repo (unborn `main`, identity set locally) with `origin`
    /// pointing at an empty bare repository.
    pub fn new(ollama: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let home = root.join("home");
        std::fs::create_dir_all(home.join(".config")).unwrap();
        std::fs::write(
            home.join(".gitconfig"),
            "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
        )
        .unwrap();
        let sb = Sandbox {
            home,
            work: root.join("work"),
            bare: root.join("remote.git"),
            ollama: ollama.to_string(),
            dir,
        };
        sb.git_ok(&root, &["init", "-q", "--bare", "remote.git"]);
        sb.git_ok(&root, &["init", "-q", "work"]);
        sb.identity(&sb.work);
        sb.git_ok(&sb.work, &["remote", "add", "origin", "../remote.git"]);
        sb
    }

    pub fn identity(&self, repo: &Path) {
        self.git_ok(repo, &["config", "user.name", "Journal Writer"]);
        self.git_ok(repo, &["config", "user.email", "writer@example.org"]);
    }

    /// A sandboxed environment: nothing from the developer's machine leaks in.
    fn env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_STATE_HOME", self.home.join(".local/state"))
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LANG", "C.UTF-8")
            .env("NO_COLOR", "1");
    }

    pub fn git(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = Command::new("git");
        self.env(&mut c);
        c.current_dir(dir).args(args).output().expect("git runs")
    }

    pub fn git_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ai-commit` in the work tree, talking to `self.ollama`.
    pub fn ai_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        self.env(&mut c);
        c.current_dir(&self.work)
            .env("OLLAMA_HOST", &self.ollama)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn ai(&self, args: &[&str]) -> Run {
        Run::from(self.ai_cmd(args).output().expect("ai-commit runs"))
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.work.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn append(&self, rel: &str, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.work.join(rel))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Subjects of `git log` in `dir` (newest first); empty on an unborn branch.
    pub fn subjects(&self, dir: &Path) -> Vec<String> {
        let out = self.git(dir, &["log", "--format=%s", "main"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }

    /// Full message of the last commit in `dir`.
    pub fn last_message(&self, dir: &Path) -> String {
        self.git_ok(dir, &["log", "-1", "--format=%B", "main"])
            .trim_end()
            .to_string()
    }

    pub fn head(&self, dir: &Path) -> String {
        self.git_ok(dir, &["rev-parse", "main"]).trim().to_string()
    }

    /// `git fsck --strict` on the bare remote must be clean.
    pub fn fsck_remote(&self) {
        let out = self.git(&self.bare, &["fsck", "--strict", "--no-dangling"]);
        assert!(
            out.status.success(),
            "fsck: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A first commit made with git itself (so tests start from a history).
    pub fn seed(&self, rel: &str, content: &str) {
        self.write(rel, content);
        self.git_ok(&self.work, &["add", "--", rel]);
        self.git_ok(&self.work, &["commit", "-q", "-m", "Seed"]);
        self.git_ok(&self.work, &["push", "-q", "-u", "origin", "main"]);
    }
}

/// A finished ai-commit run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn ok(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// `bytes` that zlib cannot shrink (a loose object of about that size).
pub fn incompressible(bytes: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
