---@brief
--- Shared runs: `:Mesh run [file]` asks the proxy to run a file of the room (`mesh/run`);
--- every run in the room, yours or anyone's, gets an output buffer of its own that fills
--- live from `mesh/runOutput` (compiler output and stderr highlighted) and ends with an exit
--- line from `mesh/runExited`. The output window shows the newest run. `:Mesh input` and
--- `:Mesh stop` act on the run shown there (else the newest one still going); in the output
--- buffer `i` types a line, `<C-d>` closes stdin, `<C-c>` stops and `q` closes the window.
--- A run that waits for a free sandbox (`mesh/runQueued`) gets its buffer at once, with its
--- place in the server's queue written as it moves; `<C-c>` there takes it out of the queue.

local client = require("mesh.client")
local config = require("mesh.config")
local protocol = require("mesh.protocol")

local M = {}

local api = vim.api

--- Namespace of the output buffers' highlights.
local ns = api.nvim_create_namespace("mesh.run")

--- Older output buffers beyond this many are wiped (unless shown): a long session of runs
--- should not leave hundreds of buffers behind.
local MAX_RUN_BUFFERS = 20

--- Highlight group per output stream (stdout keeps the buffer's normal colours).
local STREAM_HL = { compile = "MeshRunCompile", stderr = "MeshRunStderr" }

---@class mesh.Run
---@field id string
---@field client_id integer
---@field path string
---@field by_name string
---@field you boolean
---@field bufnr integer
---@field open table<string, integer> per stream, the 0-based row of its line still open (output without a newline yet)
---@field exited? mesh.RunExitedParams
---@field seq integer order of arrival

---@type table<string, mesh.Run>
local runs = {}
local next_seq = 0

--- Defines the highlight groups, linked to common ones so colour schemes style them.
local function define_highlights()
  local links = {
    MeshRunHeader = "Title",
    MeshRunNote = "Comment",
    MeshRunCompile = "DiagnosticWarn",
    MeshRunStderr = "DiagnosticError",
    MeshRunExitOk = "DiagnosticOk",
    MeshRunExitFail = "DiagnosticError",
  }
  for group, target in pairs(links) do
    api.nvim_set_hl(0, group, { link = target, default = true })
  end
end

--- Removes terminal escape sequences (colours, cursor moves, titles) and carriage returns:
--- a Neovim buffer shows them as raw bytes.
---@param data string
---@return string
function M.strip_ansi(data)
  local out = data:gsub("\27%][^\7\27]*\7", ""):gsub("\27%][^\7\27]*\27\\", "")
  out = out:gsub("\27%[[0-?]*[ -/]*[@-~]", ""):gsub("\27[@-Z\\-_]", "")
  out = out:gsub("\r\n", "\n"):gsub("\r", "")
  return out
end

--- How a piece of output changes the buffer: text for the open last line (when there is
--- one), whole new lines, and whether the last line stays open.
---@param partial boolean whether the buffer's last line is open
---@param data string
---@return { extend?: string, lines: string[], partial: boolean }
function M.split_output(partial, data)
  local pieces = vim.split(data, "\n", { plain = true })
  local ends_open = pieces[#pieces] ~= ""
  if not ends_open then
    table.remove(pieces)
  end
  local result = { lines = pieces, partial = ends_open or (partial and #pieces == 0) }
  if partial and #pieces > 0 then
    result.extend = table.remove(pieces, 1)
  end
  return result
end

---@param ms number
---@return string
local function duration(ms)
  ms = tonumber(ms) or 0
  if ms < 1000 then
    return ("%d ms"):format(ms)
  end
  return ("%.1f s"):format(ms / 1000)
end

--- The last line of a run's output, and whether it ended well.
---@param params mesh.RunExitedParams
---@return string line
---@return boolean ok
function M.format_exit(params)
  local code = params.code ~= nil and params.code ~= vim.NIL and params.code or nil
  local err = params.error ~= nil and params.error ~= vim.NIL and params.error or nil
  local limit = params.limit ~= nil and params.limit ~= vim.NIL and params.limit or nil
  if err then
    return "■ " .. tostring(err), false
  end
  local parts = {}
  if limit then
    parts[#parts + 1] = ("%s limit hit"):format(limit)
  elseif params.stage == "compile" then
    parts[#parts + 1] = "compile error"
  end
  parts[#parts + 1] = code and ("exit %d"):format(code) or "no exit code"
  parts[#parts + 1] = duration(params.durationMs)
  return "■ " .. table.concat(parts, " · "), code == 0 and not limit
end

--- The first line of a run's buffer.
---@param params mesh.RunStartedParams
---@return string
function M.format_header(params)
  local who = params.you and "you" or tostring(params.byName or "someone")
  local path, language, id = tostring(params.path), tostring(params.language), tostring(params.runId)
  return ("▶ %s · %s (%s) · run %s"):format(who, path, language, id)
end

--- Appends lines to a run's buffer (modifiable only while writing), highlighting each new
--- stretch of text with `hl` when given.
---@param run mesh.Run
---@param extend? string text for an open line
---@param row? integer that open line (0-based)
---@param lines string[]
---@param hl? string
local function write(run, extend, row, lines, hl)
  local bufnr = run.bufnr
  if not api.nvim_buf_is_valid(bufnr) then
    return
  end
  vim.bo[bufnr].modifiable = true
  if extend and extend ~= "" and row then
    local col = #(api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or "")
    api.nvim_buf_set_text(bufnr, row, col, row, col, { extend })
    if hl then
      api.nvim_buf_set_extmark(bufnr, ns, row, col, { end_col = col + #extend, hl_group = hl })
    end
  end
  local last = api.nvim_buf_line_count(bufnr) - 1
  if #lines > 0 then
    api.nvim_buf_set_lines(bufnr, last + 1, last + 1, false, lines)
    for i, line in ipairs(lines) do
      if hl and line ~= "" then
        api.nvim_buf_set_extmark(bufnr, ns, last + i, 0, { end_col = #line, hl_group = hl })
      end
    end
  end
  vim.bo[bufnr].modifiable = false
  vim.bo[bufnr].modified = false
  for _, win in ipairs(vim.fn.win_findbuf(bufnr)) do
    if win ~= api.nvim_get_current_win() then
      api.nvim_win_set_cursor(win, { api.nvim_buf_line_count(bufnr), 0 })
    end
  end
end

--- The window showing run output, if any.
---@return integer?
local function output_window()
  for _, win in ipairs(api.nvim_list_wins()) do
    if vim.b[api.nvim_win_get_buf(win)].mesh_run_id then
      return win
    end
  end
  return nil
end

--- Shows a run's buffer in the output window, opening a split at the bottom if needed,
--- without taking the focus from where you are typing.
---@param run mesh.Run
function M.show(run)
  local win = output_window()
  if win then
    api.nvim_win_set_buf(win, run.bufnr)
  else
    local from = api.nvim_get_current_win()
    vim.cmd(("botright %dsplit"):format(config.get().run_height))
    win = api.nvim_get_current_win()
    api.nvim_win_set_buf(win, run.bufnr)
    vim.wo[win].number = false
    vim.wo[win].relativenumber = false
    vim.wo[win].signcolumn = "no"
    vim.wo[win].wrap = true
    if api.nvim_win_is_valid(from) then
      api.nvim_set_current_win(from)
    end
  end
  api.nvim_win_set_cursor(win, { api.nvim_buf_line_count(run.bufnr), 0 })
end

--- Wipes the oldest output buffers that are not shown, keeping [`MAX_RUN_BUFFERS`].
local function prune()
  local list = vim.tbl_values(runs)
  table.sort(list, function(a, b)
    return a.seq > b.seq
  end)
  for i = MAX_RUN_BUFFERS + 1, #list do
    local run = list[i]
    if #vim.fn.win_findbuf(run.bufnr) == 0 then
      runs[run.id] = nil
      if api.nvim_buf_is_valid(run.bufnr) then
        api.nvim_buf_delete(run.bufnr, { force = true })
      end
    end
  end
end

---@param run mesh.Run
---@param keys string
---@param fn fun()
---@param desc string
local function map(run, keys, fn, desc)
  vim.keymap.set("n", keys, fn, { buffer = run.bufnr, nowait = true, desc = "mesh: " .. desc })
end

--- Sends to the run of this buffer, through its client if that still runs.
---@param run mesh.Run
---@param fn fun(c: vim.lsp.Client, run: mesh.Run)
local function with_run_client(run, fn)
  local c = vim.lsp.get_client_by_id(run.client_id)
  if not c then
    vim.notify("mesh: mesh-proxy is not running; the run cannot be reached", vim.log.levels.ERROR)
    return
  end
  fn(c, run)
end

--- Creates the output buffer of a run, with its keys.
---@param run mesh.Run
local function create_buffer(run)
  local bufnr = api.nvim_create_buf(false, true)
  run.bufnr = bufnr
  vim.bo[bufnr].buftype = "nofile"
  vim.bo[bufnr].bufhidden = "hide"
  vim.bo[bufnr].swapfile = false
  vim.bo[bufnr].filetype = "meshrun"
  vim.b[bufnr].mesh_run_id = run.id
  pcall(api.nvim_buf_set_name, bufnr, ("mesh://run/%s/%s"):format(run.id, run.path))
  map(run, "i", function()
    with_run_client(run, function(c)
      M.prompt_input(c, run.id)
    end)
  end, "type a line into the run")
  map(run, "<C-d>", function()
    with_run_client(run, function(c)
      M.input(c, run.id, "", true)
    end)
  end, "close the run's stdin")
  map(run, "<C-c>", function()
    with_run_client(run, function(c)
      M.stop(c, run.id)
    end)
  end, "stop the run")
  map(run, "q", function()
    vim.cmd("close")
  end, "close the output window")
end

--- `mesh/runStarted`: a run started in the room (yours or anyone's).
---@param client_id integer
---@param params mesh.RunStartedParams
function M.on_started(client_id, params)
  if type(params) ~= "table" or type(params.runId) ~= "string" then
    return
  end
  local waited = runs[params.runId]
  if waited then
    if not waited.exited then
      write(waited, nil, nil, { "started" }, "MeshRunNote")
    end
    return
  end
  define_highlights()
  next_seq = next_seq + 1
  local run = {
    id = params.runId,
    client_id = client_id,
    path = tostring(params.path),
    by_name = tostring(params.byName or "someone"),
    you = params.you == true,
    bufnr = -1,
    open = {},
    seq = next_seq,
  }
  create_buffer(run)
  runs[run.id] = run
  vim.bo[run.bufnr].modifiable = true
  local header = M.format_header(params)
  api.nvim_buf_set_lines(run.bufnr, 0, -1, false, { header })
  api.nvim_buf_set_extmark(run.bufnr, ns, 0, 0, { end_col = #header, hl_group = "MeshRunHeader" })
  vim.bo[run.bufnr].modifiable = false
  if run.you or config.get().run_open_others then
    M.show(run)
  end
  if not run.you then
    vim.notify(("mesh: %s runs %s"):format(run.by_name, run.path), vim.log.levels.INFO)
  end
  prune()
end

--- `mesh/runQueued`: a run (or a debug session) waits for a free sandbox; its buffer opens
--- now, and each move in the queue adds a line.
---@param client_id integer
---@param params mesh.RunQueuedParams
function M.on_queued(client_id, params)
  if type(params) ~= "table" or type(params.runId) ~= "string" or type(params.message) ~= "string" then
    return
  end
  if not runs[params.runId] then
    M.on_started(client_id, params)
  end
  local run = runs[params.runId]
  if run and not run.exited then
    write(run, nil, nil, { params.message }, "MeshRunNote")
  end
end

--- `mesh/runOutput`: output of a run, appended to its buffer as it comes.
---@param params mesh.RunOutputParams
function M.on_output(params)
  local run = type(params) == "table" and runs[params.runId] or nil
  if not run or type(params.data) ~= "string" then
    return
  end
  -- Each stream continues its own open line: stdout and stderr arrive interleaved, and
  -- half a stdout line must neither swallow a stderr line nor be split by one.
  local row = run.open[params.stream]
  local change = M.split_output(row ~= nil, M.strip_ansi(params.data))
  write(run, change.extend, row, change.lines, STREAM_HL[params.stream])
  if not change.partial then
    run.open[params.stream] = nil
  elseif #change.lines > 0 then
    run.open[params.stream] = api.nvim_buf_line_count(run.bufnr) - 1
  end
end

--- `mesh/runExited`: the run ended; its exit line closes the buffer's output.
---@param params mesh.RunExitedParams
function M.on_exited(params)
  local run = type(params) == "table" and runs[params.runId] or nil
  if not run or run.exited then
    return
  end
  run.exited = params
  run.open = {}
  local line, ok = M.format_exit(params)
  write(run, nil, nil, { line }, ok and "MeshRunExitOk" or "MeshRunExitFail")
  if run.you and #vim.fn.win_findbuf(run.bufnr) == 0 then
    vim.notify(("mesh: %s ended: %s"):format(run.path, line:sub(#"■ " + 1)), vim.log.levels.INFO)
  end
end

--- The run commands act on: the one shown in the output window while it is going, else the
--- newest run still going (of this client).
---@param client_id integer
---@return mesh.Run?
function M.current(client_id)
  local win = output_window()
  local shown = win and runs[vim.b[api.nvim_win_get_buf(win)].mesh_run_id] or nil
  if shown and not shown.exited and shown.client_id == client_id then
    return shown
  end
  local best = nil
  for _, run in pairs(runs) do
    if not run.exited and run.client_id == client_id and (not best or run.seq > best.seq) then
      best = run
    end
  end
  return best
end

--- The run a command acts on, or a message saying there is none.
---@param c vim.lsp.Client
---@param run_id? string
---@return string?
local function target(c, run_id)
  if run_id then
    return run_id
  end
  local run = M.current(c.id)
  if not run then
    vim.notify("mesh: no run is going; start one with :Mesh run", vim.log.levels.WARN)
    return nil
  end
  return run.id
end

--- `:Mesh run [file]`: runs `file` (default: the current buffer's file) in the room.
---@param c vim.lsp.Client
---@param file string
function M.start(c, file)
  local uri
  file = vim.trim(file)
  if file ~= "" then
    uri = vim.uri_from_fname(vim.fn.fnamemodify(vim.fn.expand(file), ":p"))
  elseif api.nvim_buf_get_name(0) ~= "" and vim.bo.buftype == "" then
    uri = vim.uri_from_bufnr(0)
  else
    vim.notify("mesh: which file? Open a file of the shared folder, or :Mesh run {file}", vim.log.levels.ERROR)
    return
  end
  client.request(c, protocol.request.run, { uri = uri }, function(result)
    local run = result and runs[result.runId]
    if run then
      M.show(run)
    end
  end)
end

--- Sends text to a run's stdin (`eof` closes it after the text).
---@param c vim.lsp.Client
---@param run_id? string default: the current run
---@param text string
---@param eof boolean
function M.input(c, run_id, text, eof)
  run_id = target(c, run_id)
  if run_id then
    client.request(c, protocol.request.run_input, { runId = run_id, data = text, eof = eof })
  end
end

--- Asks for a line and sends it, with a newline, to a run's stdin.
---@param c vim.lsp.Client
---@param run_id? string default: the current run
function M.prompt_input(c, run_id)
  run_id = target(c, run_id)
  if not run_id then
    return
  end
  vim.ui.input({ prompt = "stdin> " }, function(line)
    if line ~= nil then
      M.input(c, run_id, line .. "\n", false)
    end
  end)
end

--- Stops a run.
---@param c vim.lsp.Client
---@param run_id? string default: the current run
function M.stop(c, run_id)
  run_id = target(c, run_id)
  if run_id then
    client.request(c, protocol.request.run_stop, { runId = run_id })
  end
end

---@class mesh.RunView
---@field id string
---@field path string
---@field by string who started it
---@field you boolean
---@field exited boolean
---@field shown boolean whether a window shows its buffer
---@field bufnr integer
---@field lines string[] the buffer's text

--- The runs with their buffers' text, oldest first (for tests and scripts).
---@return mesh.RunView[]
function M.describe()
  local list = vim.tbl_values(runs)
  table.sort(list, function(a, b)
    return a.seq < b.seq
  end)
  return vim.tbl_map(function(run)
    local valid = api.nvim_buf_is_valid(run.bufnr)
    return {
      id = run.id,
      path = run.path,
      by = run.by_name,
      you = run.you,
      exited = run.exited ~= nil,
      shown = valid and #vim.fn.win_findbuf(run.bufnr) > 0,
      bufnr = run.bufnr,
      lines = valid and api.nvim_buf_get_lines(run.bufnr, 0, -1, false) or {},
    }
  end, list)
end

--- Forgets the runs of a client that exited. Their buffers stay readable; those still going
--- end with a line saying that nothing more will be shown.
---@param client_id integer
function M.forget(client_id)
  for id, run in pairs(runs) do
    if run.client_id == client_id then
      M.on_exited({ runId = id, stage = "run", error = "mesh-proxy stopped; the rest of this run is not shown here" })
      runs[id] = nil
    end
  end
end

return M
