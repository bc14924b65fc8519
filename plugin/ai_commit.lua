-- Commands and <Plug> mappings; cheap (nothing native is loaded until used).
-- Key mappings (\g, \j) come from require("ai_commit").setup{}.
if vim.g.loaded_ai_commit then
  return
end
vim.g.loaded_ai_commit = 1
-- Neovim 0.7–0.9 get the commands, which say that 0.10 is needed (see
-- lua/ai_commit/init.lua); anything older lacks the API to define them.
if vim.fn.has("nvim-0.7") == 0 then
  return
end

local function ai()
  return require("ai_commit")
end

vim.api.nvim_create_user_command("AICommit", function(o)
  if o.args == "" then
    ai().commit()
  elseif o.args == "all" then
    ai().commit({ all = true })
  else
    vim.notify(("ai-commit: unknown argument %q (use :AICommit or :AICommit all)"):format(o.args), vim.log.levels.ERROR)
  end
end, {
  nargs = "?",
  complete = function()
    return { "all" }
  end,
  desc = "ai-commit: stage this file (or all tracked changes), write the message, commit, push",
})
vim.api.nvim_create_user_command("AICommitCancel", function()
  ai().cancel()
end, { desc = "ai-commit: cancel the running commit" })
vim.api.nvim_create_user_command("AICommitStatus", function()
  ai().status()
end, { desc = "ai-commit: the last run" })
vim.api.nvim_create_user_command("AICommitBackup", function()
  ai().backup()
end, { desc = "ai-commit: run the configured backups now" })
vim.api.nvim_create_user_command("AICommitSync", function()
  ai().sync({ explicit = true })
end, { desc = "ai-commit: fetch and bring this repository up to date with its remote, push what is pending" })
vim.api.nvim_create_user_command("AICommitJournal", function()
  ai().journal()
end, { desc = "ai-commit: insert a new dated journal entry" })

vim.keymap.set("n", "<Plug>(AICommit)", function()
  ai().commit()
end, { desc = "ai-commit: commit this file" })
vim.keymap.set("n", "<Plug>(AICommitJournal)", function()
  ai().journal()
end, { desc = "ai-commit: new journal entry" })
