"""The adapters against the frameworks' real packages, with scripted models (no network, no
LLM), a live gateway and processor, and a person answering as the inbox does: each framework's
pause goes to handoff and the run resumes in the framework's own terms."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

from agents import Agent, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call
from conftest import Person
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import PrivateAttr

from handoff_client import AsyncClient, Client
from handoff_client.adapters import Tool
from handoff_client.adapters.langgraph import Reviews
from handoff_client.adapters.openai_agents import Approvals

REVISED = '{"amount":25,"order_id":"o-1"}'
REFUND = Tool(
    "issue_refund",
    "refund.issue",
    reversible=True,
    affects_others=False,
    amount=lambda a: a["amount"],
    currency="EUR",
)


def people_answer(person: Person, action_id: str, support: str, **fields: Any) -> threading.Thread:
    """Support answers `support` (the tests' matrix lets an action without a confidence pass
    the gate, `without_confidence = "passes"`, so a refund is support's alone)."""

    def run() -> None:
        person.answer(action_id, "support", support, **fields)

    t = threading.Thread(target=run)
    t.start()
    return t


# ---- OpenAI Agents SDK ----------------------------------------------------------------------


def refund_tool(ran: list[tuple[str, float]]) -> Any:
    @function_tool
    def issue_refund(order_id: str, amount: float) -> str:
        """Refund an order."""
        ran.append((order_id, amount))
        return f"refunded {amount} on {order_id}"

    return issue_refund


async def test_openai_agents_a_refund_runs_with_the_arguments_a_person_revised(
    gateway_url: str, key_a: str, person: Person
) -> None:
    ran: list[tuple[str, float]] = []
    session = f"sess-{uuid.uuid4()}"
    model = ScriptedModel(
        [
            [function_call("issue_refund", {"order_id": "o-1", "amount": 40.0}, call_id="call-1")],
            [assistant_message("Your refund is on its way.")],
        ]
    )
    async with AsyncClient(gateway_url, key_a) as client:
        approvals = Approvals(client, agent_id="agent-a", session_id=session, request="Refund my kettle")
        agent = Agent(name="support", model=model, tools=[approvals.gate(refund_tool(ran), REFUND)])
        answering = people_answer(person, approvals.action_id("call-1"), "revise", revised_arguments=REVISED)
        result = await approvals.run(agent, "Refund my kettle")
        answering.join()
        verdict = await client.wait(approvals.action_id("call-1"), timeout_s=10)
    assert ran == [("o-1", 25.0)], "the tool ran once, with the person's arguments"
    assert result.final_output == "Your refund is on its way."
    assert (verdict.outcome, verdict.revised_arguments) == ("revised", REVISED)


async def test_openai_agents_a_rejected_call_does_not_run_and_the_model_reads_why(
    gateway_url: str, key_a: str, person: Person
) -> None:
    ran: list[tuple[str, float]] = []
    seen: list[str] = []

    def last_output(request: Any) -> Any:
        items = [i for i in request.input if isinstance(i, dict) and i.get("type") == "function_call_output"]
        seen.append(str(items[-1]["output"]))
        return [assistant_message("I could not refund it.")]

    from agents.testing import ModelStep

    model = ScriptedModel(
        [
            # An integer for a float parameter: the SDK then pauses without asking needs_approval;
            # the adapter submits the call when it resolves the pause.
            [function_call("issue_refund", {"order_id": "o-1", "amount": 40}, call_id="call-9")],
            ModelStep.respond(last_output),
        ]
    )
    async with AsyncClient(gateway_url, key_a) as client:
        approvals = Approvals(client, agent_id="agent-a", session_id=f"sess-{uuid.uuid4()}")
        agent = Agent(name="support", model=model, tools=[approvals.gate(refund_tool(ran), REFUND)])
        answering = people_answer(
            person, approvals.action_id("call-9"), "reject", comment="order already refunded"
        )
        result = await approvals.run(agent, "Refund my kettle")
        answering.join()
    assert ran == []
    assert result.final_output == "I could not refund it."
    assert seen == ["rejected by ana: order already refunded"]


# ---- LangGraph / LangChain human-in-the-loop middleware -----------------------------------------


class ScriptedChatModel(BaseChatModel):
    """Answers with the scripted messages in turn (tool calls first, then text)."""

    turns: list[Any]
    _at: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        turn = self.turns[min(self._at, len(self.turns) - 1)]
        self._at += 1
        message = turn(messages) if callable(turn) else turn
        return ChatResult(generations=[ChatGeneration(message=message)])


def refund_call(order_id: str, amount: float, call_id: str) -> dict[str, Any]:
    return {
        "name": "issue_refund",
        "args": {"order_id": order_id, "amount": amount},
        "id": call_id,
        "type": "tool_call",
    }


def graph(turns: list[Any], ran: list[tuple[str, float]], mode: str = "batched") -> Any:
    @tool
    def issue_refund(order_id: str, amount: float) -> str:
        """Refund an order."""
        ran.append((order_id, amount))
        return f"refunded {amount} on {order_id}"

    hitl = HumanInTheLoopMiddleware(interrupt_on={"issue_refund": True}, interrupt_mode=mode)  # type: ignore[arg-type]
    return create_agent(
        ScriptedChatModel(turns=turns), tools=[issue_refund], middleware=[hitl], checkpointer=InMemorySaver()
    )


def said(messages: list[BaseMessage]) -> AIMessage:
    tools = [f"[{m.status}] {m.content}" for m in messages if isinstance(m, ToolMessage)]
    return AIMessage(content=" | ".join(tools))


def test_langgraph_an_edit_by_a_person_resumes_the_graph_with_the_edited_arguments(
    gateway_url: str, key_a: str, person: Person
) -> None:
    ran: list[tuple[str, float]] = []
    thread = f"thread-{uuid.uuid4()}"
    agent = graph([AIMessage(content="", tool_calls=[refund_call("o-1", 40, "call-1")]), said], ran)
    with Client(gateway_url, key_a) as client:
        reviews = Reviews(client, agent_id="agent-a", session_id=thread, tools=[REFUND], timeout_s=60)
        answering = people_answer(person, f"langgraph-{thread}-call-1", "revise", revised_arguments=REVISED)
        out = reviews.invoke(
            agent, {"messages": [{"role": "user", "content": "Refund o-1"}]}, _config(thread)
        )
        answering.join()
    assert ran == [("o-1", 25.0)]
    assert "refunded 25.0 on o-1" in out["messages"][-1].content


def test_langgraph_batched_calls_get_one_decision_each_in_order(
    gateway_url: str, key_a: str, person: Person
) -> None:
    ran: list[tuple[str, float]] = []
    thread = f"thread-{uuid.uuid4()}"
    two = AIMessage(
        content="", tool_calls=[refund_call("o-1", 40, "call-a"), refund_call("o-2", 99, "call-b")]
    )
    agent = graph([two, said], ran)
    with Client(gateway_url, key_a) as client:
        reviews = Reviews(client, agent_id="agent-a", session_id=thread, tools=[REFUND], timeout_s=60)
        first = people_answer(person, f"langgraph-{thread}-call-a", "approve")
        second = people_answer(person, f"langgraph-{thread}-call-b", "reject", comment="not eligible")
        out = reviews.invoke(
            agent, {"messages": [{"role": "user", "content": "Refund both"}]}, _config(thread)
        )
        first.join()
        second.join()
    assert ran == [("o-1", 40.0)]
    final = out["messages"][-1].content
    assert (
        "[error] User rejected the tool call for `issue_refund` with reason: rejected by ana: not eligible"
        in final
    )


def test_langgraph_per_call_interrupts_are_answered_by_interrupt_id(
    gateway_url: str, key_a: str, person: Person
) -> None:
    ran: list[tuple[str, float]] = []
    thread = f"thread-{uuid.uuid4()}"
    agent = graph(
        [AIMessage(content="", tool_calls=[refund_call("o-1", 40, "call-p")]), said], ran, mode="per_call"
    )
    with Client(gateway_url, key_a) as client:
        reviews = Reviews(client, agent_id="agent-a", session_id=thread, tools=[REFUND], timeout_s=60)
        answering = people_answer(person, f"langgraph-{thread}-call-p", "revise", revised_arguments=REVISED)
        reviews.invoke(agent, {"messages": [{"role": "user", "content": "Refund o-1"}]}, _config(thread))
        answering.join()
    assert ran == [("o-1", 25.0)]


def _config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}
