-- Keeping a repository current with its remote from Neovim (several
-- machines, one journal): the native `sync` runs off the main loop; this
-- side decides when (first visit, :AICommitSync, a timer), keeps unsaved
-- text safe (a repository with a modified buffer is only fetched), reloads
-- what changed, and remembers the last result per work tree.
local native = require("ai_commit.native")
local repo = require("ai_commit.repo")

local M = {}

local visited = {} -- work tree → true once synced on first visit
local results = {} -- work tree → { at, result }
local explicit = {} -- work tree → true while a :AICommitSync is running
local said = {} -- notes said once per session

--- True the first time `root` is visited in this session.
function M.first_visit(root)
  if visited[root] then
    return false
  end
  visited[root] = true
  return true
end

--- The work trees visited so far (for the timer).
function M.seen()
  return vim.tbl_keys(visited)
end

function M.results()
  return results
end

--- One line for a result (for :AICommitStatus and :checkhealth).
function M.describe(ev)
  if not ev.ok then
    return ev.err
  end
  if ev.fetch_only then
    return "fetched only (unsaved buffers): " .. ev.text
  end
  return ev.text
end

--- Start a sync of the repository holding `dir`; `notify(msg, level)` says
--- things on one line. The answer comes to M.done.
function M.start(dir, is_explicit, notify)
  local root = repo.root(dir) or dir
  local _, modified = repo.buffers(root)
  visited[root] = true
  local res = native.call("sync", { cwd = dir, fetch_only = #modified > 0 })
  if res.ok then
    explicit[tostring(res.repo):gsub("/$", "")] = is_explicit or nil
  elseif is_explicit then
    notify(res.err, res.kind == "busy" and vim.log.levels.WARN or vim.log.levels.ERROR)
  end
end

local function say_once(notify, key, msg, level)
  if not said[key] then
    said[key] = true
    notify(msg, level)
  end
end

--- A `sync_done` event from the native side.
function M.done(ev, notify)
  local root = tostring(ev.repo or "?"):gsub("/$", "")
  results[root] = { at = os.time(), result = ev }
  local asked = explicit[root]
  explicit[root] = nil
  if not ev.ok then
    -- An unmounted disk or no remote is a note; a conflict or a blocked
    -- update is worth a warning — once, unless asked for.
    local level = ev.quiet and vim.log.levels.INFO or vim.log.levels.WARN
    if asked then
      notify("sync: " .. ev.err, level)
    else
      say_once(notify, "failed:" .. root .. tostring(ev.quiet), "sync: " .. ev.err, level)
    end
    return
  end
  if ev.fetch_only then
    if (ev.behind or 0) > 0 then
      say_once(
        notify,
        "waiting:" .. root,
        ("%d new commit(s) on the remote wait: a buffer here has unsaved changes; \\g brings them in"):format(
          ev.behind
        )
      )
    elseif asked then
      notify("sync: up to date (fetched only: unsaved buffers here)")
    end
    return
  end
  if ev.changed then
    repo.reload(root)
    notify("synced: " .. ev.text)
  elseif asked then
    notify("sync: " .. ev.text)
  end
  if ev.push and ev.push.status == "failed" then
    say_once(notify, "push:" .. root, "sync: not pushed: " .. ev.push.reason, vim.log.levels.WARN)
  end
end

return M
