-- :checkhealth mesh, above all when things are missing.
local h = require("helpers")
local health = require("mesh.health")
local config = require("mesh.config")

local function find(items, section)
  return vim.tbl_filter(function(i)
    return i.section == section
  end, items)
end

test("a missing proxy and an unreachable server are errors with advice", function()
  local items = health.collect(config.resolve({ proxy = "/nonexistent/mesh-proxy", server = "http://127.0.0.1:1" }))
  local nvim = find(items, "Neovim")[1]
  h.eq("ok", nvim.level)
  h.contains(nvim.message, "Neovim 0.")
  local proxy = find(items, "mesh-proxy")[1]
  h.eq("error", proxy.level)
  h.contains(proxy.message, "/nonexistent/mesh-proxy")
  h.ok(proxy.advice and #proxy.advice > 0, "advice on installing it")
  local server = find(items, "server")[1]
  h.eq("error", server.level)
  h.contains(server.message, "cannot reach the server at http://127.0.0.1:1")
end)

test("a proxy that answers --version is reported with its version and path", function()
  local dir = h.tempdir()
  local fake = h.write(dir, "mesh-proxy", "#!/bin/sh\necho 'mesh-proxy 9.9.9'\n")
  vim.fn.setfperm(fake, "rwxr-xr-x")
  local item = find(health.collect(config.resolve({ proxy = fake, server = "http://127.0.0.1:1" })), "mesh-proxy")[1]
  h.eq("ok", item.level)
  h.contains(item.message, "mesh-proxy 9.9.9")
  h.contains(item.message, fake)
end)

test("a reachable server is ok", function()
  -- A one-shot HTTP server on an ephemeral loopback port, answering 200 to anything.
  local uv = vim.uv or vim.loop
  local server = uv.new_tcp()
  server:bind("127.0.0.1", 0)
  server:listen(8, function()
    local conn = uv.new_tcp()
    server:accept(conn)
    conn:read_start(function(_, data)
      if data then
        conn:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", function()
          conn:close()
        end)
      end
    end)
  end)
  local port = server:getsockname().port
  local ok, detail = health.probe_server("http://127.0.0.1:" .. port)
  server:close()
  h.eq(true, ok, detail)
end)

test(":checkhealth mesh runs and shows the missing proxy", function()
  require("mesh").setup({ proxy = "/nonexistent/mesh-proxy", server = "http://127.0.0.1:1" })
  vim.cmd("checkhealth mesh")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  h.contains(text, "mesh-proxy not found")
  h.contains(text, "cannot reach the server")
end)
