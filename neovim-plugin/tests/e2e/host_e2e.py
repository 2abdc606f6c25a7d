#!/usr/bin/env python3
"""End-to-end test of host control in real Neovims (decision 011).

A real mesh-server; two headless Neovims with the plugin and their own mesh-proxy. Alice
shares a folder and turns approval on from her editor (`:Mesh approval on`). Dave joins with
the writer link and waits in the lobby (his statusline says so, nothing of the room reaches
his folder); Alice's editor asks her (a `vim.ui.select` prompt, answered "Admit" as she
would); Dave's join completes and his typing reaches Alice. Alice makes him a reader
(`:Mesh role dave reader`): his next edit is refused, his buffer goes back to the room's
text and Alice's buffer never sees it. Alice kicks him (`:Mesh kick dave`): his session ends
with the message that says so, his seat token is forgotten, and Alice's participants no
longer list him.

    python host_e2e.py       (scripts/test-neovim runs it with the right environment)

Environment as e2e.py (MESH_PROXY_BIN, MESH_SERVER_BIN, MESH_NVIM, MESH_E2E_KEEP).
"""

import os
import shutil
import tempfile
import time

from e2e import START_S, ROOM_S, Editor, Failure, Processes, finish, log, run_counted, start_server, wait_for

WHOLE_RUN_S = 180  # bounded whatever a wait below does: CI time is bounded
ROLE_S = 15  # a role change or a kick crosses the server and one proxy

FILE = "shared.txt"
TEXT = "hello\n"

# Alice's prompts wait for her answer as a real picker does: the test answers the way she
# would, when it has checked what the joiner sees meanwhile. Each prompt's text is kept.
ANSWER_LUA = r"""
MeshE2E.prompts = {}
MeshE2E.waiting = {}
vim.ui.select = function(items, opts, cb)
  table.insert(MeshE2E.prompts, opts.prompt)
  table.insert(MeshE2E.waiting, { items = items, cb = cb })
end
function MeshE2E.answer(choice)
  local prompt = table.remove(MeshE2E.waiting, 1)
  for _, item in ipairs(prompt.items) do
    if item == choice then
      return prompt.cb(item)
    end
  end
  error("no " .. choice .. " among " .. vim.inspect(prompt.items))
end
"""


def status(ed):
    return ed.state().get("status") or {}


def main():
    proxy = os.environ.get("MESH_PROXY_BIN") or os.path.join(os.getcwd(), "target", "debug", "mesh-proxy")
    server = os.environ.get("MESH_SERVER_BIN") or os.path.join(os.getcwd(), "target", "debug", "mesh-server")
    nvim = os.environ.get("MESH_NVIM") or shutil.which("nvim")
    tmp = tempfile.mkdtemp(prefix="mesh-nvim-host-e2e-")
    procs = Processes()
    editors = []
    ok = False
    try:
        url = start_server(procs, tmp, server)
        dir_a = os.path.join(tmp, "alice-project")
        dir_d = os.path.join(tmp, "dave-empty")
        os.makedirs(dir_a)
        os.makedirs(dir_d)
        with open(os.path.join(dir_a, FILE), "w", encoding="utf-8") as f:
            f.write(TEXT)
        alice = Editor(procs, tmp, "alice", dir_a, nvim, proxy, url)
        dave = Editor(procs, tmp, "dave", dir_d, nvim, proxy, url)
        editors = [alice, dave]
        alice.lua(ANSWER_LUA)

        alice.open(FILE)
        alice.nvim.command("Mesh share")
        link = wait_for("alice's link", ROOM_S, lambda: status(alice).get("link") or alice.fail_on_errors())
        wait_for("alice to be the host", ROOM_S, lambda: status(alice).get("role") == "host")
        alice.nvim.command("Mesh approval on")
        wait_for("approval on", ROLE_S, lambda: status(alice).get("approval") is True or alice.fail_on_errors())
        log("alice shares and requires approval")

        # Dave waits in the lobby (his join has not finished: it answers once he is let in).
        dave.nvim.command(f"Mesh join {link}")
        wait_for("dave in the lobby", ROOM_S, lambda: status(dave).get("state") == "lobby" or dave.fail_on_errors())
        time.sleep(0.5)  # still waiting a moment later: the lobby holds him, not a slow join
        statusline = dave.lua("return require('mesh').statusline()")
        if "waiting for the host" not in statusline:
            raise Failure(f"dave's statusline in the lobby: {statusline!r}")
        if os.path.exists(os.path.join(dir_d, FILE)):
            raise Failure("the room's file reached dave's folder before he was let in")
        log(f"dave waits: {statusline!r}")

        # Alice's editor asks her; she admits him (the prompt's answer).
        if status(dave).get("state") != "lobby":
            raise Failure(f"dave left the lobby before anyone let him in: {status(dave)}")
        wait_for("alice to be asked", ROLE_S, lambda: alice.lua("return #MeshE2E.prompts") > 0)
        prompt = alice.lua("return MeshE2E.prompts[1]")
        if "dave" not in prompt or "asks to join" not in prompt:
            raise Failure(f"alice was asked {prompt!r}")
        alice.lua("MeshE2E.answer('Admit')")
        wait_for(
            "the room's file in dave's folder",
            ROOM_S,
            lambda: os.path.exists(os.path.join(dir_d, FILE)) or dave.fail_on_errors(),
        )
        wait_for("dave connected", ROOM_S, lambda: status(dave).get("state") == "connected")
        log(f"alice was asked {prompt!r} and admitted dave")

        dave.open(FILE)
        wait_for("dave's buffer", ROOM_S, lambda: dave.state()["text"] == TEXT)
        dave.keys("<Esc>Goby dave<Esc>")
        want = TEXT + "by dave\n"
        wait_for("dave's line in alice's buffer", ROOM_S, lambda: alice.state()["text"] == want)
        log("dave edits as a writer")

        # Reader: his edit is refused and his buffer follows the room.
        alice.nvim.command("Mesh role dave reader")
        wait_for("dave to be a reader", ROLE_S, lambda: status(dave).get("role") == "reader" or dave.fail_on_errors())
        told = [m for m in dave.messages() if "you are now a reader" in m]
        if not told:
            raise Failure(f"dave was not told he is a reader: {dave.messages()}")
        wait_for("dave's buffer bridged again", ROOM_S, lambda: dave.state()["attached"] and status(dave).get("state") == "connected")
        dave.keys("<Esc>Goas reader<Esc>")
        wait_for("dave's buffer back to the room's text", ROLE_S, lambda: dave.state()["text"] == want)
        time.sleep(0.5)  # nothing may arrive; give it the time a wrong one would take
        if alice.state()["text"] != want:
            raise Failure(f"the reader's edit reached alice: {alice.state()['text']!r}")
        log(f"dave is a reader ({told[0]!r}); his edit was refused and his buffer follows the room")

        # Kick: his session ends with the message; his seat is forgotten.
        alice.nvim.command("Mesh kick dave")
        wait_for("dave's session to end", ROLE_S, lambda: status(dave).get("state") == "idle")
        removed = [m for m in dave.messages() if "removed from the room" in m]
        if not removed:
            raise Failure(f"dave was not told he was removed: {dave.messages()}")
        if os.path.exists(os.path.join(dir_d, ".mesh", "seat.json")):
            raise Failure("dave's seat token was not forgotten")
        wait_for(
            "alice's participants without dave",
            ROLE_S,
            lambda: all(p.get("name") != "dave" for p in status(alice).get("participants", [])),
        )
        log(f"dave was kicked: {removed[0]!r}")
        alice.fail_on_errors()
        ok = True
    finally:
        finish(ok, editors, procs, tmp)


if __name__ == "__main__":
    run_counted(main, WHOLE_RUN_S)
