-- The ghost's suggestions in Neovim: `mesh/ghostState` kept and announced, `:Mesh suggestions`
-- previewing a unified diff, and `:Mesh accept|reject` (or `a`/`r` in the preview) sending
-- `mesh/ghost`.
local h = require("helpers")
local ghost = require("mesh.ghost")

local CALC = "def add(a, b):\n    return a - b\n\n\nprint(add(2, 3))\n"

test("edits apply in order, first occurrence only; an empty quote appends or creates", function()
  local edits = {
    { path = "a.py", search = "x = 1", replace = "y = 2" },
    { path = "other.py", search = "x", replace = "z" },
    { path = "a.py", search = "y = 2\nx", replace = "z" },
  }
  h.eq("z = 1\n", (ghost.apply_edits("x = 1\nx = 1\n", edits, "a.py")))
  h.eq("a\nb\n", (ghost.apply_edits("a\n", { { path = "f", search = "", replace = "b\n" } }, "f")))
  h.eq("new\n", (ghost.apply_edits(nil, { { path = "n", search = "", replace = "new\n" } }, "n")))
  local text, err = ghost.apply_edits(CALC, { { path = "calc.py", search = "gone", replace = "x" } }, "calc.py")
  h.eq(nil, text, "no half-applied preview")
  h.contains(err, "no longer contains the text the ghost quoted")
end)

local function state(uri)
  return {
    ghosts = {
      {
        connId = 3,
        name = "ghost (m)",
        requests = {},
        suggestions = {
          {
            id = 2,
            asker = "ada",
            files = { { path = "calc.py", uri = uri } },
            edits = { { path = "calc.py", uri = uri, search = "    return a - b\n", replace = "    return a + b\n" } },
          },
        },
      },
    },
  }
end

test(":Mesh suggestions previews a unified diff; a accepts it with mesh/ghost and the file is untouched", function()
  local fake, bufnr, client = h.start_with_file(CALC, { name = "calc.py" })
  require("mesh.status").set(client.id, { state = "connected", you = 1, role = "writer", participants = {} })
  local decided = {}
  fake.responders["mesh/ghost"] = function(params)
    decided[#decided + 1] = params
    return vim.empty_dict()
  end
  fake.dispatchers.notification("mesh/ghostState", state(vim.uri_from_bufnr(bufnr)))
  h.wait(function()
    return h.all_messages():find("ghost (m) suggests a change for ada (#2)", 1, true) ~= nil
  end, "the announcement")
  local select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    h.eq("#2 calc.py (asked by ada, from ghost (m))", opts.format_item(items[1]))
    on_choice(items[1])
  end
  vim.cmd("Mesh suggestions")
  vim.ui.select = select
  local preview = vim.api.nvim_get_current_buf()
  h.eq("mesh://ghost/suggestion/2", vim.api.nvim_buf_get_name(preview):match("mesh://.*$"))
  local lines = vim.api.nvim_buf_get_lines(preview, 0, -1, false)
  h.ok(vim.tbl_contains(lines, "-    return a - b"), table.concat(lines, "\n"))
  h.ok(vim.tbl_contains(lines, "+    return a + b"), table.concat(lines, "\n"))
  h.ok(vim.tbl_contains(lines, "--- a/calc.py"), table.concat(lines, "\n"))
  h.eq(CALC, table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n") .. "\n", "a preview changes nothing")

  vim.api.nvim_feedkeys("a", "x", false)
  h.wait(function()
    return #decided == 1
  end, "the accept")
  h.eq({ kind = "accept", suggestion = 2 }, decided[1])
  h.eq(false, vim.api.nvim_buf_is_valid(preview), "the preview closes")

  vim.cmd("Mesh reject 2")
  h.wait(function()
    return #decided == 2
  end, "the reject")
  h.eq({ kind = "reject", suggestion = 2 }, decided[2])
end)

test(":Mesh accept without a number outside a preview says how, and a refusal is shown", function()
  local fake, bufnr, client = h.start_with_file(CALC, { name = "calc.py" })
  require("mesh.status").set(client.id, { state = "connected", you = 1, role = "reader", participants = {} })
  fake.responders["mesh/ghost"] = function()
    return nil,
      { code = -32603, message = "only writers can accept, reject, cancel or undo the ghost's work; ask the host for write access" }
  end
  fake.dispatchers.notification("mesh/ghostState", state(vim.uri_from_bufnr(bufnr)))
  vim.cmd("Mesh accept")
  h.wait(function()
    return h.all_messages():find("which suggestion? :Mesh accept N", 1, true) ~= nil
  end, "the hint")
  h.eq(0, #vim.tbl_filter(function(r)
    return r.method == "mesh/ghost"
  end, fake.requests))
  vim.cmd("Mesh accept 2")
  h.wait(function()
    return h.all_messages():find("only writers can accept", 1, true) ~= nil
  end, "the refusal")
end)

test("each suggestion is announced once while pending; a new room's #1 is announced again", function()
  local _, bufnr, client = h.start_with_file(CALC, { name = "calc.py" })
  local s = state(vim.uri_from_bufnr(bufnr))
  local function told()
    local n = 0
    for _ in h.all_messages():gmatch("suggests a change for ada %(#2%)") do
      n = n + 1
    end
    return n
  end
  ghost.on_state(client.id, s)
  ghost.on_state(client.id, s)
  h.eq(1, told(), "the same state again is not news")
  ghost.on_state(client.id, { ghosts = {} })
  h.eq({}, ghost.pending(ghost.state(client.id)))
  ghost.on_state(client.id, s)
  h.eq(2, told(), "pending again after it went: a new suggestion with that number")
  ghost.forget(client.id)
  h.eq({ ghosts = {} }, ghost.state(client.id))
end)

test(":Mesh ghost undo and :Mesh ghost cancel [N] send mesh/ghost; anything else says how", function()
  h.eq({ kind = "undo" }, ghost.command_params("undo"))
  h.eq({ kind = "cancel" }, ghost.command_params(" cancel "))
  h.eq({ kind = "cancel", request = 4 }, ghost.command_params("cancel 4"))
  h.eq(nil, (ghost.command_params("cancel x")))
  h.eq(nil, (ghost.command_params("undo 3")))
  local _, err = ghost.command_params("")
  h.contains(err, ":Mesh ghost undo")
  local fake, _, client = h.start_with_file(CALC, { name = "calc.py" })
  require("mesh.status").set(client.id, { state = "connected", you = 1, role = "writer", participants = {} })
  local sent = {}
  fake.responders["mesh/ghost"] = function(params)
    sent[#sent + 1] = params
    return vim.empty_dict()
  end
  vim.cmd("Mesh ghost cancel 4")
  vim.cmd("Mesh ghost undo")
  h.wait(function()
    return #sent == 2
  end, "both requests")
  h.eq({ { kind = "cancel", request = 4 }, { kind = "undo" } }, sent)
end)
