-- :AICommitJournal — a new dated entry below the marker line (newest first),
-- or at the top when there is no marker; the cursor ends in insert mode in
-- the entry's body (the template's last line).
local M = {}

function M.insert(opts)
  local buf = vim.api.nvim_get_current_buf()
  if not vim.bo[buf].modifiable then
    vim.notify("ai-commit: this buffer is not modifiable", vim.log.levels.WARN)
    return
  end
  local entry = vim.split(os.date(opts.template), "\n", { plain = true })
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local marker
  for i, line in ipairs(lines) do
    if vim.trim(line) == vim.trim(opts.marker) then
      marker = i
      break
    end
  end
  local body_row -- 1-based
  if marker then
    -- marker, blank line, entry…, then the older entries.
    vim.api.nvim_buf_set_lines(buf, marker, marker, false, vim.list_extend({ "" }, entry))
    body_row = marker + 1 + #entry
  elseif #lines == 1 and lines[1] == "" then
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, entry)
    body_row = #entry
  else
    -- At the top, with a blank line before the older text.
    vim.api.nvim_buf_set_lines(buf, 0, 0, false, vim.list_extend(vim.deepcopy(entry), { "" }))
    body_row = #entry
  end
  vim.api.nvim_win_set_cursor(0, { body_row, #entry[#entry] })
  vim.cmd("startinsert!")
end

return M
