#!/usr/bin/env python3
"""End-to-end test of the Neovim plugin with everything real.

A real mesh-server on an ephemeral loopback port; two headless Neovims, each with the plugin
and its own mesh-proxy, driven over RPC with pynvim; a stock Yjs client (room-peer.cjs) as a
third participant. Alice shares a folder, Bob joins into an empty one and opens the file;
both type at random (real keys through nvim_input, at random places and at one spot,
multibyte text included) while the Yjs peer types too. Once quiet, both buffers and the
room's copy must be byte-equal, each editor must show the other's cursor, with the right
name, exactly where it is, and Bob can follow Alice until he moves on his own. Carol, with a
copy of Alice's folder, types a line she does not save and joins: her line is merged into the
room, not replaced; she quits without saving, reopens the folder in a new Neovim and types at
once after opening the file: that line is kept too. Last, Alice runs a Python file of the
room (real Docker, the images scripts/build-images builds), Bob types its input, and both see
the same output and exit line in their output buffers.

    python e2e.py            (scripts/test-neovim runs it with the right environment)

Environment: MESH_PROXY_BIN, MESH_SERVER_BIN (default target/debug/...), MESH_NVIM (default
`nvim` on PATH), MESH_E2E_SEED (replay a run), MESH_E2E_STEPS (typing steps, default 60),
MESH_E2E_KEEP=1 (keep the temporary folder with every log), MESH_E2E_LSP_LOG=1 (Neovim logs
every LSP message), MESH_LOG (the proxies' log filter).
Every wait is bounded; every process started here is stopped at the end, also on failure.
"""

import difflib
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import pynvim

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN = os.path.dirname(os.path.dirname(HERE))
ROOT = os.path.dirname(PLUGIN)

# Limits, each with its reason.
WHOLE_RUN_S = 300  # the test must end even if a wait below is wrong: CI time is bounded
START_S = 20  # a process (server, Neovim, proxy) that is not up by then will not come up
ROOM_S = 30  # sharing, joining and the first sync on a loaded two-core machine
CONVERGE_S = 45  # after typing stops, every replica must agree within this
CURSOR_S = 15  # a cursor update crosses two proxies and the server
RUN_S = 60  # a run's container starts, the program runs, its output crosses the server
POLL_S = 0.1
STABLE_POLLS = 3  # texts equal this many polls in a row count as quiet

INITIAL_TEXT = "mesh e2e\nline two é\n漢字 and 🎉\nlast line\n"
FILE = "shared.txt"
NOTES_FILE = "notes.txt"  # alice never opens it: her proxy keeps it in sync on her disk
NOTES_TEXT = "notes\nsecond line\n"
RUN_FILE = "greet.py"
RUN_TEXT = (
    "import sys\n"
    "print('ready', flush=True)\n"
    "name = sys.stdin.readline().strip()\n"
    # One write: `python3 -u` writes each of print's pieces on its own, and the two streams
    # may interleave between them.
    "sys.stdout.write('hello %s\\n' % name)\n"
    "print('bye', file=sys.stderr)\n"
)


def log(msg):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Failure(Exception):
    """A check failed; the message says what was expected and what was seen."""


def wait_for(what, timeout, fn):
    """Polls fn until it returns a truthy value, which is returned; fails after timeout."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except (pynvim.NvimError, OSError) as err:
            last_error = err
        time.sleep(POLL_S)
    raise Failure(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


class Processes:
    """Every process this test starts, each in its own process group so that its children
    (a Neovim's mesh-proxy) go with it."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, **kw):
        proc = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append((name, proc))
        return proc

    def stop_all(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop on SIGTERM; killing it")
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)


def start_server(procs, tmp, binary):
    """Starts mesh-server on an ephemeral port; returns its base URL."""
    stderr = open(os.path.join(tmp, "server.log"), "wb")
    proc = procs.start(
        "mesh-server",
        [binary, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(tmp, "server-data"), "--run-images", "local"],
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    lines = queue.Queue()

    def reader():
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace"))

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                raise Failure(f"mesh-server exited with {proc.returncode}; see {stderr.name}")
            continue
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            return m.group(1).rstrip("/")
    raise Failure("mesh-server did not print its address")


# Lua run in each Neovim after it starts: load the plugin from this checkout, record every
# vim.notify (the test reads them to explain failures), and a helper that moves the caret to
# a spot picked by fractions, resolved against the buffer as it is when the key runs.
SETUP_LUA = r"""
local plugin, opts = ...
vim.opt.runtimepath:prepend(plugin)
vim.o.swapfile = false
vim.o.shada = ""
vim.cmd("runtime plugin/mesh.lua")
_G.MeshE2E = { messages = {} }
vim.notify = function(msg, level)
  table.insert(MeshE2E.messages, { msg = tostring(msg), level = level or 2 })
end
function MeshE2E.go(fr, fc)
  local n = vim.api.nvim_buf_line_count(0)
  local row = math.min(n, math.floor(fr * n) + 1)
  local line = vim.api.nvim_buf_get_lines(0, row - 1, row, false)[1] or ""
  local chars = vim.fn.strchars(line)
  local k = math.floor(fc * (chars + 1))
  local col = k >= chars and #line or vim.fn.byteidx(line, k)
  vim.api.nvim_win_set_cursor(0, { row, col })
end
function MeshE2E.state()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = "mesh" })[1]
  return {
    attached = client ~= nil and client.initialized == true,
    encoding = client and client.offset_encoding or nil,
    text = require("mesh.edits").buffer_text(bufnr),
    name = vim.api.nvim_buf_get_name(bufnr),
    status = require("mesh").status(),
    mode = vim.api.nvim_get_mode().mode,
  }
end
function MeshE2E.marks()
  return require("mesh.cursors").describe(vim.api.nvim_get_current_buf())
end
function MeshE2E.runs()
  return require("mesh.run").describe()
end
function MeshE2E.errors()
  local out = {}
  for _, m in ipairs(MeshE2E.messages) do
    if m.level >= vim.log.levels.ERROR then
      out[#out + 1] = m.msg
    end
  end
  return out
end
if os.getenv("MESH_E2E_LSP_LOG") then
  vim.lsp.set_log_level("debug")
end
require("mesh").setup(opts)
"""


class Editor:
    """One headless Neovim with the plugin, in its own folder and home."""

    def __init__(self, procs, tmp, name, workdir, nvim, proxy, server_url, home_of=None):
        self.name = name
        self.workdir = workdir
        # `home_of`: the same person again (a new Neovim with the first one's home and state).
        self.home = os.path.join(tmp, f"{home_of or name}-home")
        os.makedirs(self.home, exist_ok=True)
        self.sock = os.path.join(tmp, f"{name}.sock")
        self.proxy_log = os.path.join(tmp, f"{name}-proxy.log")
        env = dict(os.environ)
        env.update(
            {
                # Each editor and its proxy get their own home: the proxy keeps per-user state.
                "HOME": self.home,
                "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
                "XDG_DATA_HOME": os.path.join(self.home, ".local/share"),
                "XDG_STATE_HOME": os.path.join(self.home, ".local/state"),
                "XDG_CACHE_HOME": os.path.join(self.home, ".cache"),
                "MESH_PROXY_LOG": self.proxy_log,
                "MESH_LOG": os.environ.get("MESH_LOG", "info"),
            }
        )
        self.proc = procs.start(
            f"nvim {name}",
            [nvim, "--headless", "--clean", "--listen", self.sock],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(tmp, f"{name}-nvim.log"), "wb"),
        )
        wait_for(f"{name}'s Neovim to listen", START_S, lambda: os.path.exists(self.sock))
        self.nvim = pynvim.attach("socket", path=self.sock)
        self.nvim.exec_lua(
            SETUP_LUA,
            PLUGIN,
            {"server": server_url, "name": name, "proxy": proxy, "cursor_throttle_ms": 30},
        )

    def lua(self, code, *args):
        return self.nvim.exec_lua(code, *args)

    def state(self):
        return self.lua("return MeshE2E.state()")

    def errors(self):
        return self.lua("return MeshE2E.errors()")

    def messages(self):
        return [m["msg"] for m in self.lua("return MeshE2E.messages")]

    def fail_on_errors(self):
        errors = self.errors()
        if errors:
            raise Failure(f"{self.name}'s Neovim reported: " + " | ".join(errors))

    def open(self, path):
        self.nvim.command(f"edit {path}")
        wait_for(f"{self.name}'s buffer to be bridged", START_S, lambda: self.state()["attached"] or self.fail_on_errors())

    def keys(self, keys):
        self.nvim.input(keys)

    def close(self):
        try:
            self.nvim.command("qa!")
        except Exception:  # noqa: BLE001 -- Neovim exits while answering; nothing to handle
            pass


class Peer:
    """The stock Yjs client, over its stdin/stdout line protocol."""

    def __init__(self, procs, tmp, base_ws, room, token, seed):
        js_dir = os.path.join(ROOT, "tests", "js")
        env = dict(os.environ, MESH_JS_DIR=js_dir)
        self.proc = procs.start(
            "yjs peer",
            ["node", os.path.join(HERE, "room-peer.cjs"), base_ws, room, token, FILE, str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(tmp, "peer.log"), "wb"),
            env=env,
        )
        self.lines = queue.Queue()

        def reader():
            for raw in self.proc.stdout:
                self.lines.put(json.loads(raw.decode("utf-8")))

        threading.Thread(target=reader, daemon=True).start()

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, key, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise Failure(f"the Yjs peer exited with {self.proc.returncode}; see peer.log")
                continue
            if key in msg:
                return msg
        raise Failure(f"the Yjs peer did not answer {key!r} within {timeout}s")

    def text(self):
        self.send("dump")
        return self.expect("text", 10)["text"]


def random_text(rng):
    """A short run of typing: letters, spaces, multibyte characters, Enter, Backspace."""
    pieces = ["a", "b", "mesh", " ", "é", "漢", "🎉", "<CR>", "<BS>", "xyz", "ü"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))


def typing(rng, editors, peer, steps):
    """Both editors type at random; some steps send the same spot to both at once."""
    peer.send(f"type {max(5, steps // 3)}")
    for step in range(steps):
        if rng.random() < 0.2:
            # Concurrent typing at one spot: both go to the start of line 2 and type.
            for ed in editors:
                ed.keys(f"<Esc>i<Cmd>call cursor(2, 1)<CR>{random_text(rng)}<Esc>")
        else:
            ed = rng.choice(editors)
            fr, fc = rng.random(), rng.random()
            ed.keys(f"<Esc>i<Cmd>lua MeshE2E.go({fr:.4f}, {fc:.4f})<CR>{random_text(rng)}<Esc>")
        time.sleep(rng.uniform(0.0, 0.04))
    peer.expect("typed", 60)


def converge(editors, peer):
    """Waits until both buffers and the room agree for a few polls in a row."""
    stable = 0
    last = None
    deadline = time.monotonic() + CONVERGE_S
    while time.monotonic() < deadline:
        texts = [ed.state()["text"] for ed in editors] + [peer.text()]
        modes = [ed.state()["mode"] for ed in editors]
        if len(set(texts)) == 1 and all(m == "n" for m in modes):
            stable = stable + 1 if texts == last else 1
            if stable >= STABLE_POLLS:
                return texts[0]
        else:
            stable = 0
        last = texts
        time.sleep(0.2)
    names = [ed.name for ed in editors] + ["room"]
    report = [f"{ed.name}: mode {ed.state()['mode']!r}, last error {ed.nvim.eval('v:errmsg')!r}" for ed in editors]
    for i in range(1, len(names)):
        diff = difflib.unified_diff(
            last[0].splitlines(True), (last[i] or "").splitlines(True), names[0], names[i], n=1
        )
        report.append("".join(diff) or f"{names[0]} == {names[i]}")
    raise Failure("replicas did not converge within %ss:\n%s" % (CONVERGE_S, "\n".join(report)))


def check_cursor(watcher, mover, row, col):
    """`mover` puts its caret at (row, col) (zero-based, bytes); `watcher` must draw it there
    with mover's name."""
    mover.nvim.api.win_set_cursor(0, [row + 1, col])
    # Neovim may clamp the caret (Normal mode cannot sit past the last character, nor inside
    # a multibyte one): expect it where it really is.
    actual_row, col = mover.nvim.api.win_get_cursor(0)
    row = actual_row - 1
    # An explicit update: win_set_cursor from RPC does not fire CursorMoved by itself.
    mover.lua("require('mesh.presence').send_cursor()")

    def seen():
        marks = watcher.lua("return MeshE2E.marks()")
        names = [m for m in marks if m["kind"] == "name" and m.get("name") == mover.name]
        carets = [m for m in marks if m["kind"] == "caret" and m["row"] == row and m["col"] == col]
        return names and carets

    try:
        wait_for(f"{watcher.name} to draw {mover.name}'s caret at {row}:{col}", CURSOR_S, seen)
    except Failure as err:
        raise Failure(f"{err}; marks drawn: {watcher.lua('return MeshE2E.marks()')}") from None


def check_follow(follower, leader):
    """`follower` follows `leader`: the view goes where leader's goes; a move of follower's own
    stops it."""
    following = "return require('mesh.follow').following()"
    follower.nvim.command(f"Mesh follow {leader.name}")
    wait_for(
        f"{follower.name} to follow {leader.name}",
        CURSOR_S,
        lambda: follower.lua(following) == leader.name or follower.fail_on_errors(),
    )
    # The leader scrolls the last line to the top of the window; the follower must see the
    # same lines (the proxy sends the leader's visible range).
    last = leader.lua("return vim.api.nvim_buf_line_count(0)")
    leader.nvim.command("normal! Gzt")
    leader.lua("require('mesh.presence').send_cursor(); require('mesh.presence').send_active_editor()")
    top = leader.nvim.eval("line('w0')")
    if top != last:
        raise Failure(f"{leader.name}'s window did not scroll (top line {top}, last line {last})")
    wait_for(
        f"{follower.name}'s window to show {leader.name}'s view (top line {top})",
        CURSOR_S,
        lambda: follower.nvim.eval("line('w0')") == top,
    )
    # A real key that moves the caret is the follower acting on their own.
    follower.keys("gg")
    wait_for(f"{follower.name} to stop following", CURSOR_S, lambda: follower.lua(following) is None)


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def check_local_text_is_kept(procs, tmp, nvim, proxy, url, link, dir_a, editors):
    """Carol has a copy of alice's folder. She types a line into notes.txt without saving and
    joins the room: the line is merged into the room (alice's disk shows it) and stays in her
    buffer. She quits without saving, opens the folder in a new Neovim (its proxy rejoins
    from sessions.json) and types a line at once after opening the file: that line is kept
    and merged too."""
    dir_c = os.path.join(tmp, "carol-copy")
    os.makedirs(dir_c)
    shutil.copy(os.path.join(dir_a, NOTES_FILE), dir_c)
    alice_notes = os.path.join(dir_a, NOTES_FILE)
    carol = Editor(procs, tmp, "carol", dir_c, nvim, proxy, url)
    editors.append(carol)  # for the report on failure
    carol.open(NOTES_FILE)
    carol.keys("<Esc>Gounsaved at join<Esc>")
    want = NOTES_TEXT + "unsaved at join\n"
    wait_for("carol's unsaved line", START_S, lambda: carol.state()["text"] == want)
    carol.nvim.command(f"Mesh join {link}")
    wait_for(
        "carol's unsaved line in the room (alice's disk)",
        ROOM_S,
        lambda: read(alice_notes) == want or carol.fail_on_errors(),
    )
    wait_for("carol's buffer to keep her line", ROOM_S, lambda: carol.state()["text"] == want)
    log("carol's unsaved line was merged into the room at join, not replaced")
    carol.close()
    carol.proc.wait(timeout=START_S)

    again = Editor(procs, tmp, "carol-again", dir_c, nvim, proxy, url, home_of="carol")
    editors.append(again)
    # At once: the keys go in before the proxy has reached the room.
    again.nvim.command(f"edit {NOTES_FILE}")
    again.keys("ggOtyped at open<Esc>")
    want = "typed at open\n" + want
    wait_for(
        "the line typed at open in the room (alice's disk)",
        ROOM_S,
        lambda: read(alice_notes) == want or again.fail_on_errors(),
    )
    stable = [0]

    def settled():
        stable[0] = stable[0] + 1 if again.state()["text"] == want else 0
        return stable[0] >= STABLE_POLLS

    wait_for("carol's buffer to keep the line typed at open", ROOM_S, settled)
    again.fail_on_errors()
    log("the line carol typed right after opening the file is in her buffer, alice's disk and the room")


def check_run(runner, watcher):
    """`runner` runs a Python file of the room; `watcher` sees it start in its output split,
    types the line the program waits for, and both see the same output and exit line."""
    runner.open(RUN_FILE)
    runner.nvim.command("Mesh run")

    def run_in(ed, want_line=None):
        runs = ed.lua("return MeshE2E.runs()")
        run = next((r for r in runs if r["path"] == RUN_FILE), None)
        if run and (want_line is None or want_line in run["lines"]):
            return run
        ed.fail_on_errors()
        return None

    seen = wait_for(f"{watcher.name}'s output buffer to show the program's first line", RUN_S, lambda: run_in(watcher, "ready"))
    if not seen["shown"] or seen["you"] or seen["by"] != runner.name:
        raise Failure(f"{watcher.name}'s output buffer: {seen}")
    watcher.nvim.command("Mesh input mesh")
    outputs = {}
    for ed in (runner, watcher):
        run = wait_for(f"{ed.name}'s run to end", RUN_S, lambda: (r := run_in(ed)) and r["exited"] and r)
        outputs[ed.name] = run["lines"][1:]
    got = outputs[watcher.name]
    # stdout and stderr are separate streams: their lines may interleave either way.
    if len(got) != 4 or got[0] != "ready" or sorted(got[1:3]) != ["bye", "hello mesh"] or not re.match(r"^■ exit 0 · \d", got[3]):
        raise Failure(f"{watcher.name}'s output buffer holds {got}")
    if outputs[runner.name] != got:
        raise Failure(f"the output buffers differ: {outputs}")


def main():
    seed = int(os.environ.get("MESH_E2E_SEED") or random.SystemRandom().randrange(1, 2**31))
    steps = int(os.environ.get("MESH_E2E_STEPS") or 60)
    log(f"seed {seed} (replay with MESH_E2E_SEED={seed})")
    rng = random.Random(seed)
    proxy = os.environ.get("MESH_PROXY_BIN") or os.path.join(ROOT, "target", "debug", "mesh-proxy")
    server = os.environ.get("MESH_SERVER_BIN") or os.path.join(ROOT, "target", "debug", "mesh-server")
    nvim = os.environ.get("MESH_NVIM") or shutil.which("nvim")
    for label, path in (("mesh-proxy", proxy), ("mesh-server", server), ("nvim", nvim)):
        if not path or not os.access(path, os.X_OK):
            raise Failure(f"{label} not found at {path}; build it (cargo build -p mesh-proxy -p mesh-server) or set its variable")

    tmp = tempfile.mkdtemp(prefix="mesh-nvim-e2e-")
    procs = Processes()
    editors = []
    ok = False
    try:
        url = start_server(procs, tmp, server)
        log(f"server at {url}")
        dir_a = os.path.join(tmp, "alice-project")
        dir_b = os.path.join(tmp, "bob-empty")
        os.makedirs(dir_a)
        os.makedirs(dir_b)
        with open(os.path.join(dir_a, FILE), "w", encoding="utf-8") as f:
            f.write(INITIAL_TEXT)
        with open(os.path.join(dir_a, RUN_FILE), "w", encoding="utf-8") as f:
            f.write(RUN_TEXT)
        with open(os.path.join(dir_a, NOTES_FILE), "w", encoding="utf-8") as f:
            f.write(NOTES_TEXT)

        alice = Editor(procs, tmp, "alice", dir_a, nvim, proxy, url)
        bob = Editor(procs, tmp, "bob", dir_b, nvim, proxy, url)
        editors = [alice, bob]

        alice.open(FILE)
        log(f"alice's buffer is bridged (position encoding {alice.state()['encoding']})")
        alice.nvim.command("Mesh share")
        link = wait_for(
            "alice's join link", ROOM_S, lambda: (alice.state().get("status") or {}).get("link") or alice.fail_on_errors()
        )
        log(f"shared: {link}")
        m = re.match(r"^(https?)://([^/]+)/join/([^?/]+)\?(.*)$", link)
        if not m:
            raise Failure(f"the join link has an unexpected shape: {link}")
        token = urllib.parse.parse_qs(m.group(4)).get("token", [None])[0]
        ws_base = ("wss" if m.group(1) == "https" else "ws") + "://" + m.group(2) + "/ws"

        peer = Peer(procs, tmp, ws_base, m.group(3), token, seed)
        peer.expect("ready", ROOM_S)
        if peer.text() != INITIAL_TEXT:
            raise Failure(f"the room's copy after share is {peer.text()!r}, expected {INITIAL_TEXT!r}")
        log("the Yjs peer sees the shared file")

        bob.nvim.command(f"Mesh join {link}")
        wait_for(
            "the file to appear in bob's folder",
            ROOM_S,
            lambda: os.path.exists(os.path.join(dir_b, FILE)) or bob.fail_on_errors(),
        )
        bob.open(FILE)
        wait_for("bob's buffer to hold the room's text", ROOM_S, lambda: bob.state()["text"] == INITIAL_TEXT)
        log("bob joined and opened the file")

        log(f"typing: {steps} steps over two editors, plus the Yjs peer")
        typing(rng, editors, peer, steps)
        text = converge(editors, peer)
        log(f"converged: {len(text.encode())} bytes, {text.count(chr(10))} lines, identical in alice, bob and the room")
        for ed in editors:
            ed.fail_on_errors()

        # Cursors, placed after a multibyte character so that the encodings matter.
        lines = text.split("\n")
        row = next((i for i, line in enumerate(lines) if re.search("[é漢🎉ü]", line)), 0)
        line = lines[row]
        mb = re.search("[é漢🎉ü]", line)
        col = len(line[: mb.end()].encode()) if mb else 0
        check_cursor(bob, alice, row, col)
        log(f"bob draws alice's caret at {row}:{col} with her name")
        check_cursor(alice, bob, 0, 0)
        log("alice draws bob's caret with his name")
        check_follow(bob, alice)
        log("bob followed alice's view, and stopped following when he moved")
        check_local_text_is_kept(procs, tmp, nvim, proxy, url, link, dir_a, editors)
        check_run(alice, bob)
        log("alice ran greet.py; bob watched it in his output buffer and typed its input")
        ok = True
    finally:
        finish(ok, editors, procs, tmp)


def finish(ok, editors, procs, tmp):
    """Ends a run: on failure, each editor's messages and the tail of every log first; then
    the editors and processes stop and the scratch folder goes (kept with MESH_E2E_KEEP)."""
    if not ok:
        for ed in editors:
            try:
                log(f"{ed.name}'s messages: {ed.messages()}")
            except Exception as err:  # noqa: BLE001 -- best effort while reporting a failure
                log(f"{ed.name}'s messages unavailable: {err}")
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".log"):
                with open(os.path.join(tmp, name), "rb") as f:
                    tail = f.read()[-3000:].decode("utf-8", "replace")
                log(f"--- tail of {name} ---\n{tail}")
    for ed in editors:
        ed.close()
    procs.stop_all()
    if os.environ.get("MESH_E2E_KEEP"):
        log(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def run_counted(main, whole_run_s):
    """Runs `main` within `whole_run_s` seconds and prints the pass/fail count the test
    command reads, whatever happens (a failure, a bug in the test, the time running out)."""

    def on_alarm(_signum, _frame):
        raise Failure(f"the whole run took over {whole_run_s}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(whole_run_s)
    try:
        main()
    except Failure as err:
        log(f"FAIL: {err}")
        print("0 passed, 1 failed", flush=True)
        sys.exit(1)
    except Exception:  # noqa: BLE001 -- a bug in the test itself still ends with a count
        import traceback

        traceback.print_exc()
        log("FAIL: the test itself raised (above)")
        print("0 passed, 1 failed", flush=True)
        sys.exit(1)
    print("1 passed, 0 failed", flush=True)


if __name__ == "__main__":
    run_counted(main, WHOLE_RUN_S)
