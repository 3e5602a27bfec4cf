"""Running an MCP server (the official SDK's ``MCPServer``) as a process the Tandem runtime starts.

Over stdio the messages are the SDK's own (newline-delimited JSON-RPC, parsed and serialised by ``mcp_types``)
and the server is the SDK's; only the pipe handling differs. The SDK's ``stdio_server`` reads and writes the
standard streams through a worker thread, three thread hand-offs per request; here the pipes are asyncio
pipes on the event loop, which roughly doubles the calls a server answers per second (see
``docs/benchmarks.md``). Over streamable HTTP the SDK's app runs under uvicorn on a socket bound before
anything is announced: the process prints ``{"url": ...}`` on stdout once it accepts connections, so the
runtime can start servers on port 0 and never guess a port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage

MAX_LINE = 16 * 1024 * 1024


@asynccontextmanager
async def stdio_pipes() -> AsyncIterator[
    tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]
]:
    """The process's stdin and stdout as the SDK's message streams, read and written on the event loop."""
    loop = asyncio.get_running_loop()
    # Keep the wire to ourselves: stray prints of the tools go to stderr, reads of stdin see nothing.
    wire_in, wire_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    incoming_send, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outgoing, outgoing_receive = anyio.create_memory_object_stream[SessionMessage](0)

    async def read() -> None:
        async with incoming_send:
            while line := await reader.readline():
                try:
                    message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except ValueError as exc:  # pydantic's ValidationError is a ValueError
                    await incoming_send.send(exc)
                    continue
                await incoming_send.send(SessionMessage(message))

    async def write() -> None:
        async with outgoing_receive:
            async for item in outgoing_receive:
                writer.write(item.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n")
                await writer.drain()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        tasks.start_soon(write)
        try:
            yield incoming, outgoing
        finally:
            tasks.cancel_scope.cancel()
            transport.close()


async def serve_stdio(server: MCPServer[Any]) -> None:
    lowlevel = server._lowlevel_server  # the SDK's serve loop, fed by our pipes instead of its threads
    async with stdio_pipes() as (incoming, outgoing):
        await lowlevel.run(incoming, outgoing, lowlevel.create_initialization_options())


async def serve_http(server: MCPServer[Any], host: str = "127.0.0.1", port: int = 0) -> None:
    import uvicorn

    # IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets that say they are TCP, and with Nagle on
    # every request/response pair waits out a delayed ACK (~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    app = server.streamable_http_app(stateless_http=True, json_response=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    runner = uvicorn.Server(config)
    bound = sock.getsockname()
    # Listening already: connections made after this line wait in the backlog until uvicorn accepts them.
    print(json.dumps({"url": f"http://{bound[0]}:{bound[1]}/mcp"}), flush=True)

    async def until_parent_leaves() -> None:
        # Started by a runtime, the server goes when it goes (killed or not): its end of stdin closes.
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.read(65536):
            pass
        runner.should_exit = True

    watcher = asyncio.create_task(until_parent_leaves()) if not sys.stdin.isatty() else None
    try:
        await runner.serve(sockets=[sock])
    finally:
        if watcher is not None:
            watcher.cancel()


def run(server: MCPServer[Any], http: str | None = None) -> None:
    """Serve over stdio, or over streamable HTTP on ``host:port`` (port 0: any free port, announced)."""
    if http is None:
        anyio.run(serve_stdio, server)
        return
    host, _, port = http.rpartition(":")
    try:
        anyio.run(serve_http, server, host or "127.0.0.1", int(port or 0))
    except KeyboardInterrupt:
        sys.exit(0)


def main(
    build: Callable[[Path, Path], MCPServer[Any]], doc: str | None, world_help: str = "the world.yaml to seed from"
) -> None:
    """The command line every example system shares: its data file, the world it seeds from, stdio or HTTP."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--data", type=Path, required=True, help="the server's SQLite file")
    parser.add_argument("--world", type=Path, required=True, help=world_help)
    parser.add_argument("--http", help="serve streamable HTTP on host:port instead of stdio")
    args = parser.parse_args()
    run(build(args.data, args.world), args.http)
