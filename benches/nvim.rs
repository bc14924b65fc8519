//! The Neovim face's speed, in a real headless Neovim with the release
//! module (`cargo build --release -p ai-commit-nvim && cargo bench --bench nvim`),
//! in each supported Neovim (0.10, 0.11, 0.12; `.ci/neovims` fetches them):
//!
//! 1. the longest main-loop stall during a full `\g` while a model streams
//!    (10 tokens, 100 ms apart), against the old flow's blocking
//!    `vim.fn.system()` call on the same model, in the same run;
//! 2. `require("ai_commit").setup{}` time, and the first load of the module;
//! 3. keypress → commit on disk with an instant model, against the CLI on
//!    the same data: a 129 KB journal, and a 10 MB one (the journal for
//!    life: staged by the fast path, see `src/git/fastblob.rs`). A new
//!    entry is added at the end of the buffer; `\g` saves it first.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::nvim::{self, Nvim};
use support::ollama::{FakeOllama, Script};
use support::Sandbox;

const ROUNDS: usize = 7;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A journal of `lines` entries (2,000: 129 KB; 160,000: 10.5 MB).
fn journal(lines: usize) -> String {
    let mut s = String::from("# Journal\n\n# Beginning of Notes\n\n");
    for i in 0..lines {
        s.push_str(&format!(
            "2024-01-01 Entry {i}: walked, read, wrote a little about the day.\n"
        ));
    }
    s
}

const STALL: &str = r#"
require("ai_commit").setup({ timeout = 30 })
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "entry " .. os.time() })
-- Pressed a moment after start-up, as a user does (setup's deferred load of
-- the module has run by then; its cost is reported under start-up).
vim.defer_fn(function()
  local stop = H.lateness()
  vim.api.nvim_feedkeys("\\g", "mx", false)
  H.wait_run(nil, 30000, function(last) H.finish({ ok = last.outcome ~= nil, late = stop() }) end)
end, 200)
"#;

const BLOCKING: &str = r#"
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "entry " .. os.time() })
vim.cmd("write")
local stop = H.lateness()
vim.defer_fn(function()
  -- The old flow: the editor waits for git and the model.
  vim.fn.system({ CLI, "-q", "journal.md" })
  vim.defer_fn(function() H.finish({ ok = vim.v.shell_error == 0, late = stop() }) end, 50)
end, 20)
"#;

const SETUP: &str = r#"
local t0 = vim.uv.hrtime()
require("ai_commit").setup({})
local t1 = vim.uv.hrtime()
require("ai_commit")._ensure_native()
local t2 = vim.uv.hrtime()
H.finish({ setup_ms = (t1 - t0) / 1e6, load_ms = (t2 - t1) / 1e6 })
"#;

const KEYPRESS: &str = r#"
require("ai_commit").setup({})
require("ai_commit")._ensure_native() -- loaded, as after the first press
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "entry " .. vim.uv.hrtime() })
local ref = ".git/refs/heads/main"
local before = (vim.uv.fs_stat(ref) or {}).mtime
local t0 = vim.uv.hrtime()
vim.api.nvim_feedkeys("\\g", "mx", false)
local committed
local function poll()
  local st = vim.uv.fs_stat(ref)
  if not committed and st and (not before or st.mtime.nsec ~= before.nsec or st.mtime.sec ~= before.sec) then
    committed = (vim.uv.hrtime() - t0) / 1e6
  end
end
local timer = vim.uv.new_timer()
timer:start(0, 1, poll)
H.wait_run(nil, 30000, function(last)
  poll()
  timer:stop()
  H.finish({ committed_ms = committed, done_ms = (vim.uv.hrtime() - t0) / 1e6, ok = last.outcome ~= nil })
end)
"#;

fn main() {
    let native = nvim::native_lib("release");
    let text = journal(2000);
    let big = journal(160_000);
    println!(
        "one release module ({}), in every supported Neovim",
        native.display()
    );
    for nv in Nvim::ALL {
        println!("\n=== Neovim {} ({})", nv.minor(), nv.bin().display());
        bench(nv, &native, &text);
        keypress(nv, native.as_path(), &big);
    }
}

fn bench(nv: Nvim, native: &std::path::Path, text: &str) {
    // 1. Stall while streaming, plugin vs the old blocking call.
    let slow = FakeOllama::start(
        Script::tokens(&[
            "Add ",
            "a ",
            "short ",
            "entry ",
            "about ",
            "the ",
            "evening ",
            "walk ",
            "by ",
            "the river",
        ])
        .delay(Duration::from_millis(100)),
    );
    let sb = Sandbox::new(&slow.url());
    sb.seed("journal.md", text);
    let (mut ours, mut blocking) = (Vec::new(), Vec::new());
    let cli = support::bin().display().to_string();
    for _ in 0..3 {
        let v = nvim::run(nv, &sb, STALL, &[], native);
        assert_eq!(v["ok"], true, "{v}");
        ours.push(v["late"].as_f64().unwrap());
        let v = nvim::run(
            nv,
            &sb,
            &BLOCKING.replace("CLI", &format!("{cli:?}")),
            &[],
            native,
        );
        assert_eq!(v["ok"], true, "{v}");
        blocking.push(v["late"].as_f64().unwrap());
    }
    println!("main-loop stall while a model streams 10 tokens over 1 s (worst of 3 runs):");
    println!(
        "  \\g (ai-commit plugin)                  {:>8.1} ms",
        ours.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "  blocking vim.fn.system(ai-commit)      {:>8.1} ms   (the old flow's pattern)",
        blocking.iter().cloned().fold(0.0, f64::max)
    );

    // 2. setup() and the first native load.
    let (mut setup, mut load) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let v = nvim::run(nv, &sb, SETUP, &[], native);
        setup.push(v["setup_ms"].as_f64().unwrap());
        load.push(v["load_ms"].as_f64().unwrap());
    }
    println!("start-up (median of {ROUNDS} fresh Neovims):");
    println!(
        "  require(\"ai_commit\").setup{{}}         {:>8.2} ms",
        median(&mut setup)
    );
    println!(
        "  native module load (deferred by setup) {:>8.2} ms",
        median(&mut load)
    );

    keypress(nv, native, text);
}

/// 3. Keypress → commit on disk, instant model; the CLI on the same data.
fn keypress(nv: Nvim, native: &std::path::Path, text: &str) {
    let fast = FakeOllama::start(Script::text("Add a short entry about the evening walk"));
    let ed = Sandbox::new(&fast.url());
    ed.seed("journal.md", text);
    let cl = Sandbox::new(&fast.url());
    cl.seed("journal.md", text);
    let (mut committed, mut done, mut cli_ms) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let v = nvim::run(nv, &ed, KEYPRESS, &[], native);
        assert_eq!(v["ok"], true, "{v}");
        committed.push(v["committed_ms"].as_f64().unwrap_or(f64::NAN));
        done.push(v["done_ms"].as_f64().unwrap());
        cl.append("journal.md", &format!("entry {round}\n"));
        let t = std::time::Instant::now();
        cl.ai(&["-q", "journal.md"]).ok();
        cli_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let size = if text.len() >= 1 << 20 {
        format!("{:.1} MB", text.len() as f64 / 1e6)
    } else {
        format!("{} KB", text.len() / 1024)
    };
    println!("keypress → commit, instant model, {size} journal (median of {ROUNDS}):");
    println!(
        "  \\g → branch ref updated on disk        {:>8.1} ms   (includes saving the buffer)",
        median(&mut committed)
    );
    println!(
        "  \\g → result shown (after the push)     {:>8.1} ms",
        median(&mut done)
    );
    println!(
        "  `ai-commit -q journal.md` (process)    {:>8.1} ms",
        median(&mut cli_ms)
    );
    for sb in [&ed, &cl] {
        sb.fsck_remote();
    }
}
