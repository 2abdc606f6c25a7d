#!/usr/bin/env python3
"""End-to-end test of asking the ghost from a real Neovim (decision 013).

A real mesh-server; a headless Neovim with the plugin and its own mesh-proxy; a real
mesh-ghost joined with the writer link; and an OpenAI-compatible provider on loopback (this
script) that streams a scripted answer. Alice selects two lines and runs
`:1,2Mesh ask --write fix add`: the request reaches the model with those lines, and the
ghost's change streams into Alice's buffer through her proxy, the rest of her text kept.
Then a plain `:Mesh ask` makes a suggestion: it changes nothing, `:Mesh suggestions` previews
it as a unified diff, and `a` in the preview accepts it, which changes her buffer.

    python ghost_e2e.py      (scripts/test-neovim runs it with the right environment)

Environment as e2e.py (MESH_PROXY_BIN, MESH_SERVER_BIN, MESH_NVIM, MESH_E2E_KEEP), and
MESH_GHOST_BIN (default: beside mesh-server).
"""

import http.server
import json
import os
import shutil
import tempfile
import threading
import time

from e2e import ROOM_S, Editor, Failure, Processes, finish, log, run_counted, start_server, wait_for

WHOLE_RUN_S = 120  # bounded whatever a wait below does: CI time is bounded
GHOST_S = 20  # the ghost joining, the model's answer streaming, the edit reaching the editor

FILE = "calc.py"
TEXT = "def add(a, b):\n    return a - b\n\n\nprint(add(2, 3))\n"
FIXED = "def add(a, b):\n    return a + b\n\n\nprint(add(2, 3))\n"
ANSWER = "<<<<<<< SEARCH calc.py\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n"
SWAPPED = FIXED.replace("a + b", "b + a")
SUGGESTION = "<<<<<<< SEARCH calc.py\n    return a + b\n=======\n    return b + a\n>>>>>>> REPLACE\n"


class Provider(http.server.BaseHTTPRequestHandler):
    """Chat completions, streamed: the scripted answer in small pieces."""

    received = []

    def do_POST(self):  # noqa: N802 -- the http.server name
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        Provider.received.append(json.loads(body))
        answer = ANSWER if len(Provider.received) == 1 else SUGGESTION
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for i in range(0, len(answer), 4):
            chunk = {"choices": [{"index": 0, "delta": {"content": answer[i : i + 4]}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.02)
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *_args):
        pass


def status(ed):
    return ed.state().get("status") or {}


def main():
    proxy = os.environ.get("MESH_PROXY_BIN") or os.path.join(os.getcwd(), "target", "debug", "mesh-proxy")
    server = os.environ.get("MESH_SERVER_BIN") or os.path.join(os.getcwd(), "target", "debug", "mesh-server")
    ghost_bin = os.environ.get("MESH_GHOST_BIN") or os.path.join(os.path.dirname(server), "mesh-ghost")
    nvim = os.environ.get("MESH_NVIM") or shutil.which("nvim")
    if not os.access(ghost_bin, os.X_OK):
        raise Failure(f"mesh-ghost not found at {ghost_bin}; build it (cargo build -p mesh-ghost) or set MESH_GHOST_BIN")
    tmp = tempfile.mkdtemp(prefix="mesh-nvim-ghost-e2e-")
    procs = Processes()
    editors = []
    ok = False
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = start_server(procs, tmp, server)
        dir_a = os.path.join(tmp, "alice-project")
        os.makedirs(dir_a)
        with open(os.path.join(dir_a, FILE), "w", encoding="utf-8") as f:
            f.write(TEXT)
        alice = Editor(procs, tmp, "alice", dir_a, nvim, proxy, url)
        editors = [alice]
        alice.open(FILE)
        alice.nvim.command("Mesh share")
        link = wait_for("alice's link", ROOM_S, lambda: status(alice).get("link") or alice.fail_on_errors())
        ghost_log = open(os.path.join(tmp, "ghost.log"), "wb")
        procs.start(
            "mesh-ghost",
            [ghost_bin, "--link", link, "--provider-url", f"http://127.0.0.1:{httpd.server_address[1]}/v1", "--model", "scripted"],
            stdout=ghost_log,
            stderr=ghost_log,
            env={**os.environ, "MESH_GHOST_API_KEY": "sk-nvim-e2e"},
        )
        wait_for(
            "the ghost in alice's participants",
            GHOST_S,
            lambda: any(p.get("client") == "mesh-ghost" for p in status(alice).get("participants", [])),
        )
        log("alice shares calc.py; the ghost joined")

        alice.nvim.command("1,2Mesh ask --write fix add")
        wait_for("the ghost's change in alice's buffer", GHOST_S, lambda: alice.state()["text"] == FIXED or alice.fail_on_errors())
        sent = json.dumps(Provider.received[0]["messages"])
        if "about lines 1-2 of calc.py, selected:" not in sent or "fix add" not in sent:
            raise Failure(f"the model did not get the selection: {sent[:600]}")
        asked = [m for m in alice.messages() if "asked the ghost about lines 1-2" in m]
        if not asked:
            raise Failure(f"alice was not told the request went: {alice.messages()}")
        log("`:1,2Mesh ask --write` reached the model with the lines; the change is in alice's buffer")

        # The ghost takes one request at a time: ask again once request #1 is done.
        first_done = """
          local c = require("mesh.client").current()
          local g = c and require("mesh.ghost").state(c.id).ghosts[1]
          return g ~= nil and g.requests[1] ~= nil and g.requests[1].status == "done"
        """
        wait_for("request #1 done in alice's Neovim", GHOST_S, lambda: alice.lua(first_done) or alice.fail_on_errors())
        alice.nvim.command("2Mesh ask swap the operands")
        pending = """
          local c = require("mesh.client").current()
          return c and #require("mesh.ghost").pending(require("mesh.ghost").state(c.id)) or 0
        """
        wait_for("suggestion #2 in alice's Neovim", GHOST_S, lambda: alice.lua(pending) == 1 or alice.fail_on_errors())
        if alice.state()["text"] != FIXED:
            raise Failure(f"a suggestion changed the buffer: {alice.state()['text']!r}")
        alice.lua("vim.ui.select = function(items, _, on_choice) on_choice(items[1]) end")
        alice.nvim.command("Mesh suggestions")
        preview = alice.lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)")
        if "-    return a + b" not in preview or "+    return b + a" not in preview:
            raise Failure(f"the preview is not the suggestion's diff: {preview}")
        alice.keys("a")
        wait_for("the accepted suggestion in alice's buffer", GHOST_S, lambda: alice.state()["text"] == SWAPPED or alice.fail_on_errors())
        log("a plain `:Mesh ask` made suggestion #2: previewed as a diff, accepted with `a`, in alice's buffer")
        alice.fail_on_errors()
        ok = True
    finally:
        httpd.shutdown()
        finish(ok, editors, procs, tmp)


if __name__ == "__main__":
    run_counted(main, WHOLE_RUN_S)
