-- Finding, loading and calling the native module (ai_commit_native).
--
-- It is loaded on first use, not at setup (so setup stays cheap), from, in
-- order: the `native` option, $AI_COMMIT_NATIVE, <plugin>/lua/ai_commit_native.so
-- (where the build step and the Nix package put it), then cargo's
-- target/release and target/debug. Every call goes through JSON strings; the
-- module never raises (see src/nvim/lib.rs).
local M = {}

local mod, load_error, loaded_from

local function plugin_root()
  local source = debug.getinfo(1, "S").source:sub(2)
  return vim.fn.fnamemodify(source, ":p:h:h:h")
end

local function lib_names()
  if vim.fn.has("win32") == 1 then
    return { "ai_commit_native.dll" }
  end
  -- Lua looks for .so even on macOS; cargo writes .dylib there.
  return { "libai_commit_native.so", "libai_commit_native.dylib" }
end

function M.candidates(explicit)
  local list = {}
  if explicit then
    table.insert(list, explicit)
  elseif vim.env.AI_COMMIT_NATIVE and vim.env.AI_COMMIT_NATIVE ~= "" then
    table.insert(list, vim.env.AI_COMMIT_NATIVE)
  else
    local root = plugin_root()
    table.insert(list, root .. "/lua/ai_commit_native.so")
    for _, profile in ipairs({ "release", "debug" }) do
      for _, name in ipairs(lib_names()) do
        table.insert(list, ("%s/target/%s/%s"):format(root, profile, name))
      end
    end
  end
  return list
end

--- The version of the boundary with the module: must equal `PROTOCOL` in
--- src/nvim/lib.rs (bump both when a function, argument or event changes).
--- A module that reports another one was built from other sources, e.g. left
--- over from before a `git pull`, and is refused.
M.PROTOCOL = 5

local function basename(path)
  return vim.fn.fnamemodify(path, ":t")
end

--- The plugin's name in lazy.nvim (its spec's `name`), when lazy.nvim
--- manages it; else the directory's name, which lazy.nvim would use.
local function lazy_name(root)
  local lazy = package.loaded["lazy.core.config"]
  for name, p in pairs(lazy and lazy.plugins or {}) do
    if p.dir and vim.fs.normalize(p.dir) == root then
      return name
    end
  end
  return basename(root)
end

--- The step that will really (re)build the module, for where it was (or
--- would be) loaded from. A loaded library cannot be replaced in a running
--- Neovim, hence "restart" after a rebuild.
function M.build_hint(path)
  local root = plugin_root()
  local dir = root:find("^[%w/._+-]+$") and root or vim.fn.shellescape(root)
  local cargo = ("cd %s && %s"):format(dir, table.concat(M.BUILD, " "))
  local lazy = ("lazy.nvim: `:Lazy build %s`"):format(lazy_name(root))
  if path and path:find("^/nix/store/") then
    return "the plugin and its module come from different Nix builds: rebuild your configuration "
      .. "(`home-manager switch` or `nixos-rebuild switch`), then restart Neovim"
  elseif path == nil or path:find(root .. "/target/", 1, true) == 1 then
    local debug = path and path:find("/target/debug/", 1, true)
    if debug then
      cargo = cargo:gsub(" %-%-release", "")
    end
    return ("build it: `%s` (%s), then restart Neovim"):format(cargo, lazy)
  elseif path == root .. "/lua/ai_commit_native.so" then
    return ("rebuild it: `%s && install -m 755 target/release/libai_commit_native.so lua/ai_commit_native.so`, then restart Neovim"):format(
      cargo
    )
  end
  -- Named by the `native` option or $AI_COMMIT_NATIVE.
  return ("rebuild it from the same ai-commit sources as this plugin (`%s`) and point the `native` option "
    .. "or $AI_COMMIT_NATIVE at its target/release/libai_commit_native.so (or unset them), then restart Neovim"):format(cargo)
end

-- Paths already handed to dlopen in this Neovim: opening one again returns
-- the library loaded first (glibc matches by name), so a rebuilt module at
-- that path is loaded from a fresh copy instead.
local opened = {}
-- Fresh copies made off the main loop (after a build) for such paths.
local staged = {}

local function cache_copy_path()
  local dir = vim.fn.stdpath("cache") .. "/ai-commit"
  vim.fn.mkdir(dir, "p")
  return ("%s/ai_commit_native-%d.so"):format(dir, vim.uv.hrtime())
end

local function open(path)
  local target = path
  if staged[path] then
    target, staged[path] = staged[path], nil
  elseif opened[path] then
    target = cache_copy_path()
    local ok, err = vim.uv.fs_copyfile(path, target)
    if not ok then
      return nil, ("cannot copy %s to %s: %s"):format(path, target, tostring(err))
    end
  end
  opened[path] = true
  local loader, err = package.loadlib(target, "luaopen_ai_commit_native")
  if not loader then
    return nil, err
  end
  local ok, m = pcall(loader)
  if not ok or type(m) ~= "table" or type(m.info) ~= "function" then
    return nil, "it failed to start: " .. tostring(m)
  end
  return m
end

--- Copy `from` to `to` off the main loop (a module can be ~100 MB with
--- debug info); `done(ok)` runs on the main loop.
local function copy_async(from, to, done)
  local ok = pcall(vim.uv.fs_copyfile, from, to, function(err)
    vim.schedule(function()
      done(not err)
    end)
  end)
  if not ok then
    done(false)
  end
end

--- The loaded module, or nil, why not (in full) and what went wrong
--- ("missing", "stale", "broken", "neovim").
function M.load(explicit)
  if mod or load_error then
    return mod, load_error, M.load_kind
  end
  local function fail(kind, err)
    load_error, M.load_kind = err, kind
    return nil, err, kind
  end
  if vim.fn.has("nvim-0.10") == 0 then
    return fail("neovim", "Neovim 0.10 or newer is needed; upgrade Neovim (or use the ai-commit command line tool)")
  end
  local tried, stale = {}, nil
  for _, path in ipairs(M.candidates(explicit)) do
    if vim.uv.fs_stat(path) then
      local m, err = open(path)
      if not m then
        return fail("broken", ("cannot load the native module %s: %s; %s"):format(path, err, M.build_hint(path)))
      end
      -- `info` keeps its shape in every version: a string in, JSON out.
      local info_ok, info = pcall(vim.json.decode, m.info(""))
      if not info_ok or type(info) ~= "table" then
        info = {}
      end
      -- Modules from before the protocol existed report none: they are 1.
      local protocol = tonumber(info.protocol) or 1
      if protocol == M.PROTOCOL then
        mod, loaded_from, M.info = m, path, info
        return mod
      end
      -- A later candidate may be current (e.g. target/debug of a developer).
      stale = stale
        or (
          "the native module %s is out of date (boundary protocol %d, this plugin needs %d): "
          .. "it was built from other sources than this plugin, e.g. before a `git pull`; %s"
        ):format(path, protocol, M.PROTOCOL, M.build_hint(path))
    end
    table.insert(tried, path)
  end
  if stale then
    return fail("stale", stale)
  end
  return fail(
    "missing",
    ("the native module was not found (looked in: %s); %s"):format(
      table.concat(tried, ", "),
      M.build_hint(explicit or vim.env.AI_COMMIT_NATIVE ~= "" and vim.env.AI_COMMIT_NATIVE or nil)
    )
  )
end

--- One line for a failed load: the full text is in :checkhealth ai_commit.
function M.short_error(kind)
  if kind == "stale" then
    return "native module out of date; see :checkhealth ai_commit"
  elseif kind == "missing" then
    return "native module not built; see :checkhealth ai_commit"
  elseif kind == "neovim" then
    return "Neovim 0.10 or newer is needed"
  end
  return "native module cannot be loaded; see :checkhealth ai_commit"
end

-- Building the module in the background, in a source checkout (a lazy.nvim
-- `dir` plugin, a plain clone: lazy.nvim runs no `build` for those). The CLI
-- is built with it: the plugin schedules backups through it.
M.BUILD = { "cargo", "build", "--release", "--locked", "-p", "ai-commit-nvim", "-p", "ai-commit" }

local building -- { started, crates, done, ok, log, code }

--- The plugin directory when it is a source checkout (it can build itself).
function M.source_root()
  local root = plugin_root()
  if vim.uv.fs_stat(root .. "/Cargo.toml") and vim.uv.fs_stat(root .. "/src/nvim/Cargo.toml") then
    return root
  end
end

--- Why the module cannot be built here, or nil.
function M.cannot_build()
  if not M.source_root() then
    return "the plugin is not a source checkout"
  end
  if vim.fn.executable(M.BUILD[1]) == 0 then
    return "cargo is not installed: install Rust (https://rustup.rs), then restart Neovim"
  end
end

function M.build_state()
  return building
end

--- Start building; `on_done(state)` runs on the main loop when it ends,
--- `on_progress(state)` (optional) as crates are compiled. Never blocks:
--- cargo runs as a job; its progress is counted from stderr.
function M.build(on_done, on_progress)
  if building and not building.done then
    return false, "already building"
  end
  local why = M.cannot_build()
  if why then
    return false, why
  end
  local root = M.source_root()
  local log = vim.fn.stdpath("log") .. "/ai-commit-build.log"
  building = { started = vim.uv.hrtime(), crates = 0, log = log, root = root }
  local state, lines = building, {}
  local ok, err = pcall(vim.system, M.BUILD, {
    cwd = root,
    text = true,
    stderr = function(_, data)
      if data then
        for line in data:gmatch("[^\n]+") do
          if line:find("^%s*Compiling ") then
            state.crates = state.crates + 1
            state.crate = line:match("Compiling%s+(%S+)")
            if on_progress then
              vim.schedule(function()
                if not state.done then
                  on_progress(state)
                end
              end)
            end
          end
          table.insert(lines, line)
        end
      end
    end,
  }, function(res)
    vim.schedule(function()
      state.done, state.ok, state.code = true, res.code == 0, res.code
      state.seconds = (vim.uv.hrtime() - state.started) / 1e9
      vim.fn.mkdir(vim.fn.fnamemodify(log, ":h"), "p")
      pcall(vim.fn.writefile, vim.list_extend({ "$ " .. table.concat(M.BUILD, " ") .. "  (in " .. root .. ")" }, lines), log)
      if not state.ok then
        on_done(state)
        return
      end
      mod, load_error, M.load_kind = nil, nil, nil
      local built = root .. "/target/release/libai_commit_native.so"
      -- A stale module loaded from the same path needs a fresh copy to load
      -- the new one (made here, off the main loop).
      local function stage()
        if not opened[built] then
          on_done(state)
          return
        end
        local target = cache_copy_path()
        copy_async(built, target, function(ok)
          if ok then
            staged[built] = target
          end
          on_done(state)
        end)
      end
      -- A copy at lua/ (preferred by the loader, the Nix layout) is replaced
      -- by rename, never in place (a loaded library would crash).
      local installed = root .. "/lua/ai_commit_native.so"
      if not vim.uv.fs_stat(installed) then
        stage()
        return
      end
      copy_async(built, installed .. ".new", function(ok)
        if ok then
          vim.uv.fs_rename(installed .. ".new", installed)
          if opened[installed] then
            built = installed
          end
        end
        stage()
      end)
    end)
  end)
  if not ok then
    building = nil
    return false, tostring(err)
  end
  return true
end

--- The `ai-commit` CLI for scheduled backups: on PATH, else the one built
--- beside the plugin (by M.build or the lazy.nvim build step), else nil.
function M.cli()
  local on_path = vim.fn.exepath("ai-commit")
  if on_path ~= "" then
    return on_path
  end
  local root = M.source_root()
  local built = root and root .. "/target/release/ai-commit"
  if built and vim.fn.executable(built) == 1 then
    return built
  end
end

function M.path()
  return loaded_from
end

--- Call `name` with a Lua value (sent as JSON) and decode the answer.
function M.call(name, arg)
  local m, err = M.load()
  if not m then
    return { ok = false, kind = "native_missing", err = err }
  end
  local payload
  if type(arg) == "string" then
    payload = arg
  elseif arg == nil then
    payload = ""
  else
    payload = vim.json.encode(arg)
  end
  local ok, out = pcall(m[name], payload)
  if not ok then
    return { ok = false, kind = "internal", err = tostring(out) }
  end
  local decoded_ok, decoded = pcall(vim.json.decode, out, { luanil = { object = true, array = true } })
  if not decoded_ok then
    return { ok = false, kind = "internal", err = "bad answer from the native module: " .. tostring(out) }
  end
  return decoded
end

--- For tests: forget a failed load so another path can be tried.
function M._reset()
  if not mod then
    load_error = nil
  end
end

return M
