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
M.PROTOCOL = 2

local function basename(path)
  return vim.fn.fnamemodify(path, ":t")
end

--- The step that will really (re)build the module, for where it was (or
--- would be) loaded from. A loaded library cannot be replaced in a running
--- Neovim, hence "restart" after a rebuild.
function M.build_hint(path)
  local root = plugin_root()
  local dir = root:find("^[%w/._+-]+$") and root or vim.fn.shellescape(root)
  local cargo = ("cd %s && cargo build --release -p ai-commit-nvim"):format(dir)
  local lazy = ("lazy.nvim: `:Lazy build %s`"):format(basename(root))
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

--- The loaded module, or nil and why not.
function M.load(explicit)
  if mod or load_error then
    return mod, load_error
  end
  if vim.fn.has("nvim-0.10") == 0 then
    load_error = "Neovim 0.10 or newer is needed; upgrade Neovim (or use the ai-commit command line tool)"
    return nil, load_error
  end
  local tried = {}
  for _, path in ipairs(M.candidates(explicit)) do
    if vim.uv.fs_stat(path) then
      local loader, err = package.loadlib(path, "luaopen_ai_commit_native")
      if not loader then
        load_error = ("cannot load the native module %s: %s; %s"):format(path, err, M.build_hint(path))
        return nil, load_error
      end
      local ok, m = pcall(loader)
      if not ok or type(m) ~= "table" or type(m.info) ~= "function" then
        load_error = ("the native module %s failed to start: %s; %s"):format(path, tostring(m), M.build_hint(path))
        return nil, load_error
      end
      -- `info` keeps its shape in every version: a string in, JSON out.
      local info_ok, info = pcall(vim.json.decode, m.info(""))
      if not info_ok or type(info) ~= "table" then
        info = {}
      end
      -- Modules from before the protocol existed report none: they are 1.
      local protocol = tonumber(info.protocol) or 1
      if protocol ~= M.PROTOCOL then
        load_error = (
          "the native module %s is out of date (boundary protocol %d, this plugin needs %d): "
          .. "it was built from other sources than this plugin, e.g. before a `git pull`; %s"
        ):format(path, protocol, M.PROTOCOL, M.build_hint(path))
        return nil, load_error
      end
      mod, loaded_from, M.info = m, path, info
      return mod
    end
    table.insert(tried, path)
  end
  load_error = ("the native module was not found (looked in: %s); %s"):format(
    table.concat(tried, ", "),
    M.build_hint(explicit or vim.env.AI_COMMIT_NATIVE ~= "" and vim.env.AI_COMMIT_NATIVE or nil)
  )
  return nil, load_error
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
