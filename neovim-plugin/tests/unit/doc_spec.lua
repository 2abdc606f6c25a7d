-- The help file: its tags build, and every mesh link in it points at a tag it defines.
local h = require("helpers")

test("doc/mesh.txt builds tags and its |mesh...| links resolve", function()
  local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p")
  local doc = vim.fs.normalize(vim.fs.dirname(here) .. "/../../doc/mesh.txt")
  local dir = h.tempdir()
  vim.fn.writefile(vim.fn.readfile(doc), dir .. "/mesh.txt")
  vim.cmd("helptags " .. vim.fn.fnameescape(dir))
  local tags = {}
  for _, line in ipairs(vim.fn.readfile(dir .. "/tags")) do
    tags[line:match("^[^\t]+")] = true
  end
  h.ok(tags["mesh"] and tags[":Mesh"] and tags["mesh-config"], "the main tags exist")
  local text = table.concat(vim.fn.readfile(doc), "\n")
  for link in text:gmatch("|([:]?[mM]esh[^|%s]*)|") do
    h.ok(tags[link], "dangling link |" .. link .. "|")
  end
end)
