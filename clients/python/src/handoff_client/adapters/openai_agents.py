"""OpenAI Agents SDK (`openai-agents`): its tool approvals, decided by handoff.

    approvals = Approvals(client, agent_id="support-bot", session_id=conversation_id)
    agent = Agent(..., tools=[approvals.gate(issue_refund, Tool("issue_refund", "refund.issue"))])
    result = await approvals.run(agent, "Refund order o-1")

`gate` gives the tool a `needs_approval` that asks handoff: a call the rules let run alone runs at
once, any other pauses the run with a tool approval item. `run` (or `resolve`, for code that
drives `Runner` itself) waits for each paused call's final verdict and resumes in the SDK's own
terms — `approve`, or `reject` with the reason the model reads. A person's revised arguments are
what the tool runs with (the SDK has no "approve with other arguments": the gated tool swaps
them in by call id). Handoff's action id for a call is derived from the session and the call id,
so a run resumed after a restart finds the same action instead of asking again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from agents import Agent, FunctionTool, RunContextWrapper, Runner, RunResult, RunState, ToolApprovalItem
from agents.tool_context import ToolContext

from .._client import AsyncClient
from .._models import Verdict, canonical_json
from .answer import answer, aredeemed
from .tools import Tool

FRAMEWORK = "openai-agents"


class Approvals:
    """Routes one conversation's tool approvals to handoff."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        agent_id: str,
        session_id: str,
        request: str = "",
        timeout_s: float | None = None,
        on_wait: Callable[[Verdict], Any] | None = None,
    ) -> None:
        self._client = client
        self._agent_id = agent_id
        self._session_id = session_id
        self._request = request
        self._timeout_s = timeout_s
        self._on_wait = on_wait
        self._tools: dict[str, Tool] = {}
        self._revised: dict[str, str] = {}

    def action_id(self, call_id: str) -> str:
        """Handoff's id of the action a tool call is."""
        return f"{FRAMEWORK}-{self._session_id}-{call_id}"

    def gate(self, tool: FunctionTool, policy: Tool) -> FunctionTool:
        """`tool`, its calls decided by handoff as `policy` describes them."""
        self._tools[tool.name] = policy
        original = tool.on_invoke_tool

        async def needs_approval(_ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
            first = await self._first(policy, params, call_id)
            return not (first is not None and first.runs)

        async def on_invoke(ctx: ToolContext[Any], args_json: str) -> Any:
            revised = self._revised.pop(ctx.tool_call_id, None)
            return await original(ctx, revised if revised is not None else args_json)

        return dataclasses.replace(tool, needs_approval=needs_approval, on_invoke_tool=on_invoke)

    async def resolve(self, result: RunResult) -> RunState[Any]:
        """The run's state with every paused call answered by its final verdict."""
        state: RunState[Any] = result.to_state()
        for item in state.get_interruptions():
            await self._answer(state, item)
        return state

    async def run(self, agent: Agent[Any], input: str, **kwargs: Any) -> RunResult:
        """`Runner.run`, resumed after each pause until the run ends."""
        result = await Runner.run(agent, input, **kwargs)
        while result.interruptions:
            result = await Runner.run(agent, await self.resolve(result), **kwargs)
        return result

    async def _first(self, policy: Tool, args: dict[str, Any], call_id: str) -> Verdict | None:
        action_id = await self._submitted(policy, args, call_id)
        state = await self._client.state(action_id, wait_s=30, until="any")
        return state.first if state is not None else None

    async def _submitted(self, policy: Tool, args: dict[str, Any] | str, call_id: str) -> str:
        """The action of the call, submitted unless handoff already knows it."""
        action_id = self.action_id(call_id)
        if await self._client.state(action_id) is not None:
            return action_id
        action = policy.action(
            args,
            agent_id=self._agent_id,
            session_id=self._session_id,
            request=self._request or f"tool call {policy.name}",
            framework=FRAMEWORK,
            call_id=call_id,
        )
        action["action_id"] = action_id
        await self._client.submit(action)
        return action_id

    async def _answer(self, state: RunState[Any], item: ToolApprovalItem) -> None:
        name = item.tool_name or ""
        policy = self._tools.get(name) or Tool(name, f"tool.{name}")
        call_id = item.call_id or ""
        action_id = await self._submitted(policy, item.arguments or "{}", call_id)
        verdict = await self._client.wait(action_id, on_wait=self._on_wait, timeout_s=self._timeout_s)
        a = await aredeemed(self._client, verdict, answer(verdict), item.arguments or "{}", name)
        if a.kind == "approve":
            state.approve(item)
        elif a.kind == "edit":
            self._revised[call_id] = canonical_json(a.arguments)
            state.approve(item)
        else:
            # reject, or a person's words instead of the call: the model reads the message.
            state.reject(item, rejection_message=a.message)
