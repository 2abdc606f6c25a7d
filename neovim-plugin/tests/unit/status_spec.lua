-- The statusline component and the status store.
local h = require("helpers")
local status = require("mesh.status")

test("the statusline is empty while idle and short when in a room", function()
  h.eq("", status.format(nil))
  h.eq("", status.format({ state = "idle", participants = {} }))
  h.eq("mesh · connecting", status.format({ state = "connecting", participants = {} }))
  h.eq("mesh · 1 person", status.format({ state = "connected", participants = { {} } }))
  h.eq(
    "mesh · 3 people · read-only · following Ana",
    status.format({ state = "connected", role = "reader", participants = { {}, {}, {} } }, "Ana")
  )
  h.eq("mesh · offline", status.format({ state = "offline", participants = {} }))
end)

test("mesh/status and mesh/participants notifications feed require('mesh').statusline()", function()
  local fake = h.start_with_file("x\n")
  h.eq("", require("mesh").statusline())
  fake.dispatchers.notification(
    "mesh/status",
    { state = "connected", room = "r", you = 1, participants = { { connId = 1, name = "me", you = true } } }
  )
  h.eq("mesh · 1 person", require("mesh").statusline())
  fake.dispatchers.notification(
    "mesh/participants",
    { participants = { { connId = 1, you = true }, { connId = 2, name = "Ana" } } }
  )
  h.eq("mesh · 2 people", require("mesh").statusline())
  h.eq("r", require("mesh").status().room)
end)

test("mesh/notify is shown at its level", function()
  local fake = h.start_with_file("x\n")
  fake.dispatchers.notification("mesh/notify", { level = "warning", message = "reconnecting" })
  h.eq({ msg = "mesh: reconnecting", level = vim.log.levels.WARN }, h.messages[#h.messages])
end)

test("a malformed notification is reported in one line, not as a stack trace", function()
  local fake = h.start_with_file("x\n")
  fake.dispatchers.notification("mesh/cursors", { uri = "file:///x", cursors = "not a list" })
  fake.dispatchers.notification("mesh/follow", { uri = 42 })
  fake.dispatchers.notification("mesh/chatMessage", { entry = "?" })
  h.ok(not h.all_messages():find("traceback", 1, true), h.all_messages())
end)

test("when the proxy exits, its status and cursors are forgotten", function()
  local fake, bufnr, client = h.start_with_file("x\n")
  fake.dispatchers.notification("mesh/status", { state = "connected", participants = {} })
  fake.dispatchers.notification("mesh/cursors", {
    uri = vim.uri_from_bufnr(bufnr),
    cursors = {
      {
        connId = 2,
        name = "Ana",
        color = "#ff0000",
        selections = { { anchor = { line = 0, character = 0 }, head = { line = 0, character = 0 } } },
      },
    },
  })
  h.ok(#require("mesh.cursors").describe(bufnr) > 0, "drawn")
  fake.dispatchers.on_exit(1, 0)
  h.wait(function()
    return status.get(client.id) == nil
  end, "the status to be forgotten")
  h.eq(0, #require("mesh.cursors").describe(bufnr))
  h.contains(h.all_messages(), "mesh-proxy stopped unexpectedly")
end)
