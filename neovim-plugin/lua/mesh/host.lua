---@brief
--- Host control (decision 011): participants with seats and roles, roles, kick, the lobby's
--- join requests, approval, links and the audit trail, as `:Mesh` subcommands with
--- `vim.ui.select` prompts; and what the proxy says about presence, the lobby and the end of a
--- session, as notifications. The proxy does the work (`mesh/setRole`, `mesh/kick`, …); this
--- module only asks and shows. Every sentence about presence comes ready-made from the proxy,
--- so every editor says the same.

local client = require("mesh.client")
local protocol = require("mesh.protocol")

local M = {}

local ROLES = { "reader", "writer", "host" }

--- Puts text where a Neovim user pastes from, as `:Mesh share` does.
---@param text string
local function copy(text)
  require("mesh.commands").copy(text)
end

--- One line for a participant in a picker.
---@param p mesh.Participant
---@return string
function M.describe(p)
  local verified = p.verified and ", verified" or ", unverified"
  local mark = p.verified and " ✓" or ""
  return ("%s%s%s (%s%s, %s)"):format(tostring(p.name), mark, p.you and " (you)" or "", tostring(p.role), verified, tostring(p.client))
end

--- The seat `who` names among `people` (each with `seat` and `name`): a seat id, else a
--- unique name (case-insensitive); nil and why not otherwise.
---@param people { seat: string, name: string }[]
---@param who string
---@return string? seat
---@return string? why
function M.find_seat(people, who)
  for _, p in ipairs(people) do
    if p.seat == who then
      return p.seat
    end
  end
  -- One seat counts once: a person reconnecting is briefly listed twice (old and new
  -- connection), and is still one person.
  local found, seen = {}, {}
  for _, p in ipairs(people) do
    if tostring(p.name):lower() == who:lower() and not seen[p.seat] then
      seen[p.seat] = true
      found[#found + 1] = p.seat
    end
  end
  if #found == 1 then
    return found[1]
  elseif #found == 0 then
    return nil, ("nobody called %q; :Mesh participants lists who is there"):format(who)
  end
  return nil, ("several people are called %q: name them by seat id (:Mesh participants)"):format(who)
end

--- Asks the proxy for the room's participants and lobby (host only).
---@param c vim.lsp.Client
---@param cb fun(room: { participants: mesh.Participant[], waiting: mesh.JoinRequest[], approval: boolean })
local function host_participants(c, cb)
  client.request(c, protocol.request.host_participants, vim.empty_dict(), cb)
end

---@param c vim.lsp.Client
---@param seat string
---@param role string
---@param name string
function M.set_role(c, seat, role, name)
  client.request(c, protocol.request.set_role, { seat = seat, role = role }, function()
    vim.notify(("mesh: %s is now %s"):format(name, role), vim.log.levels.INFO)
  end)
end

--- Offers to revoke a link right after a kick: without accounts the kicked person could take
--- a new seat with the link they came through.
---@param c vim.lsp.Client
--- After a kick: offers to revoke the link `link_id` they came in by (without accounts they
--- could take a new seat with it). Revoking disconnects everyone else who used it too.
---@param c vim.lsp.Client
---@param link_id string?
local function offer_revoke(c, link_id)
  if not link_id then
    return
  end
  client.request(c, protocol.request.links, vim.empty_dict(), function(result)
    local theirs
    for _, l in ipairs(result.links or {}) do
      if l.id == link_id and not l.revoked and l.role ~= "host" then
        theirs = l
      end
    end
    if not theirs then
      return
    end
    local choices = {
      { label = "No, keep the link" },
      {
        label = ("Revoke the %s link %s they came in by (anyone else who used it, %d uses, is disconnected too)"):format(
          theirs.role,
          theirs.id,
          theirs.uses or 0
        ),
        revoke = true,
      },
    }
    vim.ui.select(choices, {
      prompt = "mesh: they could come back with the link they used. Revoke it?",
      format_item = function(item)
        return item.label
      end,
    }, function(choice)
      if choice and choice.revoke then
        M.revoke(c, theirs.id)
      end
    end)
  end)
end

---@param c vim.lsp.Client
---@param seat string
---@param name string
---@param link_id string? the link they came in by, offered for revoking afterwards
function M.kick(c, seat, name, link_id)
  client.request(c, protocol.request.kick, { seat = seat }, function()
    vim.notify(("mesh: removed %s from the room"):format(name), vim.log.levels.INFO)
    offer_revoke(c, link_id)
  end)
end

---@param c vim.lsp.Client
---@param id string
function M.revoke(c, id)
  client.request(c, protocol.request.revoke_link, { id = id }, function()
    vim.notify(("mesh: revoked link %s; the people who came through it are disconnected"):format(id), vim.log.levels.INFO)
  end)
end

--- `:Mesh participants`: pick someone, then what to do with them (host), or just the list.
---@param c vim.lsp.Client
function M.participants(c)
  local status = require("mesh.status").get(c.id) or {}
  if status.role ~= "host" then
    vim.notify(require("mesh.commands").format_participants(status.participants or {}), vim.log.levels.INFO)
    return
  end
  host_participants(c, function(room)
    local people = vim.tbl_filter(function(p)
      return not p.you
    end, room.participants or {})
    if #people == 0 and #(room.waiting or {}) == 0 then
      vim.notify("mesh: nobody else is in the room", vim.log.levels.INFO)
      return
    end
    local items = {}
    for _, w in ipairs(room.waiting or {}) do
      items[#items + 1] = { waiting = w, label = ("%s (waiting to join, %s)"):format(w.name, w.client) }
    end
    for _, p in ipairs(people) do
      items[#items + 1] = { person = p, label = M.describe(p) }
    end
    vim.ui.select(items, {
      prompt = "mesh: participants",
      format_item = function(item)
        return item.label
      end,
    }, function(item)
      if not item then
        return
      end
      if item.waiting then
        M.answer(c, item.waiting)
        return
      end
      local p = item.person
      local actions = {}
      for _, role in ipairs(ROLES) do
        if role ~= p.role then
          actions[#actions + 1] = { label = "Make " .. role, role = role }
        end
      end
      actions[#actions + 1] = { label = "Kick", kick = true }
      vim.ui.select(actions, {
        prompt = ("mesh: %s"):format(p.name),
        format_item = function(a)
          return a.label
        end,
      }, function(a)
        if not a then
          return
        end
        if a.kick then
          M.kick(c, p.seat, p.name, p.link)
        else
          M.set_role(c, p.seat, a.role, p.name)
        end
      end)
    end)
  end)
end

--- A join request: Admit, Refuse, or later (`:Mesh admit` / `:Mesh refuse`).
---@param c vim.lsp.Client
---@param req mesh.JoinRequest
function M.answer(c, req)
  vim.ui.select({ "Admit", "Refuse", "Later" }, {
    prompt = ("mesh: %s (%s, %s) asks to join"):format(
      tostring(req.name),
      req.verified == true and "signed in" or "name not verified",
      tostring(req.client)
    ),
  }, function(choice)
    if choice == "Admit" then
      client.request(c, protocol.request.admit, { seat = req.seat }, function()
        vim.notify(("mesh: let %s in"):format(req.name), vim.log.levels.INFO)
      end)
    elseif choice == "Refuse" then
      client.request(c, protocol.request.refuse, { seat = req.seat }, function()
        vim.notify(("mesh: turned %s away"):format(req.name), vim.log.levels.INFO)
      end)
    end
  end)
end

--- `:Mesh role {who} {role}`; with fewer words, asks.
---@param c vim.lsp.Client
---@param args string
function M.role(c, args)
  local who, role = args:match("^(.-)%s+(%S+)$")
  if not who or who == "" then
    who, role = vim.trim(args), nil
  end
  host_participants(c, function(room)
    local function with_role(seat, name)
      if role then
        if not vim.tbl_contains(ROLES, role) then
          vim.notify(("mesh: unknown role %q: reader, writer or host"):format(role), vim.log.levels.ERROR)
          return
        end
        M.set_role(c, seat, role, name)
        return
      end
      vim.ui.select(ROLES, { prompt = ("mesh: %s's role"):format(name) }, function(choice)
        if choice then
          M.set_role(c, seat, choice, name)
        end
      end)
    end
    M.pick(room.participants or {}, who, "whose role?", with_role)
  end)
end

--- Finds `who` among `people` (not you), or asks with `prompt` when `who` is empty.
---@param people table[]
---@param who string
---@param prompt string
---@param cb fun(seat: string, name: string, person: table?)
function M.pick(people, who, prompt, cb)
  people = vim.tbl_filter(function(p)
    return not p.you
  end, people)
  if who ~= "" then
    local seat, why = M.find_seat(people, who)
    if not seat then
      vim.notify("mesh: " .. why, vim.log.levels.ERROR)
      return
    end
    for _, p in ipairs(people) do
      if p.seat == seat then
        cb(seat, p.name, p)
        return
      end
    end
  end
  if #people == 0 then
    vim.notify("mesh: nobody to choose from", vim.log.levels.INFO)
    return
  end
  vim.ui.select(people, {
    prompt = "mesh: " .. prompt,
    format_item = function(p)
      return p.client and M.describe(p) or tostring(p.name)
    end,
  }, function(p)
    if p then
      cb(p.seat, p.name, p)
    end
  end)
end

--- `:Mesh kick [who]`.
---@param c vim.lsp.Client
---@param args string
function M.kick_command(c, args)
  host_participants(c, function(room)
    M.pick(room.participants or {}, vim.trim(args), "remove whom?", function(seat, name, p)
      M.kick(c, seat, name, p and p.link)
    end)
  end)
end

--- `:Mesh admit [who]` and `:Mesh refuse [who]`.
---@param c vim.lsp.Client
---@param args string
---@param admit boolean
function M.admit_command(c, args, admit)
  host_participants(c, function(room)
    local waiting = room.waiting or {}
    if #waiting == 0 then
      vim.notify("mesh: nobody is waiting to join", vim.log.levels.INFO)
      return
    end
    M.pick(waiting, vim.trim(args), admit and "let whom in?" or "turn whom away?", function(seat, name)
      local method = admit and protocol.request.admit or protocol.request.refuse
      client.request(c, method, { seat = seat }, function()
        vim.notify(("mesh: %s %s"):format(admit and "let in" or "turned away", name), vim.log.levels.INFO)
      end)
    end)
  end)
end

--- `:Mesh approval [on|off]`: without an argument, toggles.
---@param c vim.lsp.Client
---@param args string
function M.approval(c, args)
  local word = vim.trim(args)
  local on
  if word == "on" then
    on = true
  elseif word == "off" then
    on = false
  elseif word == "" then
    local status = require("mesh.status").get(c.id) or {}
    on = not status.approval
  else
    vim.notify("mesh: :Mesh approval [on|off]", vim.log.levels.ERROR)
    return
  end
  client.request(c, protocol.request.set_approval, { on = on }, function()
    vim.notify(
      on and "mesh: approval on: joiners wait for you (:Mesh admit / :Mesh refuse)"
        or "mesh: approval off: joiners come straight in",
      vim.log.levels.INFO
    )
  end)
end

--- `:Mesh links`: pick a link to copy or revoke, or create one.
---@param c vim.lsp.Client
function M.links(c)
  client.request(c, protocol.request.links, vim.empty_dict(), function(result)
    local items = {
      { label = "Create a writer link", create = "writer" },
      { label = "Create a reader link", create = "reader" },
    }
    for _, l in ipairs(result.links or {}) do
      if l.role ~= "host" then
        local state = l.revoked and "revoked" or ("%d uses"):format(l.uses or 0)
        items[#items + 1] = { label = ("%s link %s (%s)"):format(l.role, l.id, state), link = l }
      end
    end
    vim.ui.select(items, {
      prompt = "mesh: links",
      format_item = function(i)
        return i.label
      end,
    }, function(item)
      if not item then
        return
      end
      if item.create then
        client.request(c, protocol.request.create_link, { role = item.create }, function(link)
          copy(link.url)
          vim.notify(("mesh: new %s link (copied): %s"):format(link.role, link.url), vim.log.levels.INFO)
        end)
        return
      end
      local actions = { "Copy" }
      if not item.link.revoked then
        actions[#actions + 1] = "Revoke"
      end
      vim.ui.select(actions, { prompt = "mesh: " .. item.label }, function(a)
        if a == "Copy" then
          copy(item.link.url)
          vim.notify("mesh: copied " .. item.link.url, vim.log.levels.INFO)
        elseif a == "Revoke" then
          M.revoke(c, item.link.id)
        end
      end)
    end)
  end)
end

--- `:Mesh audit`: the room's audit trail, newest first, in a scratch buffer.
---@param c vim.lsp.Client
function M.audit(c)
  client.request(c, protocol.request.audit, { limit = 200 }, function(result)
    local lines = { "mesh audit (newest first)" }
    for _, e in ipairs(result.entries or {}) do
      lines[#lines + 1] = ("%s  %-16s %s  %s  %s"):format(
        os.date("%Y-%m-%d %H:%M:%S", math.floor((e.ts or 0) / 1000)),
        tostring(e.kind),
        tostring(e.actor),
        tostring(e.subject),
        tostring(e.detail)
      )
    end
    local buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    vim.bo[buf].modifiable = false
    vim.cmd("botright split")
    vim.api.nvim_win_set_buf(0, buf)
  end)
end

-- What the proxy tells -----------------------------------------------------------------------

--- `mesh/presence`: joins, leaves, role changes, kicks, followers. Your own role change is a
--- warning when it takes writing away.
---@param params mesh.PresenceParams
function M.on_presence(params)
  if type(params) ~= "table" or not params.message then
    return
  end
  local level = vim.log.levels.INFO
  if params.you and params.role == "reader" then
    level = vim.log.levels.WARN
  end
  vim.notify("mesh: " .. tostring(params.message), level)
end

--- `mesh/lobby`: we wait for the host.
---@param client_id integer
---@param params mesh.LobbyParams
function M.on_lobby(client_id, params)
  local status = require("mesh.status")
  local current = status.get(client_id) or { participants = {} }
  current.state = "lobby"
  current.lobby = params and params.message
  status.set(client_id, current)
  vim.notify("mesh: " .. tostring(params and params.message or "waiting for the host to let you in"), vim.log.levels.INFO)
end

--- `mesh/joinRequest` (host): asks at once.
---@param client_id integer
---@param req mesh.JoinRequest
function M.on_join_request(client_id, req)
  local c = vim.lsp.get_client_by_id(client_id)
  if not c or type(req) ~= "table" then
    return
  end
  M.answer(c, req)
end

--- `mesh/joinRequestClosed`: someone answered (maybe another of your windows) or it expired.
---@param params mesh.JoinRequestClosedParams
function M.on_join_request_closed(params)
  if type(params) ~= "table" then
    return
  end
  local by = (params.by and params.by ~= vim.NIL) and (" by " .. params.by) or ""
  vim.notify(
    ("mesh: %s was %s%s"):format(tostring(params.name), params.admitted and "let in" or "turned away", by),
    vim.log.levels.INFO
  )
end

--- `mesh/ended`: kicked, refused, or the link revoked. The proxy has left the room and said
--- why in a `mesh/notify` error already; here the state follows.
---@param client_id integer
---@param params mesh.EndedParams
function M.on_ended(client_id, params)
  local status = require("mesh.status")
  status.set(client_id, { state = "idle", participants = {}, ended = params and params.reason })
  require("mesh.follow").forget(client_id)
end

return M
