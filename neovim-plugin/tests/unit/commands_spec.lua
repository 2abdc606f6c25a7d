-- `:Mesh` subcommands: completion, errors in words, and the requests they send.
local h = require("helpers")
local commands = require("mesh.commands")

local function complete(line)
  return vim.fn.getcompletion(line, "cmdline")
end

test("the command exists and completes its subcommands", function()
  h.eq(2, vim.fn.exists(":Mesh"))
  h.eq(commands.names(), complete("Mesh "))
  h.eq({ "chat" }, complete("Mesh ch"))
  h.eq({ "follow" }, complete("Mesh fo"))
  h.eq({ "share", "status", "step", "stop", "suggestions" }, complete("Mesh s"))
  h.eq({ "over", "in", "out" }, complete("Mesh step "))
  h.eq({ "refuse", "reject", "resolve", "restart", "role", "run" }, complete("Mesh r"))
  h.eq({}, complete("Mesh join "), "a link is not completed")
end)

test("the subcommands are the ones the issue asks for", function()
  h.eq({
    "accept",
    "admit",
    "approval",
    "ask",
    "audit",
    "break",
    "chat",
    "continue",
    "debug",
    "debugger",
    "eval",
    "follow",
    "ghost",
    "input",
    "join",
    "kick",
    "leave",
    "links",
    "participants",
    "pause",
    "refuse",
    "reject",
    "resolve",
    "restart",
    "role",
    "run",
    "share",
    "status",
    "step",
    "stop",
    "suggestions",
    "unfollow",
  }, commands.names())
end)

test(":Mesh follow completes the names of the others in the room", function()
  local _, _, client = h.start_with_file("x\n")
  require("mesh.status").set(client.id, {
    state = "connected",
    you = 1,
    participants = {
      { connId = 1, name = "me", you = true },
      { connId = 2, name = "Ana" },
      { connId = 3, name = "anders" },
      { connId = 4, name = "Bo" },
    },
  })
  h.eq({ "Ana", "anders" }, complete("Mesh follow a"))
  h.eq({ "Ana", "Bo", "anders" }, complete("Mesh follow "))
end)

test(":Mesh resolve completes the files in conflict, and status lists them with what to do", function()
  local _, _, client = h.start_with_file("x\n")
  local status = { state = "connected", participants = {}, conflicts = { "src/a.py", "notes.md" } }
  require("mesh.status").set(client.id, status)
  h.eq({ "src/a.py" }, complete("Mesh resolve s"))
  local text = commands.format_status(status)
  h.contains(text, "conflicts 2")
  h.contains(text, "src/a.py: the room's version is in .mesh/conflicts/src/a.py; :Mesh resolve src/a.py")
end)

test("an unknown subcommand lists the right ones", function()
  vim.cmd("Mesh frobnicate")
  h.contains(h.all_messages(), 'unknown subcommand "frobnicate"')
  h.contains(h.all_messages(), "share")
end)


test(":Mesh join checks for a link before starting anything", function()
  vim.cmd("Mesh join")
  h.contains(h.all_messages(), ":Mesh join {link}")
  h.messages = {}
  vim.cmd("Mesh join abc123")
  h.contains(h.all_messages(), "not a mesh link: abc123")
  h.eq(0, #vim.lsp.get_clients({ name = "mesh" }))
end)

test("commands that need a room say how to start when mesh is not running", function()
  require("mesh").setup({ autostart = false })
  vim.cmd("Mesh status")
  h.contains(h.all_messages(), "not running for this folder")
end)

test("a missing proxy is reported in words, with what to do", function()
  local dir = h.tempdir()
  vim.cmd.cd(dir)
  require("mesh").setup({ proxy = dir .. "/no-such-mesh-proxy" })
  vim.cmd("Mesh share")
  local all = h.all_messages()
  h.contains(all, "cannot find the proxy")
  h.contains(all, "no-such-mesh-proxy")
  h.contains(all, ":checkhealth mesh")
  h.eq(0, #vim.lsp.get_clients({ name = "mesh" }))
end)

test(":Mesh share sends mesh/share and copies the link", function()
  local fake = select(1, h.start_with_file("shared\n"))
  fake.responders["mesh/share"] = function(params)
    fake.share_params = params
    return { room = "r1", link = "http://127.0.0.1:1/join/r1?token=t", readLink = "http://127.0.0.1:1/join/r1?token=r" }
  end
  vim.cmd("Mesh share")
  h.wait(function()
    return h.all_messages():find("join link", 1, true) ~= nil
  end, "the share answer")
  h.eq({ server = "http://127.0.0.1:7420" }, fake.share_params, "the room is named after the folder")
  h.eq("http://127.0.0.1:1/join/r1?token=t", vim.fn.getreg('"'))
  h.eq("http://127.0.0.1:1/join/r1?token=t", require("mesh").status().link)
end)

test("the proxy's error message is shown as it is, without a stack trace", function()
  local fake = select(1, h.start_with_file("x\n"))
  fake.responders["mesh/join"] = function()
    return nil, { code = -32602, message = "not a mesh link: http://x/y" }
  end
  vim.cmd("Mesh join http://x/y")
  h.wait(function()
    return h.all_messages():find("not a mesh link: http://x/y", 1, true) ~= nil
  end, "the error")
  h.ok(not h.all_messages():find("stack traceback", 1, true), "no traceback")
  h.eq(vim.log.levels.ERROR, h.messages[#h.messages].level)
end)

test(":Mesh join starts the proxy in an empty folder and reports conflicts", function()
  local dir = h.tempdir()
  vim.cmd.cd(dir)
  local fake = h.fake_proxy()
  require("mesh").setup({ cmd = fake.cmd })
  fake.responders["mesh/join"] = function(params)
    fake.join_params = params
    return { room = "r9", files = 3, conflicts = { "a.txt" } }
  end
  vim.cmd("Mesh join http://127.0.0.1:1/join/r9?token=w")
  h.wait(function()
    return fake.join_params ~= nil and h.all_messages():find("joined room r9", 1, true) ~= nil
  end, "the join answer")
  h.eq({ link = "http://127.0.0.1:1/join/r9?token=w" }, fake.join_params)
  h.contains(h.all_messages(), "a.txt")
  local client = vim.lsp.get_clients({ name = "mesh" })[1]
  h.eq(dir, client.root_dir)
  h.eq(vim.uri_from_fname(dir), fake.initialize_params.workspaceFolders[1].uri)
end)

test("status and participants are formatted for people", function()
  local text = commands.format_status({
    state = "connected",
    room = "r1",
    role = "host",
    link = "http://h/join/r1?token=t",
    participants = { {}, {} },
  })
  h.contains(text, "mesh: connected")
  h.contains(text, "room      r1")
  h.contains(text, "people    2")
  local people = commands.format_participants({
    { name = "Ana", role = "host", client = "neovim", you = true, verified = true },
    { name = "Bo", role = "writer", client = "vscode", verified = false },
  })
  h.contains(people, "Ana ✓ (you)  (host, verified, neovim)")
  h.contains(people, "Bo  (writer, unverified, vscode)")
end)

test("a proxy that does not announce mesh's extensions gets a warning", function()
  h.start_with_file("x\n", { announce = false })
  h.contains(h.all_messages(), "without mesh's extensions")
end)

test("files outside the workspace, special buffers and ignored paths are not bridged", function()
  local fake, bufnr = h.start_with_file("x\n")
  local client = require("mesh.client")
  h.ok(client.eligible_root(bufnr), "the file itself is")
  vim.cmd("help")
  h.eq(nil, client.eligible_root(vim.api.nvim_get_current_buf()), "help")
  local ignored = h.write(vim.fn.getcwd(), ".git/config", "[core]\n")
  vim.cmd.edit(vim.fn.fnameescape(ignored))
  h.eq(nil, client.eligible_root(vim.api.nvim_get_current_buf()), ".git/")
  h.eq(nil, fake.docs[vim.uri_from_fname(ignored)])
  require("mesh.config").set({ filetypes = { "lua" }, cmd = fake.cmd })
  h.eq(nil, client.eligible_root(bufnr), "filetype not enabled")
end)
