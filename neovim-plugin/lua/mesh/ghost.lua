---@brief
--- The ghost's pending suggestions in Neovim (decision 013): `mesh/ghostState` is kept per
--- client, `:Mesh suggestions` lists the suggestions, choosing one opens a preview (a scratch
--- buffer with a unified diff of each file against the file with the suggestion applied), and
--- `:Mesh accept N` / `:Mesh reject N` (or `a` / `r` in the preview) send `mesh/ghost`.
--- Readers get the preview only; the proxy and the server refuse their decisions anyway.

local protocol = require("mesh.protocol")

local M = {}

---@type table<integer, mesh.GhostStateParams>
local states = {}
--- Suggestion ids already announced, per client, so each is announced once.
---@type table<integer, table<integer, boolean>>
local announced = {}

--- Applies the edits of a suggestion that name `path` to `text` (nil: the file does not exist
--- yet), by the ghost's rules: in order, each on the text the ones before it left; the first
--- occurrence of `search` becomes `replace`; an empty `search` appends `replace`.
---@param text string?
---@param edits mesh.GhostEdit[]
---@param path string
---@return string? text the text after the edits, or nil with
---@return string? err why the suggestion cannot apply
function M.apply_edits(text, edits, path)
  local current = text or ""
  for _, e in ipairs(edits or {}) do
    if e.path == path then
      if e.search == "" then
        current = current .. e.replace
      else
        local at = current:find(e.search, 1, true)
        if not at then
          return nil,
            path .. " no longer contains the text the ghost quoted (someone changed it since): accepting would fail; ask again"
        end
        current = current:sub(1, at - 1) .. e.replace .. current:sub(at + #e.search)
      end
    end
  end
  return current
end

--- Every pending suggestion of a state, with the ghost that holds it.
---@param state mesh.GhostStateParams?
---@return { ghost: string, suggestion: mesh.GhostSuggestion }[]
function M.pending(state)
  local out = {}
  for _, g in ipairs((state and state.ghosts) or {}) do
    for _, s in ipairs(g.suggestions or {}) do
      out[#out + 1] = { ghost = g.name, suggestion = s }
    end
  end
  return out
end

--- One line for a suggestion in a list: number, files, who asked, which ghost.
---@param p { ghost: string, suggestion: mesh.GhostSuggestion }
---@return string
function M.describe(p)
  local s = p.suggestion
  local files = vim.tbl_map(function(f)
    return f.path
  end, s.files or {})
  return ("#%d %s (asked by %s, from %s)%s"):format(
    s.id,
    table.concat(files, ", "),
    s.asker,
    p.ghost,
    s.omitted and ", too large to preview" or ""
  )
end

--- `mesh/ghostState`: keeps the state and announces each new suggestion once.
---@param client_id integer
---@param params mesh.GhostStateParams
function M.on_state(client_id, params)
  states[client_id] = params
  -- Only pending ids are remembered: a new room numbers its requests from 1 again.
  local before = announced[client_id] or {}
  announced[client_id] = {}
  for _, p in ipairs(M.pending(params)) do
    announced[client_id][p.suggestion.id] = true
    if not before[p.suggestion.id] then
      vim.notify(
        ("mesh: %s suggests a change for %s (#%d): :Mesh suggestions to preview it"):format(
          p.ghost,
          p.suggestion.asker,
          p.suggestion.id
        ),
        vim.log.levels.INFO
      )
    end
  end
end

--- The state a client last received.
---@param client_id integer
---@return mesh.GhostStateParams
function M.state(client_id)
  return states[client_id] or { ghosts = {} }
end

--- The text of a file now: its loaded buffer, else the file on disk, else nil (a new file).
---@param uri string?
---@return string?
local function current_text(uri)
  if not uri then
    return nil
  end
  local bufnr = vim.uri_to_bufnr(uri)
  if vim.api.nvim_buf_is_loaded(bufnr) then
    local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
    local text = table.concat(lines, "\n")
    if vim.bo[bufnr].eol then
      text = text .. "\n"
    end
    return text
  end
  local fname = vim.uri_to_fname(uri)
  local f = io.open(fname, "rb")
  if not f then
    return nil
  end
  local text = f:read("*a")
  f:close()
  return text
end

local diff = (vim.text and vim.text.diff) or vim.diff

--- The preview's lines: a unified diff per file the suggestion changes.
---@param s mesh.GhostSuggestion
---@return string[]
function M.preview_lines(s)
  local lines = { ("Ghost suggestion #%d, asked by %s"):format(s.id, s.asker) }
  if s.omitted then
    lines[#lines + 1] = "Too large to preview: the change is in the chat (:Mesh chat). Accepting still works."
  end
  local seen = {}
  for _, e in ipairs(s.edits or {}) do
    if not seen[e.path] then
      seen[e.path] = true
      local before = current_text(e.uri)
      local after, err = M.apply_edits(before, s.edits, e.path)
      lines[#lines + 1] = ""
      if not after then
        lines[#lines + 1] = "! " .. err
      else
        lines[#lines + 1] = "--- a/" .. e.path
        lines[#lines + 1] = "+++ b/" .. e.path
        local hunks = diff(before or "", after, { result_type = "unified", ctxlen = 3 })
        for _, l in ipairs(vim.split(hunks, "\n", { trimempty = true })) do
          lines[#lines + 1] = l
        end
      end
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "a: accept   r: reject   q: close   (:Mesh accept " .. s.id .. " / :Mesh reject " .. s.id .. ")"
  return lines
end

--- Sends a decision (`accept`, `reject`) about suggestion `id`; the ghost's result comes in
--- the chat and a new state.
---@param c vim.lsp.Client
---@param kind "accept"|"reject"
---@param id integer
function M.decide(c, kind, id)
  require("mesh.client").request(c, protocol.request.ghost, { kind = kind, suggestion = id }, function()
    vim.notify(("mesh: %s suggestion #%d"):format(kind == "accept" and "accepted" or "rejected", id), vim.log.levels.INFO)
  end)
end

--- Opens the preview of suggestion `s` in a scratch buffer, with `a`, `r` and `q`.
---@param c vim.lsp.Client
---@param s mesh.GhostSuggestion
---@return integer bufnr
function M.preview(c, s)
  local name = "mesh://ghost/suggestion/" .. s.id
  local existing = vim.fn.bufnr(name)
  if existing ~= -1 then
    vim.api.nvim_buf_delete(existing, { force = true })
  end
  local bufnr = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(bufnr, name)
  vim.bo[bufnr].bufhidden = "wipe"
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, M.preview_lines(s))
  vim.bo[bufnr].modifiable = false
  vim.bo[bufnr].filetype = "diff"
  vim.b[bufnr].mesh_ghost_suggestion = s.id
  local function decide(kind)
    return function()
      M.decide(c, kind, s.id)
      if vim.api.nvim_buf_is_valid(bufnr) then
        vim.api.nvim_buf_delete(bufnr, { force = true })
      end
    end
  end
  vim.keymap.set("n", "a", decide("accept"), { buffer = bufnr, desc = "mesh: accept this suggestion" })
  vim.keymap.set("n", "r", decide("reject"), { buffer = bufnr, desc = "mesh: reject this suggestion" })
  vim.keymap.set("n", "q", "<cmd>bwipeout<cr>", { buffer = bufnr, desc = "mesh: close the preview" })
  vim.cmd("split")
  vim.api.nvim_win_set_buf(0, bufnr)
  return bufnr
end

--- `:Mesh suggestions`: picks a pending suggestion and previews it.
---@param c vim.lsp.Client
function M.list(c)
  local pending = M.pending(M.state(c.id))
  if #pending == 0 then
    vim.notify("mesh: the ghost has no suggestion waiting; ask it with :Mesh ask", vim.log.levels.INFO)
    return
  end
  vim.ui.select(pending, { prompt = "The ghost's suggestions", format_item = M.describe }, function(choice)
    if choice then
      M.preview(c, choice.suggestion)
    end
  end)
end

--- The suggestion `:Mesh accept|reject [N]` means: N, else the previewed one.
---@param args string
---@return integer? id
function M.target(args)
  local n = tonumber(vim.trim(args or ""))
  if n then
    return n
  end
  return vim.b.mesh_ghost_suggestion
end

--- The `mesh/ghost` params for `:Mesh ghost {args}`: `undo`, or `cancel [N]`.
---@param args string
---@return mesh.GhostParams? params or nil with
---@return string? err how to say it
function M.command_params(args)
  local words = vim.split(vim.trim(args or ""), "%s+", { trimempty = true })
  if words[1] == "undo" and #words == 1 then
    return { kind = "undo" }
  end
  if words[1] == "cancel" and #words <= 2 then
    local n = words[2] and tonumber(words[2])
    if words[2] and not n then
      return nil, "which request? :Mesh ghost cancel [N], N a request's number"
    end
    return { kind = "cancel", request = n }
  end
  return nil, "say what the ghost should do: :Mesh ghost undo, or :Mesh ghost cancel [N]"
end

--- Forgets a client's state (it stopped).
---@param client_id integer
function M.forget(client_id)
  states[client_id] = nil
  announced[client_id] = nil
end

return M
