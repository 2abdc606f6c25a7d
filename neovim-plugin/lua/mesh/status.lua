---@brief
--- What the proxies last said about their rooms (`mesh/status`, `mesh/participants`), one
--- entry per client, and the statusline text built from it.

local M = {}

---@type table<integer, mesh.Status>
local by_client = {}

--- Records a `mesh/status` notification (or a `mesh/status` answer).
---@param client_id integer
---@param status mesh.Status
function M.set(client_id, status)
  if type(status) ~= "table" then
    return
  end
  status.participants = type(status.participants) == "table" and status.participants or {}
  by_client[client_id] = status
  vim.cmd("redrawstatus")
end

--- Records a `mesh/participants` notification.
---@param client_id integer
---@param participants mesh.Participant[]
function M.set_participants(client_id, participants)
  local status = by_client[client_id] or { state = "idle", participants = {} }
  status.participants = type(participants) == "table" and participants or {}
  by_client[client_id] = status
  vim.cmd("redrawstatus")
end

--- Forgets a client (its proxy exited).
---@param client_id integer
function M.clear(client_id)
  by_client[client_id] = nil
  pcall(vim.cmd, "redrawstatus")
end

--- The last status of a client, or nil.
---@param client_id integer
---@return mesh.Status?
function M.get(client_id)
  return by_client[client_id]
end

--- The participants other than you.
---@param status mesh.Status?
---@return mesh.Participant[]
function M.others(status)
  local out = {}
  for _, p in ipairs(status and status.participants or {}) do
    if not p.you and p.connId ~= status.you then
      out[#out + 1] = p
    end
  end
  return out
end

--- The statusline text for a status: empty while idle, so a statusline only shows mesh
--- when there is a room.
---@param status mesh.Status?
---@param following? string name of the person followed
---@return string
function M.format(status, following)
  if not status or status.state == nil or status.state == "idle" then
    return ""
  end
  local parts = { "mesh" }
  if status.state == "connected" then
    local count = #(status.participants or {})
    parts[#parts + 1] = ("%d %s"):format(count, count == 1 and "person" or "people")
    if status.role == "reader" then
      parts[#parts + 1] = "read-only"
    elseif status.role == "host" then
      parts[#parts + 1] = "host"
    end
    local waiting = #(status.joinRequests or {})
    if waiting > 0 then
      parts[#parts + 1] = ("%d waiting (:Mesh admit)"):format(waiting)
    end
  elseif status.state == "lobby" then
    parts[#parts + 1] = "waiting for the host to let you in"
  else
    parts[#parts + 1] = status.state
  end
  if following then
    parts[#parts + 1] = "following " .. following
  end
  return table.concat(parts, " · ")
end

return M
