---@brief
--- `:Mesh {subcommand} [args]`: the subcommands, their completion and what each does.

local client = require("mesh.client")
local protocol = require("mesh.protocol")

local M = {}

--- Puts text where a Neovim user pastes from: the unnamed register always, and the system
--- clipboard when a provider is available (silently skipped otherwise).
---@param text string
local function copy(text)
  vim.fn.setreg('"', text)
  if vim.fn.has("clipboard") == 1 then
    pcall(vim.fn.setreg, "+", text)
  end
end
M.copy = copy

--- Merges what a share or join answered into the client's status, so the link is known
--- even before the proxy's next `mesh/status`.
---@param client_id integer
---@param fields table
local function remember(client_id, fields)
  local status = require("mesh.status")
  local current = status.get(client_id) or { state = "connecting", participants = {} }
  status.set(client_id, vim.tbl_extend("force", current, fields))
end

--- Runs `fn` with the client of the current workspace, or says that mesh is not running.
---@param fn fun(c: vim.lsp.Client)
local function with_client(fn)
  local c = client.current()
  if not c then
    vim.notify("mesh: not running for this folder; start with :Mesh share or :Mesh join {link}", vim.log.levels.WARN)
    return
  end
  client.when_ready(c, function(ready, err)
    if not ready then
      vim.notify("mesh: " .. tostring(err), vim.log.levels.ERROR)
      return
    end
    fn(ready)
  end)
end

---@param status mesh.Status
---@return string
function M.format_status(status)
  local lines = { ("mesh: %s"):format(status.state or "unknown") }
  local function add(label, value)
    if value ~= nil and value ~= vim.NIL then
      lines[#lines + 1] = ("  %-9s %s"):format(label, tostring(value))
    end
  end
  add("room", status.room)
  add("role", status.role)
  add("lobby", status.lobby)
  if status.approval then
    add("approval", "on (joiners wait for the host)")
  end
  add("server", status.server)
  add("link", status.link)
  add("read link", status.readLink)
  local people = status.participants or {}
  if #people > 0 then
    add("people", #people)
  end
  local conflicts = status.conflicts or {}
  if #conflicts > 0 then
    add("conflicts", #conflicts)
    for _, path in ipairs(conflicts) do
      lines[#lines + 1] = ("    %s: the room's version is in .mesh/conflicts/%s; :Mesh resolve %s"):format(path, path, path)
    end
  end
  return table.concat(lines, "\n")
end

---@param participants mesh.Participant[]
---@return string
function M.format_participants(participants)
  if #participants == 0 then
    return "mesh: nobody is in the room"
  end
  local lines = { ("mesh: %d in the room"):format(#participants) }
  for _, p in ipairs(participants) do
    -- A signed-in person's name came from the organisation's sign-in; others typed theirs.
    lines[#lines + 1] = ("  %s%s%s  (%s, %s, %s)"):format(
      tostring(p.name),
      p.verified and " ✓" or "",
      p.you and " (you)" or "",
      tostring(p.role or "?"),
      p.verified and "verified" or "unverified",
      tostring(p.client or "?")
    )
  end
  return table.concat(lines, "\n")
end

--- A light check of a join link before the proxy sees it, so an obvious slip (a room id
--- alone, a stray word) gets an answer at once; the proxy checks the rest.
---@param link string
---@return boolean
function M.looks_like_link(link)
  return link:match("^https?://[^%s]+$") ~= nil
end

---@class mesh.Subcommand
---@field run fun(args: string)
---@field complete? fun(arglead: string): string[]
---@field help string

---@type table<string, mesh.Subcommand>
M.subcommands = {
  share = {
    help = "share this folder; the join link is copied",
    run = function()
      client.ensure_current(function(c)
        vim.notify("mesh: sharing " .. tostring(c.root_dir) .. " …", vim.log.levels.INFO)
        -- `name` in mesh/share is the room's name, which the proxy takes from the folder when
        -- left out; your own display name reaches the proxy through its environment.
        local cfg = require("mesh.config").get()
        client.request(c, protocol.request.share, { server = cfg.server }, function(result)
          remember(c.id, { room = result.room, link = result.link, readLink = result.readLink })
          copy(result.link)
          vim.notify(
            ("mesh: sharing %s\n  join link (copied): %s\n  read-only link: %s"):format(
              tostring(c.root_dir),
              tostring(result.link),
              tostring(result.readLink)
            ),
            vim.log.levels.INFO
          )
        end)
      end)
    end,
  },
  join = {
    help = "join a room into this folder",
    run = function(args)
      local link = vim.trim(args)
      if link == "" then
        vim.notify("mesh: which room? :Mesh join {link}", vim.log.levels.ERROR)
        return
      end
      if not M.looks_like_link(link) then
        vim.notify(
          ("mesh: not a mesh link: %s (expected http(s)://HOST/join/ROOM?token=…)"):format(link),
          vim.log.levels.ERROR
        )
        return
      end
      client.ensure_current(function(c)
        vim.notify("mesh: joining …", vim.log.levels.INFO)
        client.request(c, protocol.request.join, { link = link }, function(result)
          remember(c.id, { room = result.room })
          local msg = ("mesh: joined room %s into %s (%s files)"):format(
            tostring(result.room),
            tostring(c.root_dir),
            tostring(result.files)
          )
          local conflicts = type(result.conflicts) == "table" and result.conflicts or {}
          if #conflicts > 0 then
            msg = msg
              .. ("\n  kept your local version of %d files that differ from the room's: %s"):format(
                #conflicts,
                table.concat(conflicts, ", ")
              )
          end
          vim.notify(msg, #conflicts > 0 and vim.log.levels.WARN or vim.log.levels.INFO)
        end)
      end)
    end,
  },
  leave = {
    help = "leave the room",
    run = function()
      with_client(function(c)
        client.request(c, protocol.request.leave, vim.empty_dict(), function()
          require("mesh.follow").forget(c.id)
          vim.notify("mesh: left the room", vim.log.levels.INFO)
        end)
      end)
    end,
  },
  status = {
    help = "connection, room, links",
    run = function()
      with_client(function(c)
        client.request(c, protocol.request.status, vim.empty_dict(), function(status)
          require("mesh.status").set(c.id, status)
          vim.notify(M.format_status(status), vim.log.levels.INFO)
        end)
      end)
    end,
  },
  resolve = {
    help = "share your text of a file in conflict (after taking what you need from .mesh/conflicts/): :Mesh resolve [file]",
    run = function(args)
      with_client(function(c)
        local params
        if args ~= "" then
          params = { path = args }
        else
          params = { uri = vim.uri_from_bufnr(0) }
        end
        client.request(c, protocol.request.resolve, params, function()
          vim.notify("mesh: resolved " .. (args ~= "" and args or vim.fn.expand("%:.")), vim.log.levels.INFO)
        end)
      end)
    end,
    complete = function(arglead)
      local c = client.current()
      local status = c and require("mesh.status").get(c.id) or {}
      return vim.tbl_filter(function(p)
        return vim.startswith(p, arglead)
      end, status.conflicts or {})
    end,
  },
  participants = {
    help = "who is in the room; the host picks someone to change their role or remove them",
    run = function()
      with_client(function(c)
        client.request(c, protocol.request.status, vim.empty_dict(), function(status)
          require("mesh.status").set(c.id, status)
          require("mesh.host").participants(c)
        end)
      end)
    end,
  },
  role = {
    help = "host: change someone's role: :Mesh role {who} {reader|writer|host}",
    run = function(args)
      with_client(function(c)
        require("mesh.host").role(c, args)
      end)
    end,
    complete = function(arglead)
      return M.complete_people(arglead)
    end,
  },
  kick = {
    help = "host: remove someone from the room: :Mesh kick {who}",
    run = function(args)
      with_client(function(c)
        require("mesh.host").kick_command(c, args)
      end)
    end,
    complete = function(arglead)
      return M.complete_people(arglead)
    end,
  },
  admit = {
    help = "host: let someone waiting in: :Mesh admit [who]",
    run = function(args)
      with_client(function(c)
        require("mesh.host").admit_command(c, args, true)
      end)
    end,
  },
  refuse = {
    help = "host: turn someone waiting away: :Mesh refuse [who]",
    run = function(args)
      with_client(function(c)
        require("mesh.host").admit_command(c, args, false)
      end)
    end,
  },
  approval = {
    help = "host: joiners wait for your approval: :Mesh approval [on|off] (no argument toggles)",
    run = function(args)
      with_client(function(c)
        require("mesh.host").approval(c, args)
      end)
    end,
    complete = function(arglead)
      return vim.tbl_filter(function(w)
        return vim.startswith(w, arglead)
      end, { "on", "off" })
    end,
  },
  links = {
    help = "host: the room's links: copy, revoke, create",
    run = function()
      with_client(function(c)
        require("mesh.host").links(c)
      end)
    end,
  },
  audit = {
    help = "host: the room's audit trail",
    run = function()
      with_client(function(c)
        require("mesh.host").audit(c)
      end)
    end,
  },
  follow = {
    help = "follow someone's view: :Mesh follow {name}",
    run = function(args)
      with_client(function(c)
        require("mesh.follow").start(c, args)
      end)
    end,
    complete = function(arglead)
      local c = client.current()
      local status = c and require("mesh.status").get(c.id) or nil
      local names = {}
      for _, p in ipairs(require("mesh.status").others(status)) do
        local name = tostring(p.name)
        if name:lower():sub(1, #arglead) == arglead:lower() then
          names[#names + 1] = name
        end
      end
      table.sort(names)
      return names
    end,
  },
  unfollow = {
    help = "stop following",
    run = function()
      with_client(function(c)
        require("mesh.follow").unfollow(c)
      end)
    end,
  },
  chat = {
    help = "open the chat, or send :Mesh chat {text}",
    run = function(args)
      with_client(function(c)
        if vim.trim(args) == "" then
          require("mesh.chat").open(c)
        else
          require("mesh.chat").send(c, args)
        end
      end)
    end,
  },
  ask = {
    help = "ask the room's ghost about this file (with a range, those lines): :[range]Mesh ask [--write|--explain] {text}",
    run = function(args, range)
      with_client(function(c)
        M.ask(c, args, range)
      end)
    end,
    complete = function(arglead)
      return vim.tbl_filter(function(o)
        return o:sub(1, #arglead) == arglead
      end, { "--write", "--explain" })
    end,
  },
  suggestions = {
    help = "list the ghost's pending suggestions; choosing one previews it (a: accept, r: reject)",
    run = function()
      with_client(function(c)
        require("mesh.ghost").list(c)
      end)
    end,
  },
  ghost = {
    help = "undo the ghost's newest change, or cancel its request (writers): :Mesh ghost undo | :Mesh ghost cancel [N]",
    run = function(args)
      local params, err = require("mesh.ghost").command_params(args)
      if not params then
        vim.notify("mesh: " .. err, vim.log.levels.WARN)
        return
      end
      with_client(function(c)
        client.request(c, protocol.request.ghost, params, function()
          vim.notify(
            "mesh: " .. (params.kind == "undo" and "asked the ghost to undo its last change" or "cancelled the ghost's request"),
            vim.log.levels.INFO
          )
        end)
      end)
    end,
    complete = function(arglead)
      return vim.tbl_filter(function(o)
        return o:sub(1, #arglead) == arglead
      end, { "undo", "cancel" })
    end,
  },
  accept = {
    help = "accept the ghost's suggestion N (writers): :Mesh accept [N] (no N: the one previewed)",
    run = function(args)
      M.decide("accept", args)
    end,
  },
  reject = {
    help = "reject the ghost's suggestion N (writers): :Mesh reject [N] (no N: the one previewed)",
    run = function(args)
      M.decide("reject", args)
    end,
  },
  run = {
    help = "run a file in the room, everyone watches: :Mesh run [file]",
    run = function(args)
      with_client(function(c)
        require("mesh.run").start(c, args)
      end)
    end,
    complete = function(arglead)
      return vim.fn.getcompletion(arglead, "file")
    end,
  },
  stop = {
    help = "stop the current run, or leave the debug session (ending it if you started it)",
    run = function()
      if require("mesh.debug").session_active() then
        require("mesh.debug").action("stop")
        return
      end
      with_client(function(c)
        require("mesh.run").stop(c)
      end)
    end,
  },
  ["break"] = {
    help = "debugging: toggle a breakpoint on the cursor's line; with a condition, a conditional one: :Mesh break [condition]",
    run = function(args)
      require("mesh.debug").action("break", args)
    end,
  },
  continue = {
    help = "debugging: continue the program",
    run = function()
      require("mesh.debug").action("continue")
    end,
  },
  step = {
    help = "debugging: step over (default), in or out: :Mesh step [over|in|out]",
    run = function(args)
      require("mesh.debug").action("step", args)
    end,
    complete = function(arglead)
      return vim.tbl_filter(function(w)
        return vim.startswith(w, arglead)
      end, { "over", "in", "out" })
    end,
  },
  pause = {
    help = "debugging: pause the program",
    run = function()
      require("mesh.debug").action("pause")
    end,
  },
  restart = {
    help = "debugging: restart the program for everyone (same files and breakpoints)",
    run = function()
      require("mesh.debug").action("restart")
    end,
  },
  eval = {
    help = "debugging: evaluate an expression in the selected frame: :Mesh eval {expression}",
    run = function(args)
      require("mesh.debug").action("eval", args)
    end,
  },
  debugger = {
    help = "debugging: show the debugger window (threads, stack, variables)",
    run = function()
      require("mesh.debug").action("window")
    end,
  },
  input = {
    help = "type a line into the current run: :Mesh input [text]",
    run = function(args)
      -- While debugging here, the line goes to the debugged program.
      if package.loaded["mesh.dap"] and require("mesh.dap").active() then
        if args == "" then
          require("mesh.dap").prompt_input()
        else
          require("mesh.dap").input(args)
        end
        return
      end
      with_client(function(c)
        if args == "" then
          require("mesh.run").prompt_input(c)
        else
          require("mesh.run").input(c, nil, args .. "\n", false)
        end
      end)
    end,
  },
  debug = {
    help = "debug a file of the room together (nvim-dap if installed, else the built-in debugger): :Mesh debug [file]",
    run = function(args)
      require("mesh.debug").start(args)
    end,
    complete = function(arglead)
      return vim.fn.getcompletion(arglead, "file")
    end,
  },
}

--- Names of the others in the room starting with `arglead`, for completion.
---@param arglead string
---@return string[]
function M.complete_people(arglead)
  local c = client.current()
  local status = c and require("mesh.status").get(c.id) or nil
  local names = {}
  for _, p in ipairs(require("mesh.status").others(status)) do
    local name = tostring(p.name)
    if name:lower():sub(1, #arglead) == arglead:lower() then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  return names
end

--- The subcommand names, sorted.
---@return string[]
function M.names()
  local names = vim.tbl_keys(M.subcommands)
  table.sort(names)
  return names
end

--- The `mesh/ghostAsk` params for `:Mesh ask {args}` in the current buffer: the mode from a
--- leading `--write` or `--explain`, and the range's lines (or the cursor's line) with their
--- text as the selection.
---@param args string
---@param range? integer[]
---@return mesh.GhostAskParams?, string? error
function M.ask_params(args, range)
  local mode
  local text = vim.trim(args)
  local flag, rest = text:match("^%-%-(%a+)%s*(.*)$")
  if flag == "write" or flag == "explain" then
    mode, text = flag, vim.trim(rest)
  end
  if text == "" then
    return nil, "say what to ask: :Mesh ask {text} (with a range, about those lines)"
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local first, last
  if range then
    first, last = range[1], range[2]
  else
    first = vim.api.nvim_win_get_cursor(0)[1]
    last = first
  end
  local lines = vim.api.nvim_buf_get_lines(bufnr, first - 1, last, false)
  return {
    text = text,
    mode = mode,
    uri = vim.uri_from_bufnr(bufnr),
    startLine = first,
    endLine = last,
    selection = table.concat(lines, "\n"),
  }
end

--- `:Mesh ask`: sends the question; the ghost's progress and answer come in the chat.
---@param c vim.lsp.Client
---@param args string
---@param range? integer[]
function M.ask(c, args, range)
  local params, err = M.ask_params(args, range)
  if not params then
    vim.notify("mesh: " .. err, vim.log.levels.WARN)
    return
  end
  client.request(c, protocol.request.ghost_ask, params, function()
    vim.notify(
      ("mesh: asked the ghost about lines %d-%d; its answer comes in the chat (:Mesh chat)"):format(
        params.startLine,
        params.endLine
      ),
      vim.log.levels.INFO
    )
  end)
end

--- `:Mesh accept|reject [N]`: the suggestion named, else the one previewed in this buffer.
---@param kind "accept"|"reject"
---@param args string
function M.decide(kind, args)
  local ghost = require("mesh.ghost")
  local id = ghost.target(args)
  if not id then
    vim.notify(
      ("mesh: which suggestion? :Mesh %s N (see :Mesh suggestions), or press %s in its preview"):format(
        kind,
        kind == "accept" and "a" or "r"
      ),
      vim.log.levels.WARN
    )
    return
  end
  with_client(function(c)
    ghost.decide(c, kind, id)
  end)
end

--- Runs `:Mesh` with its argument string. No argument shows the status.
---@param line string
---@param range? integer[] the command's line range ({first, last}, 1-based), when it had one
function M.run(line, range)
  local name, rest = vim.trim(line):match("^(%S*)%s*(.*)$")
  if name == "" then
    name = "status"
  end
  local sub = M.subcommands[name]
  if not sub then
    vim.notify(
      ("mesh: unknown subcommand %q; one of: %s"):format(name, table.concat(M.names(), ", ")),
      vim.log.levels.ERROR
    )
    return
  end
  local ok, err = pcall(sub.run, rest or "", range)
  if not ok then
    vim.notify(("mesh: :Mesh %s failed: %s"):format(name, tostring(err)), vim.log.levels.ERROR)
  end
end

--- Completion for `:Mesh`: subcommands first, then the subcommand's own arguments.
---@param arglead string
---@param cmdline string
---@return string[]
function M.complete(arglead, cmdline)
  local rest = cmdline:gsub("^%s*%S+", "", 1)
  local words = vim.split(vim.trim(rest), "%s+", { trimempty = true })
  local completing_first = #words == 0 or (#words == 1 and arglead ~= "")
  if completing_first then
    return vim.tbl_filter(function(n)
      return n:sub(1, #arglead) == arglead
    end, M.names())
  end
  local sub = M.subcommands[words[1]]
  if sub and sub.complete then
    return sub.complete(arglead)
  end
  return {}
end

return M
