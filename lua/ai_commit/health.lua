-- :checkhealth ai_commit
local M = {}

function M.check()
  local h = vim.health
  h.start("ai-commit: Neovim and the native module")
  local v = vim.version()
  if vim.fn.has("nvim-0.10") == 1 then
    h.ok(("Neovim %d.%d.%d (0.10 or newer: supported; one native module serves every version)"):format(v.major, v.minor, v.patch))
  else
    h.error(("Neovim %d.%d.%d: 0.10 or newer is needed"):format(v.major, v.minor, v.patch), "upgrade Neovim")
    return
  end
  local ai = require("ai_commit")
  local native = require("ai_commit.native")
  local b = native.build_state()
  if b then
    local cmd = table.concat(native.BUILD, " ")
    if not b.done then
      h.info(("building the module: `%s` (%d crates so far)"):format(cmd, b.crates))
    elseif b.ok then
      h.ok(("built the module in %.0f s: `%s`"):format(b.seconds, cmd))
    else
      h.error(("building the module failed (exit %s): `%s` in %s"):format(b.code, cmd, b.root), {
        "the whole output is in " .. b.log,
        "run the command in a terminal to see it, fix what it says, then restart Neovim",
      })
    end
  end
  local cli = native.cli()
  if not cli and b and not b.done then
    h.info("the ai-commit CLI for scheduled backups is being built with the module")
  elseif cli then
    h.ok("ai-commit CLI for scheduled backups: " .. cli)
  else
    h.warn("the ai-commit CLI is not on PATH: commits work, but backups cannot be scheduled after them", {
      native.source_root() and ("build it: `cd %s && cargo build --release --locked -p ai-commit`"):format(native.source_root())
        or "install it (e.g. `cargo install --locked --path <ai-commit checkout>`, or the Nix package)",
    })
  end

  local m, err = native.load(ai._cfg().native)
  if not m and b and not b.done then
    h.info("the module is used as soon as the build ends (no restart needed)")
    return
  elseif not m then
    local why = native.cannot_build()
    h.error(err, why and native.source_root() and { why } or nil)
    return
  end
  h.ok(
    ("native module %s matches the Lua side (boundary protocol %d): %s"):format(
      native.info.version,
      native.info.protocol,
      native.path()
    )
  )

  -- The same checks as `ai-commit doctor`, for the last file buffer (or the cwd).
  local dir = vim.fn.getcwd()
  local alt = vim.fn.bufnr("#")
  if alt > 0 and vim.bo[alt].buftype == "" and vim.api.nvim_buf_get_name(alt) ~= "" then
    dir = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(alt), ":p:h")
  end
  h.start(("ai-commit: Ollama, repository, identity, remote (%s)"):format(dir))
  local res = native.call("doctor", { cwd = dir, settings = require("ai_commit.config").core_settings(ai._cfg()) })
  if not res.ok then
    h.error(res.err)
    return
  end
  local function report(c)
    local text = ("%s: %s"):format(c.name, c.detail)
    local advice = c.advice and #c.advice > 0 and c.advice or nil
    if c.level == "ok" then
      h.ok(text)
    elseif c.level == "warn" then
      h.warn(text, advice)
    else
      h.error(text, advice)
    end
  end
  -- The objects' size and the last compaction get a section of their own.
  local storage = {}
  for _, c in ipairs(res.checks) do
    if c.name == "objects" or c.name == "compaction" then
      table.insert(storage, c)
    else
      report(c)
    end
  end
  local sync = require("ai_commit.sync")
  for root, r in pairs(sync.results()) do
    local ev = r.result
    local text = ("last sync of %s (%s): %s"):format(root, os.date("%Y-%m-%d %H:%M", r.at), sync.describe(ev))
    if ev.ok or ev.quiet then
      h.ok(text)
    else
      h.warn(text)
    end
  end
  if ai._state.prewarm_error then
    h.warn("pre-warming the model failed: " .. ai._state.prewarm_error)
  end
  if #storage > 0 then
    h.start("ai-commit: objects and compaction")
    for _, c in ipairs(storage) do
      report(c)
    end
  end
end

return M
