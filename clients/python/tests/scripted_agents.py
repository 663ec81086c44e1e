"""A refund agent on one framework, run to its end through handoff, for the end-to-end test in
which a person answers in the browser inbox (tests/kafka_agents.rs):
`python scripted_agents.py langgraph|openai-agents|mcp SESSION`, with HANDOFF_GATEWAY_URL and HANDOFF_KEY
set. Prints one JSON line: the action id handoff knew the call by and what the tool ran with."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from agents import Agent
from agents.testing import ScriptedModel, assistant_message, function_call
from langchain_core.messages import AIMessage
from mcp import ClientSession, StdioServerParameters, stdio_client
from test_adapters import REFUND, graph, refund_call, refund_tool, said

from handoff_client import AsyncClient, Client
from handoff_client.adapters.langgraph import Reviews
from handoff_client.adapters.openai_agents import Approvals

HERE = Path(__file__).resolve().parent


def langgraph(url: str, key: str, session: str) -> dict[str, Any]:
    ran: list[tuple[str, float]] = []
    agent = graph([AIMessage(content="", tool_calls=[refund_call("o-1", 40, "call-1")]), said], ran)
    with Client(url, key) as client:
        reviews = Reviews(client, agent_id="agent-a", session_id=session, tools=[REFUND], timeout_s=120)
        reviews.invoke(agent, {"messages": [{"role": "user", "content": "Refund o-1"}]}, _thread(session))
    return {"action_id": f"langgraph-{session}-call-1", "ran": ran}


async def openai_agents(url: str, key: str, session: str) -> dict[str, Any]:
    ran: list[tuple[str, float]] = []
    model = ScriptedModel(
        [
            [function_call("issue_refund", {"order_id": "o-1", "amount": 40.0}, call_id="call-1")],
            [assistant_message("Your refund is on its way.")],
        ]
    )
    async with AsyncClient(url, key) as client:
        approvals = Approvals(
            client, agent_id="agent-a", session_id=session, request="Refund my kettle", timeout_s=120
        )
        agent = Agent(name="support", model=model, tools=[approvals.gate(refund_tool(ran), REFUND)])
        await approvals.run(agent, "Refund my kettle")
    return {"action_id": approvals.action_id("call-1"), "ran": ran}


async def mcp(url: str, key: str, session: str) -> dict[str, Any]:
    calls = Path(tempfile.mkdtemp()) / "calls.jsonl"
    server = [sys.executable, str(HERE / "mcp_downstream.py")]
    flags = ["--gateway", url, "--agent-id", "agent-a", "--session-id", session, "--timeout", "120"]
    gate = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "handoff_client.adapters.mcp_gate",
            *flags,
            "--tool",
            "issue_refund=refund.issue",
            "--",
            *server,
        ],
        env={**os.environ, "HANDOFF_KEY": key, "MCP_CALLS": str(calls)},
    )
    async with stdio_client(gate) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        result = await s.call_tool("issue_refund", {"order_id": "o-1", "amount": 40})
    ran = [(c["order_id"], c["amount"]) for c in map(json.loads, calls.read_text().splitlines())]
    return {"session_id": session, "ran": ran, "is_error": result.is_error}


def _thread(session: str) -> Any:
    return {"configurable": {"thread_id": session}}


if __name__ == "__main__":
    kind, session = sys.argv[1], sys.argv[2]
    url, key = os.environ["HANDOFF_GATEWAY_URL"], os.environ["HANDOFF_KEY"]
    if kind == "langgraph":
        out = langgraph(url, key, session)
    elif kind == "openai-agents":
        out = asyncio.run(openai_agents(url, key, session))
    else:
        out = asyncio.run(mcp(url, key, session))
    print(json.dumps(out), flush=True)
