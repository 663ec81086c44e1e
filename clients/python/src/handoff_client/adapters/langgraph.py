"""LangGraph / LangChain (`langgraph`, `langchain`): the human-in-the-loop middleware's interrupts,
decided by handoff.

    reviews = Reviews(client, agent_id="support-bot", session_id=thread_id,
                      tools=[Tool("issue_refund", "refund.issue", amount=lambda a: a["amount"])])
    result = reviews.invoke(agent, {"messages": [...]}, config)

`invoke` runs the graph and, at each interrupt of `HumanInTheLoopMiddleware`, sends every
reviewed tool call to handoff, waits for the final verdicts and resumes with
`Command(resume=...)` in the middleware's own terms: `approve`, `edit` (a person's arguments),
`reject` (with the reason) or `respond` (a person's words instead of the call). Both interrupt
modes are answered — `batched` (`{"action_requests": [...]}`, one decision per request, in order;
each request's `args`, or `arguments` as earlier versions wrote it) and `per_call`
(`{"type": "tool_approval", "tool_call_id": ...}`, answered by interrupt id). An answer the
request does not allow falls back to the nearest one it does (an edit it may not make is a
rejection naming the arguments asked for).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from langgraph.types import Command

from .._client import Client
from .answer import Answer, answer, redeemed
from .tools import Tool

FRAMEWORK = "langgraph"


class Reviews:
    """Answers one thread's interrupts from handoff (the blocking client; graphs run sync)."""

    def __init__(
        self,
        client: Client,
        *,
        agent_id: str,
        session_id: str,
        tools: Iterable[Tool] = (),
        request: str = "",
        timeout_s: float | None = None,
    ) -> None:
        self._client = client
        self._agent_id = agent_id
        self._session_id = session_id
        self._tools = {t.name: t for t in tools}
        self._request = request
        self._timeout_s = timeout_s
        self._asked = 0

    def invoke(self, graph: Any, input: Any, config: Mapping[str, Any]) -> Any:
        """`graph.invoke`, resumed after each interrupt until the run ends."""
        result = graph.invoke(input, config)
        while True:
            interrupts = graph.get_state(config).interrupts
            if not interrupts:
                return result
            result = graph.invoke(self.resume(interrupts, self._calls(graph, config)), config)

    def resume(self, interrupts: Iterable[Any], calls: list[tuple[str, str]] | None = None) -> Command[Any]:
        """The `Command(resume=...)` answering `interrupts` (the `Interrupt`s of a paused run);
        `calls` are the paused turn's tool calls (name, id), to name each request's call."""
        pending = list(interrupts)
        per_call = [i for i in pending if _is_per_call(i.value)]
        if per_call:
            return Command(resume={i.id: self._decide_one(i.value) for i in per_call})
        value = pending[0].value
        requests = value.get("action_requests") or []
        configs = value.get("review_configs") or [{} for _ in requests]
        unused = list(calls or [])
        decisions = []
        for req, cfg in zip(requests, configs, strict=False):
            name = req.get("name")
            match = next((c for c in unused if c[0] == name), None)
            if match is not None:
                unused.remove(match)
            decisions.append(self._decision(req, cfg, match[1] if match else None))
        return Command(resume={"decisions": decisions})

    def _decide_one(self, value: Mapping[str, Any]) -> dict[str, Any]:
        allowed = value.get("allowed_decisions") or ["approve", "edit", "reject", "respond"]
        return self._decision(value, {"allowed_decisions": allowed}, value.get("tool_call_id"))

    def _decision(
        self, req: Mapping[str, Any], cfg: Mapping[str, Any], call_id: str | None
    ) -> dict[str, Any]:
        name = str(req.get("name") or req.get("action") or "")
        args = req.get("args", req.get("arguments")) or {}
        policy = self._tools.get(name) or Tool(name, f"tool.{name}")
        self._asked += 1
        key = call_id or f"call-{self._asked}"
        action = policy.action(
            args,
            agent_id=self._agent_id,
            session_id=self._session_id,
            request=self._request or str(req.get("description") or f"tool call {name}"),
            framework=FRAMEWORK,
            call_id=call_id,
        )
        action["action_id"] = f"{FRAMEWORK}-{self._session_id}-{key}"
        if self._client.state(action["action_id"]) is None:
            self._client.submit(action)
        verdict = self._client.wait(action["action_id"], timeout_s=self._timeout_s)
        a = redeemed(self._client, verdict, answer(verdict), args, name)
        return _in_terms_of(a, name, cfg.get("allowed_decisions"))

    @staticmethod
    def _calls(graph: Any, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The paused model turn's tool calls, (name, id): a batched request carries no id."""
        messages = graph.get_state(config).values.get("messages") or []
        calls = getattr(messages[-1], "tool_calls", None) if messages else None
        return [(str(c.get("name")), str(c.get("id"))) for c in calls or [] if c.get("id")]


def _is_per_call(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") == "tool_approval"


def _in_terms_of(a: Answer, name: str, allowed: Iterable[str] | None) -> dict[str, Any]:
    """The middleware's decision for `a`, within what the request allows."""
    ok = set(allowed or ["approve", "edit", "reject", "respond"])
    if a.kind == "edit" and "edit" in ok:
        return {"type": "edit", "edited_action": {"name": name, "args": a.arguments}}
    if a.kind == "edit":
        return {"type": "reject", "message": f"a person allowed it only with other arguments: {a.arguments}"}
    if a.kind == "respond" and "respond" in ok:
        return {"type": "respond", "message": a.message}
    if a.kind in ("respond", "reject"):
        return {"type": "reject", "message": a.message or "not allowed"}
    return {"type": "approve"}
