-- Loaded by every Neovim test script (tests/nvim.rs): records notifications,
-- measures main-loop lateness with a Vim timer, waits without blocking, and
-- writes the result as JSON for the Rust side.
local H = { notes = {} }

-- Each notification, and whether it would fit the command line as it is
-- (one line, within v:echospace): one that does not raises the hit-enter
-- prompt in a real terminal.
vim.notify = function(msg, level)
  local fits = not msg:find("\n") and vim.fn.strdisplaywidth(msg) <= vim.v.echospace
  table.insert(H.notes, { msg = msg, level = level or vim.log.levels.INFO, fits = fits, room = vim.v.echospace })
end

--- Write `result` (plus the notifications) and quit.
function H.finish(result)
  result = result or {}
  result.notes = H.notes
  local f = assert(io.open(os.getenv("NVIM_TEST_OUT"), "w"))
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd("qa!")
end

--- Call `fn` once `pred()` holds (polling every 10 ms on the main loop,
--- which stays free meanwhile); give up after `ms` and finish with a failure.
function H.wait(pred, ms, fn)
  local deadline = vim.uv.hrtime() + ms * 1e6
  local function tick()
    local ok, v = pcall(pred)
    if ok and v then
      fn()
    elseif vim.uv.hrtime() > deadline then
      H.finish({ timed_out = true, error = (not ok) and tostring(v) or nil })
    else
      vim.defer_fn(tick, 10)
    end
  end
  tick()
end

--- Wait for the next finished run (after `prev`), then call fn(last).
function H.wait_run(prev, ms, fn)
  local ai = require("ai_commit")
  H.wait(function()
    return ai.last() ~= nil and ai.last() ~= prev and not ai.running()
  end, ms, function()
    fn(ai.last())
  end)
end

--- A 1 ms repeating Vim timer: it only runs when the main loop is really
--- free, so its worst lateness is the longest stall. Returns stop() → ms.
function H.lateness()
  local max, last = 0, vim.uv.hrtime()
  local t = vim.fn.timer_start(1, function()
    local now = vim.uv.hrtime()
    local late = (now - last) / 1e6 - 1
    if late > max then
      max = late
    end
    last = now
  end, { ["repeat"] = -1 })
  return function()
    vim.fn.timer_stop(t)
    return max
  end
end

--- The run's outcome or error, JSON-friendly.
function H.summary(last)
  if not last then
    return nil
  end
  return { outcome = last.outcome, error = last.error, events = last.events }
end

return H
