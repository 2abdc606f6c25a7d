---@brief
--- The handlers for everything the proxy sends to Neovim: `workspace/applyEdit`, the
--- `mesh/documentHash` request and the `mesh/*` notifications. Each runs under `xpcall`: a
--- malformed message is logged and reported in one line, never as a Lua stack trace in the
--- user's face, and never takes the LSP client down.

local protocol = require("mesh.protocol")

local M = {}

--- Wraps a handler so an error in it becomes one notification (and a log entry with the
--- traceback for bug reports).
---@param method string
---@param fn fun(err: table?, result: any, ctx: table): any, any
---@return lsp.Handler
local function guarded(method, fn)
  return function(err, result, ctx)
    local ok, a, b = xpcall(fn, debug.traceback, err, result, ctx)
    if ok then
      return a, b
    end
    vim.lsp.log.error("mesh: handler for " .. method .. " failed", a)
    vim.notify(
      ("mesh: could not handle %s from mesh-proxy: %s"):format(method, tostring(a):match("^[^\n]*")),
      vim.log.levels.WARN
    )
    return nil, vim.lsp.rpc.rpc_response_error(vim.lsp.protocol.ErrorCodes.InternalError, tostring(a))
  end
end

---@param ctx table
---@return string
local function encoding_of(ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  return client and client.offset_encoding or "utf-16"
end

local levels = {
  info = vim.log.levels.INFO,
  warning = vim.log.levels.WARN,
  error = vim.log.levels.ERROR,
}

--- The handler table given to `vim.lsp.start`.
---@return table<string, lsp.Handler>
function M.table()
  local n = protocol.notification
  local handlers = {}

  handlers["workspace/applyEdit"] = guarded("workspace/applyEdit", function(err, params, ctx)
    return require("mesh.edits").handler(err, params, ctx)
  end)

  handlers[protocol.server_request.document_hash] = guarded(protocol.server_request.document_hash, function(_, params)
    local result, message = require("mesh.edits").document_hash(params)
    if not result then
      return nil, vim.lsp.rpc.rpc_response_error(vim.lsp.protocol.ErrorCodes.InvalidParams, message)
    end
    return result
  end)

  handlers[n.status] = guarded(n.status, function(_, params, ctx)
    require("mesh.status").set(ctx.client_id, params)
  end)

  handlers[n.participants] = guarded(n.participants, function(_, params, ctx)
    require("mesh.status").set_participants(ctx.client_id, params and params.participants)
  end)

  handlers[n.cursors] = guarded(n.cursors, function(_, params, ctx)
    require("mesh.cursors").update(ctx.client_id, params, encoding_of(ctx))
  end)

  handlers[n.follow] = guarded(n.follow, function(_, params, ctx)
    require("mesh.follow").on_follow(ctx.client_id, params, encoding_of(ctx))
  end)

  handlers[n.follow_stopped] = guarded(n.follow_stopped, function(_, params, ctx)
    require("mesh.follow").on_stopped(ctx.client_id, params and params.reason)
  end)

  handlers[n.chat_message] = guarded(n.chat_message, function(_, params, ctx)
    require("mesh.chat").on_message(ctx.client_id, params and params.entry)
  end)

  handlers[n.ghost_state] = guarded(n.ghost_state, function(_, params, ctx)
    require("mesh.ghost").on_state(ctx.client_id, params)
  end)

  handlers[n.run_started] = guarded(n.run_started, function(_, params, ctx)
    require("mesh.run").on_started(ctx.client_id, params)
  end)

  handlers[n.run_queued] = guarded(n.run_queued, function(_, params, ctx)
    require("mesh.run").on_queued(ctx.client_id, params)
  end)

  handlers[n.run_output] = guarded(n.run_output, function(_, params)
    require("mesh.run").on_output(params)
  end)

  handlers[n.run_exited] = guarded(n.run_exited, function(_, params)
    require("mesh.run").on_exited(params)
  end)

  handlers[n.debug_started] = guarded(n.debug_started, function(_, params, ctx)
    require("mesh.debug").on_started(params, ctx.client_id)
  end)

  handlers[n.debug_breakpoints] = guarded(n.debug_breakpoints, function(_, params, ctx)
    require("mesh.breakpoints").on_breakpoints(ctx.client_id, params)
  end)

  handlers[n.debug_ended] = guarded(n.debug_ended, function(_, params, ctx)
    require("mesh.breakpoints").on_ended(ctx.client_id, params)
    require("mesh.debug").on_ended(ctx.client_id, params)
  end)

  handlers[n.presence] = guarded(n.presence, function(_, params)
    require("mesh.host").on_presence(params)
  end)

  handlers[n.lobby] = guarded(n.lobby, function(_, params, ctx)
    require("mesh.host").on_lobby(ctx.client_id, params)
  end)

  handlers[n.join_request] = guarded(n.join_request, function(_, params, ctx)
    -- Scheduled: a prompt must not run inside the LSP handler.
    vim.schedule(function()
      require("mesh.host").on_join_request(ctx.client_id, params)
    end)
  end)

  handlers[n.join_request_closed] = guarded(n.join_request_closed, function(_, params)
    require("mesh.host").on_join_request_closed(params)
  end)

  handlers[n.ended] = guarded(n.ended, function(_, params, ctx)
    require("mesh.host").on_ended(ctx.client_id, params)
  end)

  handlers[n.notify] = guarded(n.notify, function(_, params)
    if type(params) ~= "table" or params.message == nil then
      return
    end
    vim.notify("mesh: " .. tostring(params.message), levels[params.level] or vim.log.levels.INFO)
  end)

  return handlers
end

return M
