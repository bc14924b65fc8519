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

--- The one-line result of a finished run, and its level.
function M.result_line(outcome)
  local short = (outcome.oid or ""):sub(1, 7)
  local subject = (outcome.message or ""):match("^[^\n]*")
  local push = outcome.push or {}
  local where
  if push.status == "pushed" then
    where = push.up_to_date and ("%s up to date"):format(push.remote) or ("pushed to %s"):format(push.remote)
  elseif push.status == "failed" then
    where = "NOT pushed (kept; pushed by the next run): " .. (push.reason or "")
  else
    where = "not pushed"
  end
  local line = ("[%s %s] %s — %s (%.2f s)"):format(
    outcome.branch or "HEAD",
    short,
    subject,
    where,
    (outcome.elapsed_ms or 0) / 1000
  )
  local level = vim.log.levels.INFO
  if outcome.source == "fallback" then
    line = line .. "\nfallback message used: " .. (outcome.reason or "")
    level = vim.log.levels.WARN
  end
  if push.status == "failed" then
    level = vim.log.levels.WARN
  end
  return line, level
end

return M
