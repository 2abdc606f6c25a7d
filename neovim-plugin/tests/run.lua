-- The unit test runner: `nvim --headless --clean -l tests/run.lua [pattern]` from the plugin
-- folder (scripts/test-neovim does this). Loads every tests/unit/*_spec.lua, runs each test
-- in a fresh editor state, prints one line per failure and closes with "N passed, M failed";
-- exits non-zero when anything failed. An optional Lua pattern selects tests by name.

local script = debug.getinfo(1, "S").source:sub(2)
local tests_dir = vim.fs.dirname(vim.fn.fnamemodify(script, ":p"))
local plugin_dir = vim.fs.dirname(tests_dir)

vim.opt.runtimepath:prepend(plugin_dir)
package.path = tests_dir .. "/?.lua;" .. package.path
vim.cmd("runtime plugin/mesh.lua")

-- The tests assume nothing of the machine's configuration.
vim.o.swapfile = false
vim.o.shada = ""
vim.o.showmode = false

local helpers = require("helpers")
local filter = _G.arg and _G.arg[1] or nil

---@type { file: string, name: string, fn: fun() }[]
local tests = {}
local current_file = nil

--- Declares a test; spec files call it at load time.
---@param name string
---@param fn fun()
function _G.test(name, fn)
  table.insert(tests, { file = current_file, name = name, fn = fn })
end

local files = vim.fn.globpath(tests_dir .. "/unit", "*_spec.lua", false, true)
table.sort(files)
for _, file in ipairs(files) do
  current_file = vim.fn.fnamemodify(file, ":t:r")
  dofile(file)
end

local passed, failed = 0, 0
for _, t in ipairs(tests) do
  local full = t.file .. ": " .. t.name
  if not filter or full:match(filter) then
    local ok, err = xpcall(t.fn, debug.traceback)
    local reset_ok, reset_err = pcall(helpers.reset)
    if ok and not reset_ok then
      ok, err = false, "cleanup failed: " .. tostring(reset_err)
    end
    if ok then
      passed = passed + 1
      io.stdout:write("ok   " .. full .. "\n")
    else
      failed = failed + 1
      io.stdout:write("FAIL " .. full .. "\n    " .. tostring(err):gsub("\n", "\n    ") .. "\n")
    end
  end
end

io.stdout:write(("%d passed, %d failed\n"):format(passed, failed))
io.stdout:flush()
os.exit(failed == 0 and passed > 0 and 0 or 1)
