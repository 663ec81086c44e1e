"""Speaking Kafka directly, for agents that sit next to the cluster: the same calls as `Client`.

Actions go to `agent.actions` as plain Avro datums of the current `AgentAction` schema (the
header `handoff.schema.version` names it), keyed by session; verdicts are read back from
`agent.verdicts` by assignment (no consumer group), each by the schema version its header names.
Unlike the gateway, Kafka cannot refuse an invalid action at once: the processor dead-letters
it and no verdict comes (`wait` ends with `Timeout`). Needs the `kafka` extra
(`pip install handoff-client[kafka]`).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Mapping
from importlib import resources
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from ._client import OnWait
from ._errors import HandoffError, Timeout, Unavailable
from ._models import ActionState, Submitted, Verdict, prepare

VERSION_HEADER = "handoff.schema.version"
#: The AgentAction schema version this client writes.
ACTION_VERSION = 2
#: How far before a submission its verdicts are looked for (clocks of client and broker differ).
SLACK_MS = 10_000


def plain(schema: Any) -> Any:
    """The schema without logical types: times stay milliseconds, as in the JSON form."""
    if isinstance(schema, dict):
        return {k: plain(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [plain(s) for s in schema]
    return schema


def _schema(name: str) -> Any:
    text = resources.files("handoff_client").joinpath("schemas").joinpath(name).read_text(encoding="utf-8")
    return parse_schema(plain(json.loads(text)))


class KafkaClient:
    """A client that writes actions to Kafka and reads verdicts from it.

    `config` holds librdkafka properties for both sides (security settings, for example).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        config: Mapping[str, str] | None = None,
        actions_topic: str = "agent.actions",
        verdicts_topic: str = "agent.verdicts",
    ) -> None:
        self._config = {"bootstrap.servers": bootstrap_servers, **(config or {})}
        self._producer = Producer({**self._config, "enable.idempotence": True, "linger.ms": 5})
        self._actions = actions_topic
        self._verdicts = verdicts_topic
        self._action_schema = _schema("agent_action.avsc")
        self._verdict_schemas = {
            1: _schema("verdict.v1.avsc"),
            2: _schema("verdict.v2.avsc"),
            3: _schema("verdict.avsc"),
        }
        self._submitted_at: dict[str, int] = {}

    def __enter__(self) -> KafkaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._producer.flush(10)

    def submit(self, action: Mapping[str, Any]) -> Submitted:
        """Writes the action; returns once the broker acknowledged it."""
        a = prepare(action)
        # The JSON form's default; the Avro schema gives it on the enum, which writers do not use.
        a.setdefault("status", "proposed")
        buf = io.BytesIO()
        try:
            schemaless_writer(buf, self._action_schema, a)
        except (ValueError, TypeError, KeyError) as e:
            raise HandoffError(f"not an AgentAction: {e}", code="invalid_action") from e
        result: list[Exception | None] = []

        def delivered(err: Any, _msg: Any) -> None:
            result.append(KafkaException(err) if err is not None else None)

        self._submitted_at[a["action_id"]] = int(time.time() * 1000)
        self._producer.produce(
            self._actions,
            key=str(a["session_id"]).encode(),
            value=buf.getvalue(),
            headers=[(VERSION_HEADER, str(ACTION_VERSION).encode())],
            on_delivery=delivered,
        )
        self._producer.flush(30)
        if not result or result[0] is not None:
            raise Unavailable(f"not delivered to {self._actions}: {result[0] if result else 'timeout'}")
        return Submitted(action_id=str(a["action_id"]), session_id=str(a["session_id"]))

    def wait(
        self,
        action_id: str,
        *,
        on_wait: OnWait | None = None,
        timeout_s: float | None = None,
        since_ms: int | None = None,
    ) -> Verdict:
        """The action's final verdict, read from the verdicts topic from `since_ms` (by default
        shortly before this client submitted it, or an hour ago)."""
        start = since_ms
        if start is None:
            known = self._submitted_at.get(action_id)
            start = known - SLACK_MS if known else int(time.time() * 1000) - 3_600_000
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        consumer = self._reader(start)
        told = False
        try:
            while deadline is None or time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is None or msg.error():
                    continue
                v = self._decode(msg)
                if v is None or v.action_id != action_id or v.drill:
                    continue
                if v.final:
                    return v
                if not told and on_wait is not None:
                    told = True
                    on_wait(v)
        finally:
            consumer.close()
        raise Timeout(f"no final verdict for {action_id} in time", code="timeout")

    def decide(
        self, action: Mapping[str, Any], *, on_wait: OnWait | None = None, timeout_s: float | None = None
    ) -> Verdict:
        """Submits the action and returns its final verdict."""
        return self.wait(self.submit(action).action_id, on_wait=on_wait, timeout_s=timeout_s)

    def state(self, action_id: str, *, since_ms: int, timeout_s: float = 5) -> ActionState | None:
        """What the verdicts topic holds of the action from `since_ms`, read for `timeout_s`."""
        consumer = self._reader(since_ms)
        first: Verdict | None = None
        last: Verdict | None = None
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and last is None:
                msg = consumer.poll(0.2)
                if msg is None or msg.error():
                    continue
                v = self._decode(msg)
                if v is None or v.action_id != action_id:
                    continue
                if v.outcome in ("proceed", "proceed_and_log", "await_human", "stopped"):
                    first = first or v
                if v.final:
                    last = v
        finally:
            consumer.close()
        if first is None and last is None:
            return None
        return ActionState(action_id, "final" if last else "waiting", first, last)

    def _reader(self, since_ms: int) -> Any:
        c = Consumer(
            {
                **self._config,
                "group.id": f"handoff-client-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        md = c.list_topics(self._verdicts, timeout=10)
        topic = md.topics.get(self._verdicts)
        if topic is None or topic.error is not None:
            c.close()
            raise Unavailable(f"no topic {self._verdicts}")
        wanted = [TopicPartition(self._verdicts, p, since_ms) for p in topic.partitions]
        c.assign(c.offsets_for_times(wanted, timeout=10))
        return c

    def _decode(self, msg: Any) -> Verdict | None:
        version = 1
        for k, v in msg.headers() or []:
            if k == VERSION_HEADER and v is not None:
                version = int(v.decode())
        schema = self._verdict_schemas.get(version)
        if schema is None:
            return None
        record = schemaless_reader(io.BytesIO(msg.value()), schema, schema)
        return Verdict.from_dict(record) if isinstance(record, dict) else None
