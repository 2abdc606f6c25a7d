-- Host control: naming people, the prompts for join requests, role changes and kicks, and
-- what presence, the lobby and the end of a session show.
local h = require("helpers")
local host = require("mesh.host")

local people = {
  { seat = "s1", name = "Ada", role = "host", client = "neovim", you = true },
  { seat = "s2", name = "Bob", role = "writer", client = "vscode", you = false },
  { seat = "s3", name = "bob", role = "reader", client = "neovim", you = false },
  { seat = "s4", name = "Cy", role = "writer", client = "neovim", you = false, link = "l1" },
}

--- Replaces vim.ui.select for one test: answers with the item whose text contains `pick`
--- and records the prompts.
local function answering(pick)
  local prompts = {}
  local real = vim.ui.select
  vim.ui.select = function(items, opts, cb)
    prompts[#prompts + 1] = opts.prompt
    for _, item in ipairs(items) do
      local text = opts.format_item and opts.format_item(item) or tostring(item)
      if text:find(pick, 1, true) then
        return cb(item)
      end
    end
    cb(nil)
  end
  return prompts, function()
    vim.ui.select = real
  end
end

test("people are named by seat or unique name, and mistakes say what to do", function()
  h.eq("s2", host.find_seat(people, "s2"))
  h.eq("s4", host.find_seat(people, "cy"))
  local seat, why = host.find_seat(people, "BOB")
  h.eq(nil, seat)
  h.contains(why, "by seat id")
  seat, why = host.find_seat(people, "Zed")
  h.eq(nil, seat)
  h.contains(why, ":Mesh participants")
end)

test("one person listed twice while reconnecting (one seat) is still named by their name", function()
  local reconnecting = {
    { seat = "s7", name = "dave", conn_id = 3 },
    { seat = "s7", name = "dave", conn_id = 9 },
  }
  h.eq("s7", host.find_seat(reconnecting, "dave"))
end)

test("a join request asks Admit or Refuse and sends the answer for that seat", function()
  local fake = h.start_with_file("x\n")
  fake.responders["mesh/admit"] = function()
    return {}
  end
  local prompts, restore = answering("Admit")
  fake.dispatchers.notification("mesh/joinRequest", { seat = "s9", name = "Dee", client = "vscode" })
  h.wait(function()
    return #prompts == 1
  end, "the prompt")
  restore()
  h.contains(prompts[1], "Dee (name not verified, vscode) asks to join")
  h.wait(function()
    return vim.tbl_contains(vim.tbl_map(function(r)
      return r.method
    end, fake.requests), "mesh/admit")
  end, "mesh/admit")
  local admit = vim.tbl_filter(function(r)
    return r.method == "mesh/admit"
  end, fake.requests)[1]
  h.eq({ seat = "s9" }, admit.params)
end)

test(":Mesh role names someone and sends the seat with the role", function()
  local fake = h.start_with_file("x\n")
  fake.responders["mesh/hostParticipants"] = function()
    return { participants = people, waiting = {}, approval = false }
  end
  fake.responders["mesh/setRole"] = function()
    return {}
  end
  vim.cmd("Mesh role Cy reader")
  h.wait(function()
    return h.all_messages():find("Cy is now reader", 1, true) ~= nil
  end, "the confirmation")
  local set = vim.tbl_filter(function(r)
    return r.method == "mesh/setRole"
  end, fake.requests)[1]
  h.eq({ seat = "s4", role = "reader" }, set.params)
end)

test(":Mesh kick removes someone and offers to revoke the link they came in by", function()
  local fake = h.start_with_file("x\n")
  fake.responders["mesh/hostParticipants"] = function()
    return { participants = people, waiting = {}, approval = false }
  end
  fake.responders["mesh/kick"] = function()
    return {}
  end
  fake.responders["mesh/links"] = function()
    return {
      links = {
        { id = "l0", role = "reader", url = "http://x/join/r?token=r", uses = 1, revoked = false },
        { id = "l1", role = "writer", url = "http://x/join/r?token=t", uses = 2, revoked = false },
      },
    }
  end
  fake.responders["mesh/revokeLink"] = function()
    return {}
  end
  local prompts, restore = answering("Revoke the writer link l1 they came in by")
  vim.cmd("Mesh kick Cy")
  h.wait(function()
    return vim.tbl_contains(vim.tbl_map(function(r)
      return r.method
    end, fake.requests), "mesh/revokeLink")
  end, "mesh/revokeLink")
  restore()
  h.contains(prompts[1], "Revoke it?")
  local kick = vim.tbl_filter(function(r)
    return r.method == "mesh/kick"
  end, fake.requests)[1]
  h.eq({ seat = "s4" }, kick.params)
  local revoke = vim.tbl_filter(function(r)
    return r.method == "mesh/revokeLink"
  end, fake.requests)[1]
  h.eq({ id = "l1" }, revoke.params, "their link, not another")
end)

test("presence, the lobby and the end of a session are shown and the state follows", function()
  local fake = h.start_with_file("x\n")
  fake.dispatchers.notification("mesh/presence", {
    kind = "roleChanged",
    connId = 1,
    name = "me",
    role = "reader",
    you = true,
    message = "you are now a reader by Ada: your edits are no longer shared",
  })
  h.eq(vim.log.levels.WARN, h.messages[#h.messages].level)
  h.contains(h.messages[#h.messages].msg, "you are now a reader")
  fake.dispatchers.notification("mesh/lobby", { message = "waiting for the host to let you in" })
  h.eq("lobby", require("mesh").status().state)
  h.eq("mesh · waiting for the host to let you in", require("mesh").statusline())
  fake.dispatchers.notification("mesh/ended", { reason = "kicked", message = "you were removed" })
  h.eq("idle", require("mesh").status().state)
end)
