"""The MCP gate between the official MCP SDK's client and a real MCP server, over stdio and over
streamable HTTP: calls the rules let run alone are forwarded, held ones wait for the person (and
run with the arguments they revised), refused ones come back as a tool error with the reason and
never reach the server; the tools' annotations pass through and feed the event."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
import uvicorn
from conftest import Person
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from handoff_client import AsyncClient
from handoff_client.adapters.mcp_gate import Gate, from_annotations, server

HERE = Path(__file__).resolve().parent
KINDS = {"issue_refund": "refund.issue", "lookup_order": "research.order_lookup"}
SRC = HERE.parent / "src"


def downstream(calls: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=[str(HERE / "mcp_downstream.py")],
        env={"MCP_CALLS": str(calls), "PYTHONPATH": str(SRC)},
    )


def received(calls: Path) -> list[dict[str, Any]]:
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines()]


def answer_when_asked(person: Person, session: str, decision: str, **fields: Any) -> threading.Thread:
    """Support answers the refund of `session` once its escalation appears."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for a in person.actions(session):
                person.answer(a, "support", decision, **fields)
                return
            time.sleep(0.2)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_the_annotations_say_what_a_call_is() -> None:
    read_only = from_annotations("lookup_order", types.ToolAnnotations(read_only_hint=True))
    assert (read_only.reversible, read_only.affects_others, read_only.action_type) == (
        True,
        False,
        "mcp.lookup_order",
    )
    unsaid = from_annotations("Delete-Everything!", None)
    assert (unsaid.reversible, unsaid.affects_others, unsaid.action_type) == (
        False,
        True,
        "mcp.delete_everything",
    )
    kept = from_annotations("t", types.ToolAnnotations(destructive_hint=False, open_world_hint=False))
    assert (kept.reversible, kept.affects_others) == (True, False)


async def exercise(session: ClientSession, person: Person, gate_session: str, calls: Path) -> None:
    await session.initialize()
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert tools["issue_refund"].annotations is not None
    assert tools["issue_refund"].annotations.destructive_hint is True
    assert tools["lookup_order"].annotations is not None
    assert tools["lookup_order"].annotations.read_only_hint is True

    r = await session.call_tool("lookup_order", {"order_id": "o-1"})
    assert not r.is_error
    assert r.content[0].text == "order o-1: shipped"  # type: ignore[union-attr]

    revising = answer_when_asked(
        person, gate_session, "revise", revised_arguments='{"amount":25,"order_id":"o-1"}'
    )
    r = await session.call_tool("issue_refund", {"order_id": "o-1", "amount": 40})
    revising.join()
    assert not r.is_error
    assert r.content[0].text == "refunded 25.00 on order o-1"  # type: ignore[union-attr]

    rejecting = answer_when_asked(person, gate_session, "reject", comment="already refunded")
    r = await session.call_tool("issue_refund", {"order_id": "o-2", "amount": 40})
    rejecting.join()
    assert r.is_error
    assert r.content[0].text == "rejected by ana: already refunded"  # type: ignore[union-attr]
    assert received(calls) == [
        {"tool": "lookup_order", "order_id": "o-1"},
        {"tool": "issue_refund", "order_id": "o-1", "amount": 25.0},
    ], "the refused call never reached the server"


async def test_the_gate_over_stdio(gateway_url: str, key_a: str, person: Person, tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    session_id = f"mcp-stdio-{os.getpid()}-{time.monotonic_ns()}"
    gate = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "handoff_client.adapters.mcp_gate",
            "--gateway",
            gateway_url,
            "--agent-id",
            "agent-a",
            "--session-id",
            session_id,
            "--timeout",
            "60",
            "--tool",
            "issue_refund=refund.issue",
            "--tool",
            "lookup_order=research.order_lookup",
            "--",
            *[downstream(calls).command, *downstream(calls).args],
        ],
        env={"HANDOFF_KEY": key_a, "MCP_CALLS": str(calls), "PYTHONPATH": str(SRC)},
    )
    async with stdio_client(gate) as (r, w), ClientSession(r, w) as session:
        await exercise(session, person, session_id, calls)


async def test_the_gate_over_streamable_http(
    gateway_url: str, key_a: str, person: Person, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.jsonl"
    async with AsyncClient(gateway_url, key_a) as client:
        gate = Gate(
            client, agent_id="agent-a", downstream=downstream(calls), action_types=KINDS, timeout_s=60
        )
        app = server(gate).streamable_http_app()
        http = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(http.serve)
            while not http.started:
                await anyio.sleep(0.05)
            port = http.servers[0].sockets[0].getsockname()[1]
            try:
                async with (
                    streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (r, w),
                    ClientSession(r, w) as s,
                ):
                    await exercise(s, person, gate.session_id, calls)
            finally:
                http.should_exit = True


def test_the_gate_refuses_to_start_without_a_key() -> None:
    from handoff_client.adapters import mcp_gate

    os.environ.pop("HANDOFF_KEY", None)
    with pytest.raises(SystemExit):
        mcp_gate.main(["--gateway", "http://127.0.0.1:1", "--agent-id", "a", "--", "true"])
