-- The typed mirror in lua/mesh/protocol.lua must name exactly the `mesh/*` methods of the
-- contract, docs/lsp-extensions.md at the repository root.
local h = require("helpers")
local protocol = require("mesh.protocol")

--- The contract file, found from this spec's own location (neovim-plugin/tests/unit).
local function contract_path()
  local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p")
  return vim.fs.normalize(vim.fs.dirname(here) .. "/../../../docs/lsp-extensions.md")
end

--- Every backticked `mesh/...` method name in a Markdown text, each once, sorted.
local function methods_in(markdown)
  local seen, out = {}, {}
  for name in markdown:gmatch("`(mesh/[%w_]+)`") do
    if not seen[name] then
      seen[name] = true
      out[#out + 1] = name
    end
  end
  table.sort(out)
  return out
end

test("protocol.lua names exactly the mesh/* methods of docs/lsp-extensions.md", function()
  local path = contract_path()
  local f = io.open(path, "rb")
  h.ok(f, "cannot read the contract at " .. path)
  local text = f:read("*a")
  f:close()
  local documented = methods_in(text)
  h.ok(#documented >= 10, "the contract names suspiciously few methods: " .. vim.inspect(documented))
  local mirrored = protocol.all_methods()
  local missing = vim.tbl_filter(function(m)
    return not vim.tbl_contains(mirrored, m)
  end, documented)
  local extra = vim.tbl_filter(function(m)
    return not vim.tbl_contains(documented, m)
  end, mirrored)
  h.eq({}, missing, "methods in the contract but not in protocol.lua")
  h.eq({}, extra, "methods in protocol.lua but not in the contract")
end)

test("the method scanner finds names in tables and prose, once each", function()
  h.eq(
    { "mesh/a", "mesh/bC" },
    methods_in("| `mesh/bC` | x |\nsee `mesh/a` and `mesh/a` again; not mesh/z or `other/x`")
  )
end)

test("every direction table holds mesh/* names only", function()
  for _, group in ipairs({ protocol.request, protocol.notify, protocol.notification, protocol.server_request }) do
    for key, method in pairs(group) do
      h.ok(type(key) == "string" and method:match("^mesh/%a+$"), "bad entry " .. tostring(key))
    end
  end
end)
