local h = require("helpers")
local config = require("mesh.config")

test("defaults: local server, mesh-proxy on PATH, login name", function()
  local old = vim.env.USER
  vim.env.USER = "ana"
  local cfg = config.resolve({})
  vim.env.USER = old
  h.eq("http://127.0.0.1:7420", cfg.server)
  h.eq("mesh-proxy", cfg.proxy)
  h.eq("ana", cfg.name)
  h.eq(true, cfg.autostart)
  h.eq(30, cfg.cursor_throttle_ms)
end)

test("options override defaults; a list replaces the default list", function()
  local cfg = config.resolve({ server = "http://example.test:9/", ignore = { "^build/" }, name = "bo" })
  h.eq("http://example.test:9", cfg.server, "trailing slash dropped")
  h.eq({ "^build/" }, cfg.ignore)
  h.eq("bo", cfg.name)
end)

test("a wrong type or an unknown option is an error that names it", function()
  local ok, err = pcall(config.resolve, { server = 7420 })
  h.eq(false, ok)
  h.contains(err, "`server`")
  ok, err = pcall(config.resolve, { sever = "x" })
  h.eq(false, ok)
  h.contains(err, "unknown option `sever`")
  ok, err = pcall(config.resolve, { name_position = "left" })
  h.eq(false, ok)
  h.contains(err, "name_position")
end)

test("setup() with a bad option says so instead of raising", function()
  require("mesh").setup({ proxy = false })
  h.contains(h.all_messages(), "`proxy` must be a string")
end)

test("the proxy command and its environment come from one place", function()
  local cmd, env =
    require("mesh.proxy").lsp_command(config.resolve({ proxy = "/opt/mp", name = "x", server = "http://s:1" }))
  h.eq({ "/opt/mp", "lsp" }, cmd)
  h.eq({ MESH_SERVER = "http://s:1", MESH_NAME = "x" }, env)
end)
