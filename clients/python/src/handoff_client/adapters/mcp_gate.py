"""MCP (`mcp`): a gate in front of any MCP server, every `tools/call` decided by handoff.

    python -m handoff_client.adapters.mcp_gate --gateway http://127.0.0.1:9880 --agent-id ops-bot \\
        --tool issue_refund=refund.issue [--http PORT] -- python my_mcp_server.py

The gate is an MCP server (stdio, or streamable HTTP with `--http`) that connects to the real
server over stdio, lists its tools as they are (input schemas, annotations) and, for each call:
sends it to handoff as an action — the tool's annotations feed the event (`readOnlyHint` or
`destructiveHint: false` → reversible; `openWorldHint`, true unless said otherwise, → affects
others) —, waits for the final verdict (a held call waits for the person, as long as the MCP
client waits), then forwards the call (with a person's revised arguments when there are some),
or answers a tool error with the reason without calling the server, or a person's words instead
of the call. A tool's action type is `mcp.<tool>` unless `--tool NAME=TYPE` names the one the
matrix knows it by (an unknown type is handed to a person: fail closed). The agent key comes from
the environment (`HANDOFF_KEY`), never the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp.types as types
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from .._client import AsyncClient
from .answer import answer, aredeemed
from .tools import Tool

FRAMEWORK = "mcp"


def from_annotations(name: str, annotations: types.ToolAnnotations | None) -> Tool:
    """What a tool is to handoff when nothing else is said: its annotations (the MCP defaults
    when absent: destructive, open world) and the action type `mcp.<name>`."""
    a = annotations or types.ToolAnnotations()
    read_only = a.read_only_hint is True
    reversible = read_only or a.destructive_hint is False
    affects_others = not read_only and a.open_world_hint is not False
    kind = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "tool"
    return Tool(name, f"mcp.{kind}", reversible=reversible, affects_others=affects_others)


@dataclass
class Gate:
    """The gate's settings: handoff's client, the agent it acts as, the tools it knows better
    than their annotations (by name), the downstream server."""

    client: AsyncClient
    agent_id: str
    downstream: StdioServerParameters
    session_id: str = field(default_factory=lambda: f"mcp-{uuid.uuid4()}")
    action_types: dict[str, str] = field(default_factory=dict)
    tools: dict[str, Tool] = field(default_factory=dict)
    timeout_s: float | None = None

    def policy(self, tool: types.Tool) -> Tool:
        """The tool as `tools` describes it, else by its annotations (with its action type from
        `action_types` when named there)."""
        known = self.tools.get(tool.name)
        if known is not None:
            return known
        seen = from_annotations(tool.name, tool.annotations)
        kind = self.action_types.get(tool.name)
        return dataclasses.replace(seen, action_type=kind) if kind else seen

    async def decide(self, tool: types.Tool, arguments: dict[str, Any]) -> tuple[str, Any]:
        """("forward", arguments), ("refuse", reason) or ("respond", words)."""
        action = self.policy(tool).action(
            arguments,
            agent_id=self.agent_id,
            session_id=self.session_id,
            request=tool.description or f"tool call {tool.name}",
            framework=FRAMEWORK,
            call_id=f"call-{uuid.uuid4()}",
            arguments_schema=tool.input_schema,
        )
        verdict = await self.client.decide(action, timeout_s=self.timeout_s)
        a = await aredeemed(self.client, verdict, answer(verdict), arguments, tool.name)
        if a.kind == "approve":
            return ("forward", arguments)
        if a.kind == "edit":
            return ("forward", a.arguments)
        if a.kind == "respond":
            return ("respond", a.message)
        return ("refuse", a.message)


class _Downstream:
    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.tools: dict[str, types.Tool] = {}

    async def refresh(self) -> list[types.Tool]:
        tools: list[types.Tool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await self.session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = {t.name: t for t in tools}
        return tools


def server(gate: Gate) -> Server[_Downstream]:
    """The gate as an MCP server (serve it over stdio or as a streamable HTTP app)."""

    @asynccontextmanager
    async def lifespan(_server: Server[_Downstream]) -> AsyncIterator[_Downstream]:
        async with stdio_client(gate.downstream) as (r, w), ClientSession(r, w) as session:
            await session.initialize()
            downstream = _Downstream(session)
            await downstream.refresh()
            yield downstream

    async def on_list_tools(
        ctx: ServerRequestContext[_Downstream], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await ctx.lifespan_context.refresh())

    async def on_call_tool(
        ctx: ServerRequestContext[_Downstream], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        downstream = ctx.lifespan_context
        tool = downstream.tools.get(params.name)
        if tool is None:
            await downstream.refresh()
            tool = downstream.tools.get(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        how, what = await gate.decide(tool, dict(params.arguments or {}))
        if how == "forward":
            return await downstream.session.call_tool(params.name, what)
        text = types.TextContent(type="text", text=str(what))
        return types.CallToolResult(content=[text], is_error=how == "refuse")

    return Server(
        "handoff-gate",
        version="0.1.0",
        lifespan=lifespan,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


async def serve_stdio(gate: Gate) -> None:
    """Serves the gate on standard input and output."""
    s = server(gate)
    async with stdio_server() as (r, w):
        await s.run(r, w, s.create_initialization_options())


def main(argv: Iterable[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m handoff_client.adapters.mcp_gate", description=__doc__.split("\n")[0]
    )
    p.add_argument("--gateway", required=True, help="the handoff gateway's URL")
    p.add_argument("--agent-id", required=True, help="the agent id the key acts as")
    p.add_argument("--session-id", help="the session the calls belong to (default: one per gate)")
    p.add_argument("--tool", action="append", default=[], metavar="NAME=TYPE", help="a tool's action type")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="give up on a verdict after this long")
    p.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT/mcp")
    p.add_argument("command", nargs="+", help="the MCP server to gate, after --")
    args = p.parse_args(list(argv) if argv is not None else None)
    key = os.environ.get("HANDOFF_KEY")
    if not key:
        p.error("HANDOFF_KEY is not set: the agent key comes from the environment")
    kinds = dict(t.split("=", 1) for t in args.tool if "=" in t)
    if len(kinds) != len(args.tool):
        p.error("--tool takes NAME=TYPE, e.g. --tool issue_refund=refund.issue")
    # The server runs with the gate's environment, less the agent key (it is the gate's alone).
    env = {k: v for k, v in os.environ.items() if k != "HANDOFF_KEY"}
    downstream = StdioServerParameters(command=args.command[0], args=args.command[1:], env=env)
    gate = Gate(
        AsyncClient(args.gateway, key),
        agent_id=args.agent_id,
        downstream=downstream,
        action_types=kinds,
        timeout_s=args.timeout,
    )
    if args.session_id:
        gate.session_id = args.session_id
    if args.http is None:
        anyio.run(serve_stdio, gate)
        return
    import uvicorn

    uvicorn.run(server(gate).streamable_http_app(), host="127.0.0.1", port=args.http, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
