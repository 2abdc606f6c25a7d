# mesh's debug adapter holder: runs in a warm debug container before any job is in it.
#
#   python3 -c HOLD PORT ADAPTER ARGV...
#
# Starts a debug adapter that speaks DAP on stdio (lldb-vscode), sends it `initialize` at
# once (an adapter's own start-up and `initialize` are most of a compiled language's time to
# the first stop, and need nothing of the program), and keeps its answer. Then it listens on
# PORT of the container's own loopback (the sandbox has no network) for one connection: the
# stdin demultiplexer's, once the job's program is built. That connection's `initialize` is
# answered with the kept capabilities (its `seq` named as `request_seq`), and from then on
# DAP is carried both ways unchanged. Any further connection is refused: only the first one,
# made by mesh's own demultiplexer after the build, is the session.
#
# The ahead-of-time `initialize` says what mesh's debug hub says (1-based lines and
# columns, paths as paths), so the adapter is in the state the hub would have put it in.
import json
import os
import socket
import subprocess
import sys
import threading

port, argv = int(sys.argv[1]), sys.argv[2:]

# The arguments of the hub's own `initialize` (server/src/debug/hub.rs), which this stands in for.
INITIALIZE = {
    "clientID": "mesh",
    "clientName": "mesh debug hub",
    "locale": "en",
    "linesStartAt1": True,
    "columnsStartAt1": True,
    "pathFormat": "path",
    "supportsVariableType": True,
    "supportsVariablePaging": True,
    "supportsRunInTerminalRequest": False,
    "supportsProgressReporting": False,
}


def frame(msg):
    body = json.dumps(msg).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_message(read_line, read_exact):
    """The next DAP message's bytes from a stream; None at its end."""
    n = None
    while True:
        line = read_line()
        if not line:
            return None
        line = line.strip()
        if not line:
            if n is not None:
                return read_exact(n)
            continue
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            n = int(value)


adapter = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out = adapter.stdout
adapter.stdin.write(frame({"seq": 1, "type": "request", "command": "initialize", "arguments": INITIALIZE}))
adapter.stdin.flush()
kept = None
early = []
while kept is None:
    raw = read_message(out.readline, out.read)
    if raw is None:
        sys.exit(125)
    msg = json.loads(raw)
    if msg.get("type") == "response" and msg.get("request_seq") == 1:
        kept = msg
    else:
        # Anything the adapter says before its answer (it says nothing today) is passed on
        # after the session's own answer.
        early.append(raw)

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(1)
conn, _ = listener.accept()
listener.close()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
src = conn.makefile("rb")
dst = conn.makefile("wb")

raw = read_message(src.readline, src.read)
if raw is None:
    sys.exit(0)
first = json.loads(raw)
if first.get("command") == "initialize":
    answer = dict(kept, request_seq=first.get("seq"))
    dst.write(frame(answer))
else:
    # Not the hub's opening: the adapter answers whatever it is.
    adapter.stdin.write(b"Content-Length: %d\r\n\r\n" % len(raw) + raw)
    adapter.stdin.flush()
for e in early:
    dst.write(b"Content-Length: %d\r\n\r\n" % len(e) + e)
dst.flush()


def upstream():
    # The session's requests to the adapter, byte for byte (through the same buffered
    # reader as the first message, so nothing read ahead with it is lost).
    while True:
        data = src.read1(65536)
        if not data:
            break
        adapter.stdin.write(data)
        adapter.stdin.flush()
    adapter.stdin.close()


threading.Thread(target=upstream, daemon=True).start()
while True:
    data = out.read1(65536)
    if not data:
        break
    dst.write(data)
    dst.flush()
conn.close()
os._exit(adapter.wait())
