"""handoff's Python client: ask handoff whether an AI agent's action may run, and wait for the
person who decides.

    from handoff_client import Client

    with Client("http://127.0.0.1:9880", key) as handoff:
        verdict = handoff.decide(action, on_wait=lambda first: print("waiting for", first.roles))
        if verdict.runs:
            args = verdict.arguments(action["tool_call"]["arguments"])
            if verdict.receipt:  # approved by people: check it and use it, once
                handoff.redeem(verdict, args, tool_name="issue_refund")
            issue_refund(**args)

`AsyncClient` is the asyncio twin; `handoff_client.kafka.KafkaClient` speaks Kafka directly.
"""

from ._client import AsyncClient, Client
from ._errors import (
    HandoffError,
    InvalidAction,
    NotAllowed,
    NotFound,
    ReceiptRefused,
    Timeout,
    Unavailable,
)
from ._models import RUNS, ActionState, Redeemed, Submitted, Verdict, canonical_json, prepare

__all__ = [
    "RUNS",
    "ActionState",
    "AsyncClient",
    "Client",
    "HandoffError",
    "InvalidAction",
    "NotAllowed",
    "NotFound",
    "ReceiptRefused",
    "Redeemed",
    "Submitted",
    "Timeout",
    "Unavailable",
    "Verdict",
    "canonical_json",
    "prepare",
]
