-- Shared debugging through nvim-dap: the adapter and configurations mesh registers, and
-- `:Mesh debug`, against a stub `dap` module (nvim-dap itself is not installed here).
local h = require("helpers")
local config = require("mesh.config")
local debug = require("mesh.debug")

--- A stand-in for nvim-dap's module: the tables mesh fills, and `run` recording its calls.
local function stub_dap()
  local dap = { adapters = {}, configurations = {}, runs = {} }
  function dap.run(c)
    table.insert(dap.runs, c)
  end
  package.loaded.dap = dap
  return dap
end

--- What the registered adapter function hands nvim-dap for a configuration.
local function resolved_adapter(dap, dap_config)
  local got
  dap.adapters.mesh(function(adapter)
    got = adapter
  end, dap_config)
  return got
end

test("the adapter starts `mesh-proxy dap --folder ROOT` with the server and name", function()
  local cfg = config.resolve({ proxy = "/opt/mesh-proxy", server = "http://s:1", name = "Ana" })
  local adapter = debug.adapter(cfg, "/home/ana/proj", { PATH = "/usr/bin", MESH_NAME = "old" })
  h.eq({
    type = "executable",
    command = "/opt/mesh-proxy",
    args = { "dap", "--folder", "/home/ana/proj" },
    options = {
      env = { PATH = "/usr/bin", MESH_SERVER = "http://s:1", MESH_NAME = "Ana" },
      cwd = "/home/ana/proj",
    },
  }, adapter)
  h.eq({ "/opt/mesh-proxy", "dap" }, (require("mesh.proxy").dap_command(cfg, nil)), "no folder: the current one")
  -- Without a base, Neovim's own environment is kept (nvim-dap may replace the whole one).
  h.eq(vim.env.PATH, debug.adapter(cfg, "/x").options.env.PATH)
end)

test("setup() registers the adapter when nvim-dap is installed, and no configurations unless asked", function()
  local dap = stub_dap()
  dap.configurations.python = { { type = "python", request = "launch", name = "mine" } }
  require("mesh").setup({ proxy = "/opt/mesh-proxy" })
  h.eq("function", type(dap.adapters.mesh))
  h.eq({ { type = "python", request = "launch", name = "mine" } }, dap.configurations.python, "the user's own stay")
  h.eq(nil, dap.configurations.c)
end)

test("dap_configurations = true adds one entry per language, after the user's, once", function()
  local dap = stub_dap()
  dap.configurations.python = { { type = "python", request = "launch", name = "mine" } }
  require("mesh").setup({ dap_configurations = true })
  require("mesh").setup({ dap_configurations = true })
  local entry = { type = "mesh", request = "launch", name = "Mesh: debug this file together", program = "${file}" }
  h.eq({ { type = "python", request = "launch", name = "mine" }, entry }, dap.configurations.python)
  h.eq({ entry }, dap.configurations.c)
  h.eq({ entry }, dap.configurations.cpp)
  h.ok(dap.configurations.python[2] ~= dap.configurations.c[1], "each list has its own copy")
end)

test("the adapter serves the mesh workspace of the program being debugged", function()
  local dap = stub_dap()
  local root = h.tempdir()
  local file = h.write(root, "src/app.py", "x = 41\n")
  vim.cmd.cd(vim.fn.fnameescape(root))
  require("mesh").setup({ proxy = "/opt/mesh-proxy", server = "http://s:2", name = "Bo" })
  local adapter = resolved_adapter(dap, { type = "mesh", request = "launch", name = "x", program = file })
  h.eq({ "dap", "--folder", root }, adapter.args)
  h.eq(root, adapter.options.cwd)
  h.eq("http://s:2", adapter.options.env.MESH_SERVER)
  h.eq("Bo", adapter.options.env.MESH_NAME)
  -- `${file}` not expanded yet: the current buffer's workspace.
  vim.cmd.edit(vim.fn.fnameescape(file))
  h.eq({ "dap", "--folder", root }, resolved_adapter(dap, { program = "${file}" }).args)
  -- A file outside any workspace: its own directory.
  local elsewhere = h.tempdir()
  vim.cmd.cd(vim.fn.fnameescape(root))
  h.eq(elsewhere, debug.folder_for(elsewhere .. "/a.py"))
end)

test("configurations name the language when the filetype is one mesh debugs", function()
  h.eq(
    { type = "mesh", request = "launch", name = "Mesh: Debug", program = "/p/a.py", language = "python" },
    debug.configuration("/p/a.py", "python")
  )
  h.eq(
    { type = "mesh", request = "launch", name = "Mesh: Debug", program = "/p/v.h", language = "cpp" },
    debug.configuration("/p/v.h", "cpp")
  )
  h.eq(
    { type = "mesh", request = "launch", name = "Mesh: Debug", program = "/p/x.txt" },
    debug.configuration("/p/x.txt", "text")
  )
end)

test(":Mesh debug runs nvim-dap on the current file", function()
  local dap = stub_dap()
  local root = h.tempdir()
  local file = h.write(root, "main.py", "x = 41\n")
  vim.cmd.cd(vim.fn.fnameescape(root))
  require("mesh").setup({ autostart = false })
  vim.cmd.edit(vim.fn.fnameescape(file))
  vim.cmd("Mesh debug")
  h.eq({ { type = "mesh", request = "launch", name = "Mesh: Debug", program = file, language = "python" } }, dap.runs)
  h.eq("function", type(dap.adapters.mesh), "registered even without setup() seeing nvim-dap")
  h.eq("", h.all_messages())
end)

test(":Mesh debug {file} debugs that file; a missing file or no file is said in words", function()
  local dap = stub_dap()
  local root = h.tempdir()
  local file = h.write(root, "lib/calc.c", "int main(void) { return 0; }\n")
  vim.cmd.cd(vim.fn.fnameescape(root))
  require("mesh").setup({ autostart = false })
  vim.cmd("Mesh debug lib/calc.c")
  h.eq({ { type = "mesh", request = "launch", name = "Mesh: Debug", program = file, language = "c" } }, dap.runs)
  vim.cmd("Mesh debug nope.py")
  h.contains(h.all_messages(), "no such file: " .. root .. "/nope.py")
  h.messages = {}
  vim.cmd("enew")
  vim.cmd("Mesh debug")
  h.contains(h.all_messages(), "which file?")
  h.eq(1, #dap.runs, "nothing more was run")
end)

test(':Mesh debug with debugger = "nvim-dap" and no nvim-dap says what to install', function()
  package.loaded.dap = nil
  require("mesh").setup({ autostart = false, debugger = "nvim-dap" })
  local file = h.write(h.tempdir(), "main.py", "x = 1\n")
  vim.cmd.edit(vim.fn.fnameescape(file))
  vim.cmd("Mesh debug")
  h.contains(h.all_messages(), "nvim-dap (https://github.com/mfussenegger/nvim-dap) is not installed")
  h.contains(h.all_messages(), 'debugger = "auto"')
  h.contains(h.all_messages(), "https://github.com/mfussenegger/nvim-dap")
  h.eq(vim.log.levels.ERROR, h.messages[#h.messages].level)
end)

test(":checkhealth mesh reports nvim-dap and the adapter", function()
  local health = require("mesh.health")
  local function debugging()
    return vim.tbl_filter(function(i)
      return i.section == "debugging"
    end, health.collect(config.resolve({ proxy = "/nonexistent/mesh-proxy", server = "http://127.0.0.1:1" })))[1]
  end
  h.eq("info", debugging().level)
  h.contains(debugging().message, "nvim-dap is not installed")
  local dap = stub_dap()
  h.eq("warn", debugging().level)
  debug.register(dap)
  h.eq("ok", debugging().level)
end)

test("with nvim-dap installed the debugger commands go to it; debugger = \"builtin\" keeps mesh's own", function()
  local dap = stub_dap()
  local calls = {}
  for _, fn in ipairs({ "toggle_breakpoint", "continue", "step_over", "step_into", "step_out", "pause", "restart", "terminate" }) do
    dap[fn] = function(arg)
      table.insert(calls, arg and (fn .. " " .. arg) or fn)
    end
  end
  require("mesh").setup({ autostart = false })
  vim.cmd("Mesh break i > 2")
  vim.cmd("Mesh continue")
  vim.cmd("Mesh step")
  vim.cmd("Mesh step in")
  vim.cmd("Mesh step out")
  vim.cmd("Mesh pause")
  vim.cmd("Mesh restart")
  h.eq({ "toggle_breakpoint i > 2", "continue", "step_over", "step_into", "step_out", "pause", "restart" }, calls)
  h.eq("", vim.fn.maparg("<F10>", "n"), "no default keys over nvim-dap")
  calls = {}
  require("mesh").setup({ autostart = false, debugger = "builtin" })
  vim.cmd("Mesh continue")
  h.eq({}, calls)
  h.contains(h.all_messages(), "no debug session; start one with :Mesh debug")
end)

test("the debugger option is one of auto, builtin, nvim-dap; debug_keys a boolean", function()
  local ok, err = pcall(config.resolve, { debugger = "gdb" })
  h.eq(false, ok)
  h.contains(err, "`debugger`")
  ok, err = pcall(config.resolve, { debug_keys = 1 })
  h.eq(false, ok)
  h.contains(err, "`debug_keys`")
  h.eq("auto", config.resolve({}).debugger)
end)

test("the dap_configurations option must be a boolean", function()
  local ok, err = pcall(config.resolve, { dap_configurations = "yes" })
  h.eq(false, ok)
  h.contains(err, "`dap_configurations`")
  h.eq(false, config.resolve({}).dap_configurations)
end)

--- Sends `mesh/debugStarted` from the fake proxy, as the server's `DebugStarted` arrives.
local function debug_started(fake, fields)
  local params = { debugId = "d1", path = "main.py", language = "python", by = 7, byName = "Grace", you = false }
  fake.dispatchers.notification("mesh/debugStarted", vim.tbl_extend("force", params, fields or {}))
end

test("someone else's debug session is announced with how to join it", function()
  package.loaded.dap = nil
  local fake = h.start_with_file("print('hi')\n", { name = "main.py" })
  h.messages = {}
  debug_started(fake)
  h.wait(function()
    return #h.messages > 0
  end, "the announcement")
  h.eq(
    { { msg = "mesh: Grace started debugging main.py; :Mesh debug to join", level = vim.log.levels.INFO } },
    h.messages
  )
end)

test("no announcement for your own session, or while a mesh session is going", function()
  h.eq(nil, debug.join_offer({ path = "main.py", byName = "Ana", you = true }, false))
  h.eq(nil, debug.join_offer({ path = "main.py", byName = "Grace", you = false }, true))
  local dap = stub_dap()
  function dap.session()
    return { config = { type = "mesh" } }
  end
  local fake = h.start_with_file("print('hi')\n", { name = "main.py" })
  h.messages = {}
  debug_started(fake)
  debug_started(fake, { you = true, byName = "Ana" })
  -- Nothing to wait for when nothing is shown: give the dispatch (scheduled or not) a turn.
  vim.wait(50)
  h.eq({}, h.messages)
  package.loaded.dap = nil
end)
