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

M.build_hint = "build it: `cargo build --release -p ai-commit-nvim` in the plugin directory, "
  .. "then `install -m 755 target/release/libai_commit_native.so lua/ai_commit_native.so` "
  .. "(lazy.nvim: build = \"cargo build --release -p ai-commit-nvim\")"

--- The loaded module, or nil and why not.
function M.load(explicit)
  if mod or load_error then
    return mod, load_error
  end
  local tried = {}
  for _, path in ipairs(M.candidates(explicit)) do
    if vim.uv.fs_stat(path) then
      local loader, err = package.loadlib(path, "luaopen_ai_commit_native")
      if not loader then
        load_error = ("cannot load the native module %s: %s; %s"):format(path, err, M.build_hint)
        return nil, load_error
      end
      local ok, m = pcall(loader)
      if not ok or type(m) ~= "table" then
        load_error = ("the native module %s failed to start: %s"):format(path, tostring(m))
        return nil, load_error
      end
      local info = vim.json.decode(m.info())
      local v = vim.version()
      local running = ("%d.%d"):format(v.major, v.minor)
      if info.nvim ~= running then
        load_error = ("the native module %s was built for Neovim %s, but this is Neovim %s; rebuild it (%s)"):format(
          path,
          info.nvim,
          running,
          M.build_hint
        )
        return nil, load_error
      end
      mod, loaded_from, M.info = m, path, info
      return mod
    end
    table.insert(tried, path)
  end
  load_error = ("the native module was not found (looked in: %s); %s"):format(table.concat(tried, ", "), M.build_hint)
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
