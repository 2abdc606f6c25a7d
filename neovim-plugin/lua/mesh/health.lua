---@brief
--- `:checkhealth mesh`: the Neovim version, the proxy (found? which version?), the server
--- (does `GET /livez` answer?), nvim-dap for debugging, and the running proxies. The checks
--- are collected as plain data first (`collect`), which the tests read, then reported
--- through `vim.health`.

local config = require("mesh.config")
local proxy = require("mesh.proxy")

local M = {}

---@class mesh.HealthItem
---@field section string
---@field level "ok"|"warn"|"error"|"info"
---@field message string
---@field advice? string[]

-- A health check must not hang `:checkhealth`: each probe gets this long.
local PROBE_TIMEOUT_MS = 3000

---@param url string
---@return string? host
---@return integer? port
local function host_port(url)
  local scheme, rest = url:match("^(%a+)://([^/]+)")
  if not scheme then
    return nil
  end
  local host, port = rest:match("^%[(.+)%]:(%d+)$")
  if not host then
    host, port = rest:match("^([^:]+):(%d+)$")
  end
  if not host then
    host = rest:match("^%[(.+)%]$") or rest
  end
  return host, tonumber(port) or (scheme == "https" and 443 or 80)
end

--- Opens a TCP connection to the server, for machines without curl.
---@param url string
---@return boolean ok
---@return string detail
local function tcp_probe(url)
  local host, port = host_port(url)
  if not host then
    return false, "not an http(s) URL"
  end
  local uv = vim.uv or vim.loop
  local addrs = uv.getaddrinfo(host, nil, { socktype = "stream" })
  if not addrs or not addrs[1] then
    return false, ("cannot resolve %s"):format(host)
  end
  local sock = uv.new_tcp()
  local done, result = false, nil
  sock:connect(addrs[1].addr, port, function(err)
    result = err
    done = true
  end)
  vim.wait(PROBE_TIMEOUT_MS, function()
    return done
  end, 20)
  if not sock:is_closing() then
    sock:close()
  end
  if not done then
    return false, "timed out"
  end
  if result then
    return false, tostring(result)
  end
  return true, "a TCP connection was accepted (curl is not installed, so /livez was not asked)"
end

--- Asks `GET <server>/livez`.
---@param url string
---@return boolean ok
---@return string detail
function M.probe_server(url)
  if vim.fn.executable("curl") ~= 1 then
    return tcp_probe(url)
  end
  local ok, res = pcall(function()
    return vim
      .system({ "curl", "-sS", "-f", "--max-time", tostring(PROBE_TIMEOUT_MS / 1000), url .. "/livez" }, { text = true })
      :wait(PROBE_TIMEOUT_MS + 1000)
  end)
  if not ok then
    return false, tostring(res)
  end
  if res.code == 0 then
    return true, "GET /livez answered"
  end
  local detail = vim.trim(res.stderr or "")
  return false, detail ~= "" and detail or ("curl exited with code %d"):format(res.code)
end

--- Every check, as data.
---@param cfg? mesh.Config
---@return mesh.HealthItem[]
function M.collect(cfg)
  cfg = cfg or config.get()
  local items = {}
  local function add(section, level, message, advice)
    items[#items + 1] = { section = section, level = level, message = message, advice = advice }
  end

  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.10") == 1 then
    add("Neovim", "ok", "Neovim " .. version)
  else
    add("Neovim", "error", "Neovim " .. version .. " is too old", { "mesh needs Neovim 0.10 or later" })
  end

  if cfg.cmd then
    add("mesh-proxy", "info", "a custom command replaces mesh-proxy (option `cmd`)")
  else
    local path = proxy.executable(cfg)
    if not path then
      add("mesh-proxy", "error", ("mesh-proxy not found: `%s` is not an executable"):format(cfg.proxy), {
        "Install mesh-proxy and put it on PATH (from the mesh repository: cargo build --release -p mesh-proxy)",
        'or point the plugin at it: require("mesh").setup({ proxy = "/path/to/mesh-proxy" })',
      })
    else
      local ok, res = pcall(function()
        return vim.system(proxy.version_command(cfg), { text = true }):wait(PROBE_TIMEOUT_MS)
      end)
      if ok and res.code == 0 then
        add("mesh-proxy", "ok", ("%s (%s)"):format(vim.trim(res.stdout or ""), path))
      else
        local detail = ok and vim.trim((res.stderr or "") .. " exit code " .. tostring(res.code)) or tostring(res)
        add("mesh-proxy", "warn", ("%s did not answer --version: %s"):format(path, detail), {
          "Is this mesh-proxy? Check the `proxy` option.",
        })
      end
    end
  end

  local reachable, detail = M.probe_server(cfg.server)
  if reachable then
    add("server", "ok", ("%s is reachable: %s"):format(cfg.server, detail))
  else
    add("server", "error", ("cannot reach the server at %s: %s"):format(cfg.server, detail), {
      'Start one (mesh-server) or set the `server` option: require("mesh").setup({ server = "http://HOST:PORT" })',
      "Joining by link uses the link's server; this matters for :Mesh share.",
    })
  end

  local dap = require("mesh.debug").load_dap()
  if cfg.debugger == "builtin" then
    add("debugging", "ok", ":Mesh debug uses mesh's built-in debugger (debugger = \"builtin\")")
  elseif not dap and cfg.debugger == "nvim-dap" then
    add("debugging", "error", "nvim-dap is not installed, and the debugger option asks for it", {
      "Install https://github.com/mfussenegger/nvim-dap, or set debugger = \"auto\" (:help mesh-debug)",
    })
  elseif not dap then
    add("debugging", "info", "nvim-dap is not installed; :Mesh debug uses mesh's built-in debugger", {
      "With https://github.com/mfussenegger/nvim-dap installed, :Mesh debug uses it instead (:help mesh-debug)",
    })
  elseif type(dap.adapters) == "table" and dap.adapters.mesh ~= nil then
    add("debugging", "ok", "nvim-dap is installed and the `mesh` adapter is registered")
  else
    add("debugging", "warn", "nvim-dap is installed but the `mesh` adapter is not registered", {
      'Call require("mesh").setup(), or define dap.adapters.mesh yourself (:help mesh-debug)',
    })
  end

  local clients = vim.lsp.get_clients({ name = "mesh" })
  if #clients == 0 then
    add("running", "info", "no mesh-proxy is running in this Neovim")
  end
  for _, c in ipairs(clients) do
    local status = require("mesh.status").get(c.id)
    add(
      "running",
      "info",
      ("%s: %s%s (position encoding %s)"):format(
        tostring(c.root_dir),
        status and status.state or "starting",
        status and status.room and (", room " .. status.room) or "",
        tostring(c.offset_encoding)
      )
    )
  end
  return items
end

--- The `:checkhealth mesh` entry point.
function M.check()
  local health = vim.health
  local section = nil
  for _, item in ipairs(M.collect()) do
    if item.section ~= section then
      section = item.section
      health.start("mesh: " .. section)
    end
    if item.level == "ok" then
      health.ok(item.message)
    elseif item.level == "warn" then
      health.warn(item.message, item.advice)
    elseif item.level == "error" then
      health.error(item.message, item.advice)
    else
      health.info(item.message)
    end
  end
end

return M
