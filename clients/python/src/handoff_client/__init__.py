"""handoff's Python client: ask handoff whether an AI agent's action may run, and wait for the
person who decides.

    from handoff_client import Client

    with Client("http://127.0.0.1:9880", key) as handoff:
        verdict = handoff.decide(action, on_wait=lambda first: print("waiting for", first.roles))
        if verdict.runs:
            issue_refund(**verdict.arguments(action["tool_call"]["arguments"]))

`AsyncClient` is the asyncio twin; `handoff_client.kafka.KafkaClient` speaks Kafka directly.
"""

from ._client import AsyncClient, Client
from ._errors import HandoffError, InvalidAction, NotAllowed, NotFound, Timeout, Unavailable
from ._models import RUNS, ActionState, Submitted, Verdict, canonical_json, prepare

__all__ = [
    "RUNS",
    "ActionState",
    "AsyncClient",
    "Client",
    "HandoffError",
    "InvalidAction",
    "NotAllowed",
    "NotFound",
    "Submitted",
    "Timeout",
    "Unavailable",
    "Verdict",
    "canonical_json",
    "prepare",
]
