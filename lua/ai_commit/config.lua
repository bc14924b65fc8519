-- Options of require("ai_commit").setup{}: validated by name and type.
-- Keys shared with the CLI and config.toml are passed to the core only when
-- set here, so config.toml / AI_COMMIT_* still apply underneath (setup{} is
-- the top layer, like CLI flags).
local M = {}

-- Shared with the CLI and config.toml (see :help ai-commit-config).
M.core_keys = {
  model = "string",
  host = "string",
  timeout = "number",
  connect_timeout = "number",
  first_token_timeout = "number",
  push = "boolean",
  fallback_message = "string",
  prompt = "string",
  prompt_kind = "string",
  temperature = "number",
  num_ctx = "number",
  num_predict = "number",
  keep_alive = "string",
  max_subject = "number",
  body = "boolean",
  verify = "boolean",
  journal_budget = "number",
  stop = "table",
}

M.defaults = {
  keymap = "<leader>g", -- false: no mapping (use <Plug>(AICommit))
  journal_keymap = "<leader>j", -- false: no mapping (use <Plug>(AICommitJournal))
  display = "float", -- how the message streams: "float" | "cmdline" | "none"
  review = false, -- open the message for editing before committing
  on_busy = "notify", -- a press while a run is in flight: "notify" | "cancel"
  save = true, -- write the buffer before committing it
  prewarm = false, -- load the model when a buffer in a repository is entered
  journal = {
    marker = "# Beginning of Notes", -- entries go right below it, newest first
    template = "## %Y-%m-%d %H:%M\n\n", -- strftime; the cursor ends on its last line
  },
  native = nil, -- path of the native module (default: found next to the plugin)
  build = true, -- in a source checkout, build a missing or stale native module in the background
  sync_on_open = true, -- reconcile a repository with its remote when a buffer of it is first entered
  sync_interval = 0, -- minutes between background syncs of the repositories seen (0: off)
}

local local_types = {
  keymap = { "string", "boolean" },
  journal_keymap = { "string", "boolean" },
  display = { "string" },
  review = { "boolean" },
  on_busy = { "string" },
  save = { "boolean" },
  prewarm = { "boolean" },
  journal = { "table" },
  native = { "string" },
  build = { "boolean" },
  sync_on_open = { "boolean" },
  sync_interval = { "number" },
}

local choices = {
  display = { float = true, cmdline = true, none = true },
  on_busy = { notify = true, cancel = true },
  prompt_kind = { auto = true, journal = true, code = true },
}

local function type_ok(value, allowed)
  for _, t in ipairs(allowed) do
    if type(value) == t then
      return true
    end
  end
  return false
end

--- Merge `opts` over the defaults. Returns the config and a list of problems
--- (each naming the option); bad options are left out, the rest apply.
function M.resolve(opts)
  local cfg = vim.deepcopy(M.defaults)
  local problems = {}
  if opts == nil then
    return cfg, problems
  end
  if type(opts) ~= "table" then
    return cfg, { ("setup() takes a table of options, got %s"):format(type(opts)) }
  end
  for key, value in pairs(opts) do
    local allowed = local_types[key] or (M.core_keys[key] and { M.core_keys[key] })
    if key == "backup" or key == "compaction" then
      -- The detached jobs (`ai-commit backup|compact --scheduled`) read
      -- config.toml themselves; a value given here would not reach them.
      table.insert(
        problems,
        ("option %q belongs in config.toml ([%s]): the background job reads it there"):format(key, key)
      )
    elseif not allowed then
      table.insert(problems, ("unknown option %q"):format(tostring(key)))
    elseif not type_ok(value, allowed) then
      table.insert(problems, ("option %q must be %s, got %s"):format(key, table.concat(allowed, " or "), type(value)))
    elseif choices[key] and not choices[key][value] then
      local names = vim.tbl_keys(choices[key])
      table.sort(names)
      table.insert(problems, ("option %q must be one of %s, got %q"):format(key, table.concat(names, ", "), value))
    elseif key == "keymap" or key == "journal_keymap" then
      if value == true then
        table.insert(problems, ("option %q must be a key sequence or false"):format(key))
      else
        cfg[key] = value
      end
    elseif key == "journal" then
      for k, v in pairs(value) do
        if (k == "marker" or k == "template") and type(v) == "string" then
          cfg.journal[k] = v
        else
          table.insert(problems, ("unknown or bad option journal.%s"):format(tostring(k)))
        end
      end
    else
      cfg[key] = value
    end
  end
  return cfg, problems
end

--- The settings for the core (only the shared keys that were set).
function M.core_settings(cfg)
  local s = vim.empty_dict() -- encodes as {} even when no key is set
  for key in pairs(M.core_keys) do
    if cfg[key] ~= nil then
      s[key] = cfg[key]
    end
  end
  return s
end

return M
