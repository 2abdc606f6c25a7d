"""Drives `mesh-proxy mcp` with the reference MCP client, the `mcp` package from PyPI, for
lsp-proxy/tests/mcp.rs.

Usage: driver.py ARG... (the `mesh-proxy` arguments; the binary is $MESH_PROXY_BIN).
It starts the server over stdio, initialises, lists the tools and prints one JSON line
{"ready": true, "server": NAME, "tools": [...]}; then, for each JSON line
{"tool": NAME, "args": {...}} on stdin, calls that tool and prints
{"error": BOOL, "text": TEXT}. It ends when stdin closes, which closes the server's stdin.
"""

import json
import os
import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def emit(obj):
    print(json.dumps(obj), flush=True)


async def main():
    params = StdioServerParameters(
        command=os.environ["MESH_PROXY_BIN"],
        args=sys.argv[1:],
        # The client passes only a few variables by default; the test's state folders
        # (XDG_STATE_HOME, XDG_CONFIG_HOME) and MESH_* settings must reach the proxy.
        env=dict(os.environ),
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            emit({"ready": True, "server": init.serverInfo.name, "tools": sorted(t.name for t in tools.tools)})
            while True:
                line = await anyio.to_thread.run_sync(sys.stdin.readline)
                if not line:
                    break
                cmd = json.loads(line)
                result = await session.call_tool(cmd["tool"], cmd.get("args", {}))
                text = "".join(c.text for c in result.content if c.type == "text")
                emit({"error": bool(result.isError), "text": text})


if __name__ == "__main__":
    anyio.run(main)
