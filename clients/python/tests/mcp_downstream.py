"""A real MCP server for the gate's tests: a refund (destructive, open world) and an order lookup
(read-only). Each call it receives is appended to the file MCP_CALLS names, as a JSON line."""

from __future__ import annotations

import json
import os

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

mcp = MCPServer("shop", version="1.0.0")


def record(tool: str, **args: object) -> None:
    with open(os.environ["MCP_CALLS"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"tool": tool, **args}) + "\n")


@mcp.tool(
    description="Refund money on an order.",
    annotations=ToolAnnotations(destructive_hint=True, read_only_hint=False, open_world_hint=True),
)
def issue_refund(order_id: str, amount: float) -> str:
    record("issue_refund", order_id=order_id, amount=amount)
    return f"refunded {amount:.2f} on order {order_id}"


@mcp.tool(description="Look up an order.", annotations=ToolAnnotations(read_only_hint=True))
def lookup_order(order_id: str) -> str:
    record("lookup_order", order_id=order_id)
    return f"order {order_id}: shipped"


if __name__ == "__main__":
    mcp.run()
