-- Registers the `:Mesh` command and nothing else: every module loads on first use, so having
-- mesh installed costs nothing at startup. `require("mesh").setup()` is optional.
if vim.g.loaded_mesh then
  return
end
vim.g.loaded_mesh = true

if vim.fn.has("nvim-0.10") ~= 1 then
  vim.api.nvim_create_user_command("Mesh", function()
    vim.notify("mesh needs Neovim 0.10 or later", vim.log.levels.ERROR)
  end, { nargs = "*" })
  return
end

vim.api.nvim_create_user_command("Mesh", function(cmd)
  -- A range (`:'<,'>Mesh ask ...`) goes to the subcommands that take one.
  require("mesh").run(cmd.args, cmd.range > 0 and { cmd.line1, cmd.line2 } or nil)
end, {
  nargs = "*",
  range = true,
  desc = "mesh: real-time collaboration (:help mesh)",
  complete = function(arglead, cmdline)
    return require("mesh.commands").complete(arglead, cmdline)
  end,
})

-- The host's commands also under their own names (`:MeshParticipants`, `:MeshRole`, …), the
-- same as `:Mesh participants`, `:Mesh role`, ….
for _, sub in ipairs({ "participants", "role", "kick", "admit", "refuse", "approval", "links", "audit" }) do
  local name = "Mesh" .. sub:sub(1, 1):upper() .. sub:sub(2)
  vim.api.nvim_create_user_command(name, function(cmd)
    require("mesh").run(sub .. " " .. cmd.args)
  end, {
    nargs = "*",
    desc = "mesh: :Mesh " .. sub,
    complete = function(arglead)
      return require("mesh.commands").complete(arglead, "Mesh " .. sub .. " " .. arglead)
    end,
  })
end
