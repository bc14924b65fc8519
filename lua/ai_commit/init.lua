-- ai-commit for Neovim: `\g` stages the buffer, a local model writes the
-- message, commits and pushes — off the main loop (see src/nvim/lib.rs).

if vim.fn.has("nvim-0.10") == 0 then
  -- Older Neovims lack what the plugin uses (vim.uv, vim.system, …): every
  -- entry point says so once, instead of failing with a Lua error.
  local said = false
  local function too_old()
    if not said then
      said = true
      local v = vim.version and vim.version() or { major = 0, minor = 0, patch = 0 }
      vim.notify(
        ("ai-commit needs Neovim 0.10 or newer (this is %d.%d.%d): upgrade Neovim"):format(
          v.major,
          v.minor,
          v.patch
        ),
        vim.log.levels.ERROR
      )
    end
    return false
  end
  return setmetatable({}, {
    __index = function(_, key)
      if key == "statusline" then
        return function()
          return ""
        end
      end
      return too_old
    end,
  })
end

local config = require("ai_commit.config")
local native = require("ai_commit.native")
local ui = require("ai_commit.ui")
local repo = require("ai_commit.repo")
local sync = require("ai_commit.sync")

local M = {}

local ensure_native -- defined below (used by setup's deferred load)

local state = {
  cfg = nil, -- resolved options
  runs = {}, -- id → { started, text, ui, events }
  last = nil, -- the last finished run, for :AICommitStatus
  waker_set = false,
  maps = {}, -- mappings we made, to remove on a second setup()
  prewarmed = {},
}

--- Say `msg` on one line that fits the command line (ui.fit): never the
--- hit-enter prompt. Details go to :AICommitStatus and :checkhealth.
local function notify(msg, level)
  vim.notify(ui.fit("ai-commit: " .. msg), level or vim.log.levels.INFO)
end

local function cfg()
  if not state.cfg then
    state.cfg = config.resolve(nil)
  end
  return state.cfg
end

local function map(lhs, rhs, desc)
  if lhs and lhs ~= "" then
    vim.keymap.set("n", lhs, rhs, { desc = desc, silent = true })
    table.insert(state.maps, lhs)
  end
end

--- Configure the plugin; every option is optional. Safe to call again
--- (options and mappings are replaced, nothing is duplicated).
function M.setup(opts)
  local resolved, problems = config.resolve(opts)
  for _, lhs in ipairs(state.maps) do
    pcall(vim.keymap.del, "n", lhs)
  end
  state.maps = {}
  state.cfg = resolved
  if #problems > 0 then
    -- Configuration errors are said in full: they are read once, and fixed.
    vim.notify("ai-commit: setup: " .. table.concat(problems, "; "), vim.log.levels.ERROR)
  end
  if resolved.keymap then
    map(resolved.keymap, "<Plug>(AICommit)", "ai-commit: commit this file")
  end
  if resolved.journal_keymap then
    map(resolved.journal_keymap, "<Plug>(AICommitJournal)", "ai-commit: new journal entry")
  end
  -- Load the native module (~3 ms) just after setup, usually at the end of
  -- startup, rather than inside the first \g: the keypress stays ~2 ms. A
  -- missing module is reported on first use, not here.
  vim.defer_fn(function()
    M._helptags()
    local _, err, kind = ensure_native()
    if err and not state.load_reported then
      state.load_reported = true
      if (kind == "missing" or kind == "stale") and cfg().build and not native.cannot_build() then
        M._build()
      else
        notify(native.short_error(kind), vim.log.levels.WARN)
      end
    end
  end, 0)
  local group = vim.api.nvim_create_augroup("ai_commit", { clear = true })
  if resolved.sync_on_open then
    vim.api.nvim_create_autocmd("BufEnter", {
      group = group,
      callback = function(ev)
        local root = repo.of_buffer(ev.buf)
        if root and sync.first_visit(root) then
          M.sync({ dir = root })
        end
      end,
    })
  end
  if state.sync_timer then
    state.sync_timer:stop()
    state.sync_timer:close()
    state.sync_timer = nil
  end
  if resolved.sync_interval > 0 then
    local ms = math.floor(resolved.sync_interval * 60000)
    state.sync_timer = vim.uv.new_timer()
    state.sync_timer:start(ms, ms, function()
      vim.schedule(function()
        for _, root in ipairs(sync.seen()) do
          M.sync({ dir = root })
        end
      end)
    end)
  end
  if resolved.prewarm then
    vim.api.nvim_create_autocmd("BufEnter", {
      group = group,
      callback = function(ev)
        M._prewarm(ev.buf)
      end,
    })
  end
  return #problems == 0
end

-- Events from the native side, drained on the main loop.
local handlers = {}

function handlers.staged(run)
  ui.update(run.ui, "staged; writing the message…")
end

function handlers.generating(run, ev)
  run.model = ev.model
  ui.update(run.ui, ("asking %s…"):format(ev.model))
end

function handlers.token(run, ev)
  run.text = run.text .. ev.text
  ui.update(run.ui, run.text)
end

function handlers.message(run, ev)
  run.message = ev
  ui.update(run.ui, ev.text)
end

function handlers.review(run, ev)
  ui.close(run.ui)
  M._review(run, ev.text)
end

function handlers.done(run, ev, id)
  ui.close(run.ui)
  state.last = { outcome = ev.outcome, events = run.events }
  state.runs[id] = nil
  local push = ev.outcome.push or {}
  local extra = {}
  if push.synced then
    -- The other machine's commits changed files on disk: reload what is open
    -- (`:checktime N` at once; a bare `:checktime` from Lua is postponed).
    table.insert(extra, "synced first: " .. push.synced)
    repo.reload(run.repo)
  end
  local backup_warning = ev.outcome.backup and ev.outcome.backup:find("not scheduled", 1, true)
  if backup_warning then
    -- A backup that silently does not happen is a loss waiting to happen.
    table.insert(extra, ev.outcome.backup)
  end
  local line, level = ui.result_line(ev.outcome, ui.room(), extra)
  if backup_warning then
    level = math.max(level, vim.log.levels.WARN)
  end
  vim.notify(line, level)
end

function handlers.error(run, ev, id)
  ui.close(run.ui)
  if run.review_buf and vim.api.nvim_buf_is_valid(run.review_buf) then
    pcall(vim.api.nvim_buf_delete, run.review_buf, { force = true })
  end
  state.last = { error = ev, events = run.events }
  state.runs[id] = nil
  local level = vim.log.levels.ERROR
  if ev.kind == "cancelled" then
    -- The user's own doing: said, not alarmed about.
    level = vim.log.levels.INFO
    ev.message = "commit cancelled; your changes stay staged"
  elseif ev.kind == "nothing_to_commit" or ev.kind == "empty_message" then
    level = vim.log.levels.WARN
  end
  notify(ev.message, level)
end

local function drain()
  local events = native.call("drain")
  if type(events) ~= "table" then
    return
  end
  for _, ev in ipairs(events) do
    local run = state.runs[ev.id]
    if ev.id == 0 then
      if ev.type == "sync_done" then
        sync.done(ev, notify)
      elseif ev.type == "preload_failed" then
        state.prewarm_error = ev.reason
      elseif ev.type == "backup_done" then
        M._backup_done(ev.state)
      end
    elseif run then
      table.insert(run.events, ev.type)
      local h = handlers[ev.type]
      if h then
        h(run, ev, ev.id)
      end
    end
  end
end

function ensure_native()
  local m, err, kind = native.load(cfg().native)
  if not m then
    return nil, err, kind
  end
  if not state.waker_set then
    m.set_waker(drain)
    state.waker_set = true
  end
  return m
end

--- Commit the current buffer's file (or, with { all = true }, every tracked change).
function M.commit(opts)
  opts = opts or {}
  local c = cfg()
  local buf = vim.api.nvim_get_current_buf()
  local path = vim.api.nvim_buf_get_name(buf)
  if not opts.all then
    if vim.bo[buf].buftype ~= "" then
      notify(("this is a %s buffer, not a file; open the file to commit"):format(vim.bo[buf].buftype), vim.log.levels.WARN)
      return
    end
    if path == "" then
      notify("this buffer has no file name; save it first (:w name)", vim.log.levels.WARN)
      return
    end
    if c.save and vim.bo[buf].modified then
      -- Outside any repository nothing happens, not even the write.
      if not repo.root(vim.fn.fnamemodify(path, ":p:h")) then
        notify(("%s is not inside a git repository; create one with `ai-commit init`"):format(path), vim.log.levels.ERROR)
        return
      end
      local ok, err = pcall(vim.cmd, "silent write")
      if not ok then
        notify("could not save the buffer, nothing committed: " .. tostring(err), vim.log.levels.ERROR)
        return
      end
    end
  end
  -- :AICommit all works on the current buffer's repository (the working
  -- directory only for a buffer that is not a file), like \g does.
  local dir = M._dir()
  if opts.all and c.save then
    local ok, err = repo.save_buffers(dir)
    if not ok then
      notify("could not save a buffer, nothing committed: " .. tostring(err), vim.log.levels.ERROR)
      return
    end
  end
  local _, err, kind = ensure_native()
  if err then
    M._native_unavailable(kind)
    return
  end
  local res = native.call("start", {
    cli = native.cli(),
    path = (not opts.all) and path or nil,
    all = opts.all or false,
    cwd = dir,
    review = c.review,
    dry_run = opts.dry_run or false,
    settings = config.core_settings(c),
  })
  if not res.ok then
    if res.kind == "busy" then
      if c.on_busy == "cancel" then
        native.call("cancel", tostring(res.id))
        notify("cancelled the running commit", vim.log.levels.WARN)
      else
        notify(res.err .. " (:AICommitCancel stops it)", vim.log.levels.WARN)
      end
    else
      notify(res.err, vim.log.levels.ERROR)
    end
    return
  end
  state.runs[res.id] = {
    id = res.id,
    repo = tostring(res.repo):gsub("/$", ""),
    started = vim.uv.hrtime(),
    text = "",
    events = {},
    ui = ui.open(c.display),
  }
  ui.update(state.runs[res.id].ui, "staging…")
end

--- Cancel every run in flight (nothing is committed; changes stay staged).
function M.cancel()
  local any = false
  for id in pairs(state.runs) do
    native.call("cancel", tostring(id))
    any = true
  end
  if not any then
    notify("nothing is running")
  end
end

--- The last run, for :AICommitStatus (and for tests).
function M.last()
  return state.last
end

function M.running()
  return next(state.runs) ~= nil
end

--- For a statusline: "ai-commit: gemma3…" while a run is in flight (or the
--- module builds), else "".
function M.statusline()
  for _, run in pairs(state.runs) do
    return "ai-commit: " .. (run.model or "staging") .. "…"
  end
  local b = native.build_state()
  if b and not b.done then
    return ("ai-commit: building (%d crates)…"):format(b.crates)
  end
  return ""
end

--- Say, on one line, why nothing can run yet.
function M._native_unavailable(kind)
  local b = native.build_state()
  if b and not b.done then
    notify(
      ("the native module is still building (%d crate%s so far); press again when it is done"):format(
        b.crates,
        b.crates == 1 and "" or "s"
      ),
      vim.log.levels.WARN
    )
  else
    notify(native.short_error(kind), vim.log.levels.ERROR)
  end
end

--- Build the native module in the background (a source checkout whose
--- module is missing or stale); say when it starts and how it ended.
function M._build()
  -- Progress where a run's message streams (float, command line, or not at all).
  local shown = ui.open(cfg().display)
  local started = native.build(function(b)
    ui.close(shown)
    if b.ok then
      local m = ensure_native()
      if m then
        notify(("native module built in %.0f s; ready"):format(b.seconds))
      else
        notify("native module built, but " .. native.short_error(native.load_kind), vim.log.levels.ERROR)
      end
    else
      notify(("building the native module failed (exit %s); :checkhealth ai_commit shows why"):format(b.code), vim.log.levels.ERROR)
    end
  end, function(b)
    ui.update(shown, ("building the native module: %d crates (%s)…"):format(b.crates, b.crate or ""))
  end)
  if not started then
    ui.close(shown)
  end
  if started then
    notify("building its native module in the background (a few minutes)")
  end
  return started
end

--- :help ai-commit without a manual :helptags (lazy.nvim makes no tags for
--- a `dir` plugin, a plain checkout has none): made when missing or older
--- than the help file, where the plugin directory is writable.
function M._helptags()
  local source = debug.getinfo(1, "S").source:sub(2)
  local doc = vim.fn.fnamemodify(source, ":p:h:h:h") .. "/doc"
  local txt = vim.uv.fs_stat(doc .. "/ai-commit.txt")
  if not txt then
    return
  end
  local tags = vim.uv.fs_stat(doc .. "/tags")
  if tags and tags.mtime.sec >= txt.mtime.sec then
    return
  end
  if vim.fn.filewritable(doc) == 2 then
    pcall(vim.cmd.helptags, vim.fn.fnameescape(doc))
  end
end

local function backup_lines(st)
  local lines = {}
  for _, r in ipairs(st.results or {}) do
    table.insert(lines, ("  %-7s %s: %s"):format(r.status, r.target, r.detail))
  end
  return lines
end

function M.status()
  local last = state.last
  local lines = {}
  if not last then
    table.insert(lines, { "no commit yet in this session\n" })
  elseif last.error then
    table.insert(lines, { ("error (%s): %s"):format(last.error.kind, last.error.message), "ErrorMsg" })
  else
    local o = last.outcome
    local t = o.timings or {}
    table.insert(lines, { ("commit   %s on %s\n"):format(o.oid or "-", o.branch or "?") })
    table.insert(lines, { ("message  %s\n"):format(o.message) })
    if o.source == "fallback" then
      table.insert(lines, { ("source   fallback: %s\n"):format(o.reason), "WarningMsg" })
    else
      table.insert(lines, { ("source   %s\n"):format(o.source == "model" and ("model " .. o.model) or "you") })
    end
    local p = o.push or {}
    table.insert(lines, {
      ("push     %s\n"):format(
        p.status == "pushed"
            and ("pushed to %s (%d commit%s)"):format(p.remote, p.commits or 0, p.commits == 1 and "" or "s")
          or p.status == "failed" and ("NOT pushed: " .. p.reason)
          or "off"
      ),
      p.status == "failed" and "WarningMsg" or nil,
    })
    if p.synced then
      table.insert(lines, { ("synced   %s\n"):format(p.synced) })
    end
    if o.backup then
      table.insert(lines, { ("backup   %s\n"):format(o.backup) })
    end
    table.insert(lines, {
      ("time     %.0f ms (stage %.0f, diff %.0f, model %.0f, commit %.0f, push %.0f)"):format(
        o.elapsed_ms or 0,
        t.stage_ms or 0,
        t.diff_ms or 0,
        t.model_ms or 0,
        t.commit_ms or 0,
        t.push_ms or 0
      ),
    })
  end
  for root, r in pairs(sync.results()) do
    table.insert(lines, {
      ("\nsync     %s %s: %s\n"):format(os.date("%H:%M", r.at), root, sync.describe(r.result)),
      (not r.result.ok and not r.result.quiet) and "WarningMsg" or nil,
    })
  end
  local m, load_err = ensure_native()
  local b = native.build_state()
  if b then
    local how = not b.done and ("running (%d crates so far)"):format(b.crates)
      or b.ok and ("done in %.0f s"):format(b.seconds)
      or ("FAILED (exit %s); log: %s"):format(b.code, b.log)
    table.insert(lines, { ("\nbuild    %s: %s\n"):format(table.concat(native.BUILD, " "), how) })
  end
  if not m and b and not b.done then
    table.insert(lines, { "\nmodule   being built; used as soon as the build ends\n" })
  elseif not m then
    table.insert(lines, { "\nmodule   " .. load_err .. "\n", "ErrorMsg" })
  else
    local bs = native.call("backup_status", { cwd = M._dir() })
    if bs.ok and bs.state and (bs.state.finished or 0) > 0 then
      table.insert(lines, { ("\nbackup   last run %s\n"):format(os.date("%Y-%m-%d %H:%M", bs.state.finished)) })
      for _, l in ipairs(backup_lines(bs.state)) do
        table.insert(lines, { l .. "\n" })
      end
    end
  end
  vim.api.nvim_echo(lines, true, {})
end

--- Run the configured backups now (in the background); report when done.
function M.backup()
  local _, err, kind = ensure_native()
  if err then
    M._native_unavailable(kind)
    return
  end
  local res = native.call("backup", { cwd = M._dir(), settings = config.core_settings(cfg()) })
  if not res.ok then
    notify(res.err, vim.log.levels.ERROR)
    return
  end
  notify("backup started")
end

function M._backup_done(st)
  local level = vim.log.levels.INFO
  for _, r in ipairs(st.results or {}) do
    if r.status == "failed" then
      level = vim.log.levels.ERROR
    elseif r.status == "skipped" and level == vim.log.levels.INFO then
      level = vim.log.levels.WARN
    end
  end
  local count, order = {}, {}
  for _, r in ipairs(st.results or {}) do
    if not count[r.status] then
      table.insert(order, r.status)
    end
    count[r.status] = (count[r.status] or 0) + 1
  end
  local parts = {}
  for _, k in ipairs(order) do
    table.insert(parts, ("%d %s"):format(count[k], k))
  end
  notify(("backup finished: %s (details: :AICommitStatus)"):format(table.concat(parts, ", ")), level)
end

--- The directory of the current file buffer, else the working directory.
function M._dir()
  local name = vim.api.nvim_buf_get_name(0)
  if vim.bo.buftype == "" and name ~= "" then
    return vim.fn.fnamemodify(name, ":p:h")
  end
  return vim.fn.getcwd()
end

function M.journal()
  require("ai_commit.journal").insert(cfg().journal)
end

-- Review mode: the message in a scratch buffer; :w commits it. Every other
-- way of leaving it (:q, :q!, :bd, :close, another buffer in its window,
-- :AICommitCancel) cancels the run: nothing committed, changes stay staged.
function M._review(run, text)
  local buf = vim.api.nvim_create_buf(false, true)
  run.review_buf = buf
  vim.api.nvim_buf_set_name(buf, ("ai-commit://review/%d"):format(run.id or 0))
  vim.bo[buf].buftype = "acwrite"
  -- Hidden is gone: a buffer that lingered hidden would keep the run waiting.
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].filetype = "gitcommit"
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(text, "\n", { plain = true }))
  vim.bo[buf].modified = false
  local answered = false
  local function answer(msg)
    if answered then
      return
    end
    answered = true
    native.call("reply", { id = run.id, text = msg })
  end
  vim.api.nvim_create_autocmd("BufWriteCmd", {
    buffer = buf,
    callback = function()
      -- An empty message is sent as such (the run reports it); only leaving
      -- without :w is an abort.
      answer(table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n"))
      vim.bo[buf].modified = false
      vim.schedule(function()
        pcall(vim.api.nvim_buf_delete, buf, { force = true })
      end)
    end,
  })
  vim.api.nvim_create_autocmd({ "BufWipeout", "BufUnload", "BufHidden" }, {
    buffer = buf,
    once = true,
    callback = function()
      answer(vim.NIL)
      vim.schedule(function()
        pcall(vim.api.nvim_buf_delete, buf, { force = true })
      end)
    end,
  })
  vim.cmd("botright split")
  vim.api.nvim_win_set_buf(0, buf)
  vim.api.nvim_win_set_height(0, math.max(3, math.min(12, #vim.api.nvim_buf_get_lines(buf, 0, -1, false) + 1)))
  local m = run.message or {}
  if m.source == "fallback" then
    -- Said before the commit, not after: the message is not the model's.
    notify("fallback message (" .. tostring(m.reason) .. "); :w commits it, :q cancels", vim.log.levels.WARN)
  else
    notify(":w commits this message, :q cancels")
  end
end

--- Reconcile a repository with its remote in the background (see
--- lua/ai_commit/sync.lua); `opts.dir` defaults to the current buffer's.
function M.sync(opts)
  opts = opts or {}
  if not ensure_native() then
    if opts.explicit then
      M._native_unavailable(native.load_kind)
    end
    return
  end
  sync.start(opts.dir or M._dir(), opts.explicit, notify)
end

function M._prewarm(buf)
  if vim.bo[buf].buftype ~= "" then
    return
  end
  local name = vim.api.nvim_buf_get_name(buf)
  if name == "" then
    return
  end
  local dir = vim.fn.fnamemodify(name, ":p:h")
  if state.prewarmed[dir] then
    return
  end
  state.prewarmed[dir] = true
  if not ensure_native() then
    return
  end
  -- Only for files in a repository: the native side finds out off the main loop.
  native.call("preload", { cwd = dir, settings = config.core_settings(cfg()) })
end

-- For tests and :checkhealth.
M._state = state
M._ensure_native = ensure_native
M._cfg = cfg

return M
