"""The live tests run against a broker, `handoff run` and `handoff gateway` that
`cargo test --test clients` starts and names in the environment; `person` answers escalations
as a person in the inbox would (a HumanDecision on human.decisions)."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from handoff_client.kafka import plain

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests with `cargo test --test clients`")
    return value


def schema(path: Path) -> Any:
    return parse_schema(plain(json.loads(path.read_text())))


class Person:
    """Answers the escalation of an action on a role topic, as a person of that role."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.escalation = {
            1: schema(SCHEMAS / "history/escalation.v1.avsc"),
            2: schema(SCHEMAS / "escalation.avsc"),
        }
        self.decision = schema(SCHEMAS / "human_decision.avsc")
        self.producer = Producer({"bootstrap.servers": bootstrap})
        self.answered: set[str] = set()

    def actions(self, session_id: str, role: str = "support") -> list[str]:
        """The actions of `session_id` escalated to `role` and not answered here yet."""
        topic = f"escalations.{role}"
        c = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"person-{uuid.uuid4()}",
                "enable.auto.commit": False,
            }
        )
        found: list[str] = []
        try:
            md = c.list_topics(topic, timeout=10).topics.get(topic)
            if md is None or md.error is not None or not md.partitions:
                return []
            c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
            quiet = time.monotonic() + 1.0
            while time.monotonic() < quiet:
                msg = c.poll(0.1)
                if msg is None or msg.error():
                    continue
                quiet = time.monotonic() + 0.5
                headers = dict(msg.headers() or [])
                version = int(headers.get("handoff.schema.version") or b"1")
                x = schemaless_reader(io.BytesIO(msg.value() or b""), self.escalation[version], None)
                if (
                    isinstance(x, dict)
                    and x["session_id"] == session_id
                    and x["action_id"] not in self.answered
                ):
                    found.append(x["action_id"])
        finally:
            c.close()
        return found

    def find(self, action_id: str, role: str, within_s: float = 30) -> dict[str, Any]:
        topic = f"escalations.{role}"
        c = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"person-{uuid.uuid4()}",
                "enable.auto.commit": False,
            }
        )
        deadline = time.monotonic() + within_s
        try:
            while True:
                md = c.list_topics(topic, timeout=10).topics.get(topic)
                if md is not None and md.error is None and md.partitions:
                    break
                assert time.monotonic() < deadline, f"no topic {topic}"
                time.sleep(0.2)
            c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
            while time.monotonic() < deadline:
                msg = c.poll(0.2)
                if msg is None or msg.error():
                    continue
                headers = dict(msg.headers() or [])
                version = int(headers.get("handoff.schema.version") or b"1")
                x = schemaless_reader(io.BytesIO(msg.value() or b""), self.escalation[version], None)
                if isinstance(x, dict) and x["action_id"] == action_id:
                    return x
        finally:
            c.close()
        raise AssertionError(f"no escalation of {action_id} on {topic} within {within_s}s")

    def answer(self, action_id: str, role: str, decision: str, **fields: Any) -> dict[str, Any]:
        x = self.find(action_id, role)
        d = {
            "escalation_id": x["escalation_id"],
            "action_id": action_id,
            "session_id": x["session_id"],
            "role": role,
            "decided_by": "ana",
            "decision": decision,
            "decided_at_ms": int(time.time() * 1000),
            **fields,
        }
        buf = io.BytesIO()
        schemaless_writer(buf, self.decision, d)
        self.producer.produce(
            "human.decisions",
            key=x["session_id"].encode(),
            value=buf.getvalue(),
            headers=[("handoff.schema.version", b"2")],
        )
        self.producer.flush(30)
        self.answered.add(action_id)
        return x


@pytest.fixture(scope="session")
def gateway_url() -> str:
    return env("HANDOFF_GATEWAY_URL")


@pytest.fixture(scope="session")
def key_a() -> str:
    return env("HANDOFF_KEY_A")


@pytest.fixture(scope="session")
def key_b() -> str:
    return env("HANDOFF_KEY_B")


@pytest.fixture(scope="session")
def bootstrap() -> str:
    return env("HANDOFF_BOOTSTRAP")


@pytest.fixture(scope="session")
def person(bootstrap: str) -> Person:
    return Person(bootstrap)


def refund(agent: str = "agent-a", amount: int = 40) -> dict[str, Any]:
    """A refund the default matrix hands to support (ask_first), with its tool call."""
    sid = f"sess-{uuid.uuid4()}"
    return {
        "session_id": sid,
        "agent_id": agent,
        "action_type": "refund.issue",
        "confidence": 0.95,
        "request": "My kettle broke after two days, please refund it.",
        "summary": f"Checked order o-1; proposes a refund of {amount} EUR.",
        "amount": amount,
        "currency": "EUR",
        "reversible": True,
        "affects_others": False,
        "tool_call": {"name": "issue_refund", "arguments": {"order_id": "o-1", "amount": amount}},
    }


def search(agent: str = "agent-a") -> dict[str, Any]:
    """An action the default matrix lets run alone."""
    return {
        "session_id": f"sess-{uuid.uuid4()}",
        "agent_id": agent,
        "action_type": "research.search",
        "confidence": 0.95,
        "request": "Find articles about battery recycling.",
        "summary": "Searched twelve sources.",
        "status": "completed",
        "reversible": True,
        "affects_others": False,
    }
