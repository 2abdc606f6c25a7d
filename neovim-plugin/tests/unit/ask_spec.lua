-- `:Mesh ask`: the question, its mode and the selected lines go to the proxy as
-- `mesh/ghostAsk`; a range selects those lines, no range the cursor's line.
local h = require("helpers")

test(":'<,'>Mesh ask sends the range's lines, their text and the mode", function()
  local fake, bufnr, client = h.start_with_file("def add(a, b):\n    return a - b\n\nprint(add(2, 3))\n", { name = "calc.py" })
  require("mesh.status").set(client.id, { state = "connected", you = 1, participants = {} })
  local asked = {}
  fake.responders["mesh/ghostAsk"] = function(params)
    asked[#asked + 1] = params
    return vim.empty_dict()
  end
  vim.cmd("1,2Mesh ask --explain why is add wrong?")
  h.wait(function()
    return #asked == 1
  end, "the request")
  h.eq({
    text = "why is add wrong?",
    mode = "explain",
    uri = vim.uri_from_bufnr(bufnr),
    startLine = 1,
    endLine = 2,
    selection = "def add(a, b):\n    return a - b",
  }, asked[1])

  vim.api.nvim_win_set_cursor(0, { 4, 0 })
  vim.cmd("Mesh ask make it print 5")
  h.wait(function()
    return #asked == 2
  end, "the second request")
  h.eq(nil, asked[2].mode, "no flag: the role's default mode")
  h.eq({ 4, 4, "print(add(2, 3))" }, { asked[2].startLine, asked[2].endLine, asked[2].selection })
  h.wait(function()
    return h.all_messages():find("asked the ghost about lines 4-4", 1, true) ~= nil
  end, "the confirmation")
end)

test(":Mesh ask without a question says how to ask and sends nothing", function()
  local fake, _, client = h.start_with_file("x\n")
  require("mesh.status").set(client.id, { state = "connected", you = 1, participants = {} })
  local sent = false
  fake.responders["mesh/ghostAsk"] = function()
    sent = true
    return vim.empty_dict()
  end
  vim.cmd("Mesh ask --write")
  h.wait(function()
    return h.all_messages():find("say what to ask", 1, true) ~= nil
  end, "the hint")
  h.eq(false, sent)
end)
