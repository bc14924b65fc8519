-- Showing a run: the message as it streams (a small float, the command
-- line, or nothing), then one result line through vim.notify.
local M = {}

local function float_open()
  local buf = vim.api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = "wipe"
  local width = math.max(20, math.min(72, vim.o.columns - 4))
  local ok, win = pcall(vim.api.nvim_open_win, buf, false, {
    relative = "editor",
    anchor = "SE",
    row = vim.o.lines - vim.o.cmdheight - 1,
    col = vim.o.columns,
    width = width,
    height = 1,
    style = "minimal",
    border = "rounded",
    title = " ai-commit ",
    focusable = false,
    noautocmd = true,
    zindex = 60,
  })
  if not ok then
    return { buf = buf }
  end
  vim.wo[win].wrap = true
  return { buf = buf, win = win, width = width }
end

--- Start showing a run; returns a handle for update/close.
function M.open(display)
  local h = { display = display, text = "" }
  if display == "float" then
    local f = float_open()
    h.buf, h.win, h.width = f.buf, f.win, f.width
  end
  return h
end

--- Show `text` (the message so far, or a status such as "staging…").
function M.update(h, text)
  if not h then
    return
  end
  h.text = text
  if h.display == "float" and h.win and vim.api.nvim_win_is_valid(h.win) then
    local lines = vim.split(text, "\n", { plain = true })
    pcall(vim.api.nvim_buf_set_lines, h.buf, 0, -1, false, lines)
    local rows = 0
    for _, l in ipairs(lines) do
      rows = rows + math.max(1, math.ceil(vim.fn.strdisplaywidth(l) / h.width))
    end
    pcall(vim.api.nvim_win_set_config, h.win, { height = math.max(1, math.min(rows, 6)) })
  elseif h.display == "cmdline" then
    local line = text:gsub("\n", " ")
    local room = vim.o.columns - 14
    if #line > room then
      line = "…" .. line:sub(-room)
    end
    vim.api.nvim_echo({ { "ai-commit: ", "Comment" }, { line } }, false, {})
  end
end

function M.close(h)
  if h and h.win and vim.api.nvim_win_is_valid(h.win) then
    pcall(vim.api.nvim_win_close, h.win, true)
  end
end

--- Cells a message may use on the command line without raising the
--- hit-enter prompt ("Press ENTER"): a message wider than that, or of more
--- than one line, stops the user, which a keypress that saves a thought
--- must never do.
function M.room()
  local room = vim.v.echospace
  if not room or room <= 0 then
    room = vim.o.columns - 12
  end
  return math.max(20, room - 1)
end

--- `text` on one line, cut to `room` display cells (default: M.room()) with "…".
function M.fit(text, room)
  room = room or M.room()
  text = tostring(text):gsub("%s*\n%s*", "; ")
  if vim.fn.strdisplaywidth(text) <= room then
    return text
  end
  -- Long absolute paths first give way to their last component (words that
  -- start with "/", perhaps quoted; never a URL's "//host/…").
  text = text:gsub("(%S+)", function(word)
    local lead, path = word:match("^([`'\"(]?)(/[^/]%S*)$")
    if path and path:find("/", 2, true) then
      return lead .. "…/" .. path:match("([^/]+/?)$")
    end
  end)
  if vim.fn.strdisplaywidth(text) <= room then
    return text
  end
  local n = vim.fn.strchars(text)
  local cut = math.min(n, room)
  while cut > 0 and vim.fn.strdisplaywidth(vim.fn.strcharpart(text, 0, cut)) > room - 1 do
    cut = cut - 1
  end
  return vim.fn.strcharpart(text, 0, cut) .. "…"
end

--- The one-line result of a finished run (fitted to `room`), and its level.
--- The details (the fallback's and a failed push's reasons in full, the
--- timings) are in :AICommitStatus.
function M.result_line(outcome, room, extra)
  room = room or M.room()
  local short = (outcome.oid or ""):sub(1, 7)
  local subject = (outcome.message or ""):match("^[^\n]*")
  local push = outcome.push or {}
  local level = vim.log.levels.INFO
  local status
  if push.status == "pushed" then
    -- "origin" goes without saying; any other remote is named.
    local to = push.remote == "origin" and "" or (" to " .. push.remote)
    status = push.up_to_date and ("up to date%s"):format(to) or ("pushed%s"):format(to)
  elseif push.status == "failed" then
    status = "NOT pushed"
    level = vim.log.levels.WARN
  else
    status = "not pushed"
  end
  local head = ("[%s %s] "):format(outcome.branch or "HEAD", short)
  -- A reason's first clause; the rest (what to do) is in :AICommitStatus.
  local function gist(reason)
    return ((reason or "?"):gsub(" %(.*", ""):gsub(";.*", ""))
  end
  local notes = {}
  if outcome.source == "fallback" then
    table.insert(notes, "fallback: " .. gist(outcome.reason))
    level = vim.log.levels.WARN
  end
  if push.status == "failed" then
    table.insert(notes, "kept, the next run pushes it: " .. gist(push.reason))
  end
  for _, e in ipairs(extra or {}) do
    table.insert(notes, e)
  end
  local more = #notes > 0 and (" · " .. table.concat(notes, " · ")) or ""
  -- With notes to show, the time gives way (it is in :AICommitStatus).
  local tail = more ~= "" and (" — " .. status) or (" — %s (%.2f s)"):format(status, (outcome.elapsed_ms or 0) / 1000)
  local w = vim.fn.strdisplaywidth
  -- The subject yields first (down to 12 cells), so that the start of the
  -- notes ("fallback: …") stays in view; then the notes are cut.
  local subject_room = math.max(12, room - w(head) - w(tail) - math.min(w(more), 32))
  local line = head .. M.fit(subject, subject_room) .. tail
  line = line .. (more ~= "" and M.fit(more, math.max(1, room - w(line))) or "")
  -- A very narrow window: the whole line is cut, never wrapped.
  return M.fit(line, room), level
end

return M
