# mesh's debug stdin demultiplexer: runs in the sandbox in front of a debug adapter.
#
#   python3 -c DEMUX FIFO PORT [ADAPTER ARGV... | --held]
#
# The container's stdin carries DAP frames (`Content-Length: N`) for the adapter and the
# debugged program's input as `Mesh-Stdin: N` frames (N = 0 closes it), which go to FIFO.
# Debug adapters keep the program's stdin off their own (it is the DAP channel), so this is
# how participants' typing reaches a debugged program.
#
# PORT `-`: the adapter speaks DAP on its stdin and stdout (debugpy, lldb-vscode); its
# stdout is the container's. A number: the adapter listens on that TCP port on the
# container's own loopback (Delve's `dlv dap`, or a debugpy started before the job came);
# this program connects to it and carries DAP between the socket and the container's stdio.
# The sandbox has no network: loopback is the container's own. In that mode the adapter's
# stdin is the FIFO, so a program it starts with its own stdio (Delve 1.20 does) reads the
# input, and what the adapter and its program write on stdout and stderr becomes DAP
# `output` events (before the connection: the container's stderr). Delve 1.20 reports a
# program's exit status only as a console line, after `terminated` and before its answer to
# `disconnect`: an `exited` event goes before that line. Without an adapter of its own (the
# registry's `prestart` started it), the exit status is read from FIFO-exit, which the
# prestarted program's wrapper writes, for an `exited` event before `terminated`; and the
# program's output comes through FIFO-stdout and FIFO-stderr, which its wrapper opens as
# its descriptors 1 and 2 once a debugger attached. `--held`
# instead of an adapter: the adapter was started and initialized ahead by mesh's holder
# (`debug_hold.py`, a warm container's prestart), reports its own exit, and writes no file.
#
# The FIFO is held open read-write, so a reader's open never blocks, and closed for
# end-of-file only once a program has it open and has read what is buffered (closing the
# last writer earlier would lose the input). Beside it, `FIFO-python3` is a `python3` reading
# the FIFO, for adapters that take an interpreter to start the program with (debugpy's
# `python`). Writes go through a thread, so a program that does not read its input never
# holds up the protocol.
import fcntl
import json
import os
import queue
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

# How long a TCP adapter may take to listen after it was started.
CONNECT_SECONDS = 20
# How long to wait for a TCP adapter to exit once its socket closed.
EXIT_SECONDS = 3
# How long `terminated` waits for a prestarted program's exit status file (the program
# ends just after debugpy says so; a loaded machine was seen to take over a second).
EXIT_FILE_SECONDS = 3
# Delve 1.20's console line with the program's exit status.
EXIT_LINE = re.compile(r"^Process \d+ has exited with status (-?\d+)\s*$")

fifo, port, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
held = argv == ["--held"]
if held:
    argv = []
if not os.path.exists(fifo):
    os.mkfifo(fifo, 0o600)
hold = os.open(fifo, os.O_RDWR)
with open(fifo + "-python3", "w") as f:
    f.write('#!/bin/sh\nexec python3 "$@" < %s\n' % fifo)
os.chmod(fifo + "-python3", 0o700)

adapter = None
if port == "-":
    adapter = subprocess.Popen(argv, stdin=subprocess.PIPE)
    to_adapter = adapter.stdin
else:
    out = sys.stdout.buffer
    out_lock = threading.Lock()
    connected = threading.Event()
    pipes = []

    def frame(msg):
        body = json.dumps(msg).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    def emit_pipe(fd, category):
        # Called with out_lock held: what the program wrote becomes `output` events once
        # the session is connected (before that it is the adapter's own talk, for stderr).
        data = os.read(fd, 65536)
        if not data:
            return False
        if not connected.is_set():
            os.write(2, data)
        else:
            text = data.decode("utf-8", "replace")
            body = {"category": category, "output": text}
            out.write(frame({"seq": 0, "type": "event", "event": "output", "body": body}))
            out.flush()
        return True

    def drain():
        # Everything the program wrote before it exited is in the pipes by the time the
        # adapter reports the exit: pass it on first.
        for fd, category in pipes:
            while select.select([fd], [], [], 0)[0]:
                if not emit_pipe(fd, category):
                    break

    def pump(fd, category):
        while True:
            select.select([fd], [], [])
            with out_lock:
                if not emit_pipe(fd, category):
                    return

    if not argv and not held:
        # A prestarted program (its stdio closed when it started, before any job) writes to
        # FIFO-stdout and FIFO-stderr once a debugger attached (its wrapper opens them), so
        # what it, a child process or a C extension writes to the descriptors becomes
        # `output` events like a launched program's. Opened without blocking, then held
        # open for writing too, so the read end waits for the program instead of seeing
        # end-of-file before it opened its end.
        for category in ("stdout", "stderr"):
            path = "%s-%s" % (fifo, category)
            if not os.path.exists(path):
                os.mkfifo(path, 0o600)
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.open(path, os.O_WRONLY)
            os.set_blocking(fd, True)
            pipes.append((fd, category))
            threading.Thread(target=pump, args=(fd, category), daemon=True).start()
    if argv:
        # The adapter's stdin is the FIFO, so a program it starts with its own stdio (Delve
        # does) reads the participants' input; its stdout and stderr are captured.
        program_stdin = os.open(fifo, os.O_RDONLY)
        adapter = subprocess.Popen(argv, stdin=program_stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(program_stdin)
        pipes = [(adapter.stdout.fileno(), "stdout"), (adapter.stderr.fileno(), "stderr")]
        for fd, category in pipes:
            threading.Thread(target=pump, args=(fd, category), daemon=True).start()
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", int(port)), timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or (adapter is not None and adapter.poll() is not None):
                sys.stderr.write("mesh: the debug adapter did not listen on port %s\n" % port)
                sys.exit(125)
            time.sleep(0.01)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connected.set()
    to_adapter = sock.makefile("wb")

    def read_exit_file():
        deadline = time.monotonic() + EXIT_FILE_SECONDS
        while True:
            try:
                with open(fifo + "-exit") as f:
                    text = f.read()
                if text.endswith("\n"):
                    return int(text)
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)

    class Messages:
        """DAP messages from the adapter's socket."""

        def __init__(self):
            self.buf = b""

        def next(self):
            """The next message's bytes; None at the end."""
            while True:
                head_end = self.buf.find(b"\r\n\r\n")
                if head_end >= 0:
                    n = 0
                    for line in self.buf[:head_end].split(b"\r\n"):
                        name, _, value = line.decode("latin-1").partition(":")
                        if name.strip().lower() == "content-length":
                            n = int(value)
                    start = head_end + 4
                    if len(self.buf) >= start + n:
                        body, self.buf = self.buf[start : start + n], self.buf[start + n :]
                        return body
                data = sock.recv(65536)
                if not data:
                    return None
                self.buf += data

    def from_adapter():
        messages = Messages()
        exited = False
        while True:
            raw = messages.next()
            if raw is None:
                break
            try:
                msg = json.loads(raw)
            except ValueError:
                msg = None
            event = msg.get("event") if isinstance(msg, dict) else None
            with out_lock:
                if event in ("stopped", "exited", "terminated"):
                    # What the program wrote before it stopped or ended is in the pipes:
                    # it goes first, as the program wrote it.
                    drain()
                exited = exited or event == "exited"
                if event == "terminated" and not exited and not argv and not held:
                    # A prestarted program's wrapper leaves its exit status in a file (an
                    # attached debugpy reports none); it is written as the program ends.
                    code = read_exit_file()
                    if code is not None:
                        exited = True
                        body = {"exitCode": code}
                        out.write(frame({"seq": 0, "type": "event", "event": "exited", "body": body}))
                text = (msg.get("body") or {}).get("output", "") if event == "output" else ""
                status = EXIT_LINE.match(text) if isinstance(text, str) else None
                if status and not exited:
                    # Delve's only word of the exit status (it comes after `terminated`,
                    # on the way to the session's `disconnect`).
                    exited = True
                    body = {"exitCode": int(status.group(1))}
                    out.write(frame({"seq": 0, "type": "event", "event": "exited", "body": body}))
                out.write(b"Content-Length: %d\r\n\r\n" % len(raw) + raw)
                out.flush()
        with out_lock:
            drain()
            out.flush()
        # The adapter hung up: the session is over.
        code = 0
        if adapter is not None:
            try:
                code = adapter.wait(EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                adapter.kill()
        os._exit(code or 0)

    threading.Thread(target=from_adapter, daemon=True).start()

chunks = queue.Queue()


def reader_has_it():
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                fds = os.listdir("/proc/%s/fd" % pid)
                if any(os.readlink("/proc/%s/fd/%s" % (pid, fd)) == fifo for fd in fds):
                    return True
            except OSError:
                pass
    return False


def unread():
    return struct.unpack("i", fcntl.ioctl(hold, termios.FIONREAD, b"\0\0\0\0"))[0]


def feed():
    while True:
        data = chunks.get()
        if data is None:
            # Closing the last writer before the program opened the FIFO, or before it read
            # what is buffered, would lose the input: wait for both.
            while not (reader_has_it() and unread() == 0):
                time.sleep(0.05)
            os.close(hold)
            return
        try:
            os.write(hold, data)
        except OSError:
            return


threading.Thread(target=feed, daemon=True).start()
src = sys.stdin.buffer
while True:
    head = {}
    while True:
        line = src.readline()
        if not line:
            head = None
            break
        line = line.strip()
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        head[name.strip().lower()] = value.strip()
    if head is None:
        break
    if "mesh-stdin" in head:
        n = int(head["mesh-stdin"])
        chunks.put(src.read(n) if n else None)
        continue
    n = int(head.get("content-length", "0"))
    try:
        to_adapter.write(b"Content-Length: %d\r\n\r\n" % n + src.read(n))
        to_adapter.flush()
    except OSError:
        break
to_adapter.close()
sys.exit(adapter.wait() if adapter is not None else 0)
