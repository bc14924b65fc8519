-- Repositories as the Lua side sees them: work trees found from paths with
-- a few stat calls (vim.fs.root), and the buffers that belong to them.
local M = {}

--- The work tree holding directory `dir`, or nil.
function M.root(dir)
  return vim.fs.root(dir, ".git")
end

--- The work tree holding file buffer `buf`, or nil (not a file, no name,
--- not in a repository).
function M.of_buffer(buf)
  if vim.bo[buf].buftype ~= "" then
    return nil
  end
  local name = vim.api.nvim_buf_get_name(buf)
  if name == "" then
    return nil
  end
  return M.root(vim.fn.fnamemodify(name, ":p:h"))
end

--- The loaded file buffers inside work tree `root`: all, and the modified.
function M.buffers(root)
  local all, modified = {}, {}
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    local name = vim.api.nvim_buf_get_name(b)
    if
      vim.api.nvim_buf_is_loaded(b)
      and vim.bo[b].buftype == ""
      and name ~= ""
      and name:sub(1, #root + 1) == root .. "/"
    then
      table.insert(all, b)
      if vim.bo[b].modified then
        table.insert(modified, b)
      end
    end
  end
  return all, modified
end

--- Write every modified file buffer of the work tree holding `dir` (what
--- `:AICommit all` is about to commit). Returns false and why on a failure.
function M.save_buffers(dir)
  local root = M.root(dir)
  if not root then
    return true -- not a repository: the run says so
  end
  local _, modified = M.buffers(root)
  for _, b in ipairs(modified) do
    local ok, err = pcall(vim.api.nvim_buf_call, b, function()
      vim.cmd("silent write")
    end)
    if not ok then
      return false, ("%s: %s"):format(vim.api.nvim_buf_get_name(b), err)
    end
  end
  return true
end

--- Reload the unmodified buffers of `root` whose files changed on disk
--- (`:checktime N` acts at once; a bare `:checktime` from Lua is postponed).
function M.reload(root)
  local all = M.buffers(root)
  for _, b in ipairs(all) do
    if not vim.bo[b].modified then
      pcall(vim.cmd, "checktime " .. b)
    end
  end
end

return M
