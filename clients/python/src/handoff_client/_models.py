"""The records the client sends and receives: an action (a plain dict, as the gateway's OpenAPI
document describes it), a verdict, and where an action stands."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["execute", "execute_log", "ask_first", "hard_stop"]
Outcome = Literal[
    "proceed",
    "proceed_and_log",
    "await_human",
    "stopped",
    "approved",
    "rejected",
    "revised",
    "redirected",
    "timed_out_blocked",
    "timed_out_proceed",
]

#: The final outcomes that let the action run.
RUNS: frozenset[str] = frozenset({"proceed", "proceed_and_log", "approved", "revised", "timed_out_proceed"})


@dataclass(frozen=True)
class Verdict:
    """handoff's answer about one action: the first (the rules' level) or a later one (a person,
    or a deadline). Field names are those of the Verdict schema."""

    action_id: str
    session_id: str
    agent_id: str
    action_type: str
    level: Level
    outcome: Outcome
    final: bool
    rule_version: str
    decided_at_ms: int
    triggers: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    escalation_ids: list[str] = field(default_factory=list)
    decided_by: str | None = None
    comment: str | None = None
    revised_output: str | None = None
    redirect_role: str | None = None
    drill: bool = False
    chosen_option: str | None = None
    revised_arguments: str | None = None
    receipt: str | None = None
    """The approval receipt (a compact JWS) on a final verdict that lets the action run after
    people approved it: check it against the gateway's `/.well-known/jwks.json` before the tool
    runs (docs/agents/receipts.md)."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        """From the JSON (or decoded Avro) form; fields a newer handoff adds are ignored."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def runs(self) -> bool:
        """True when the action may run now (only meaningful on a final verdict)."""
        return self.final and self.outcome in RUNS

    def arguments(self, proposed: Mapping[str, Any] | str | None = None) -> dict[str, Any] | None:
        """The arguments to call the tool with: a person's revision when there is one, else
        `proposed` (the action's own, as a dict or JSON text)."""
        if self.revised_arguments is not None:
            value: dict[str, Any] = json.loads(self.revised_arguments)
            return value
        if proposed is None:
            return None
        if isinstance(proposed, str):
            loaded: dict[str, Any] = json.loads(proposed)
            return loaded
        return dict(proposed)


Status = Literal["pending", "waiting", "final"]


@dataclass(frozen=True)
class ActionState:
    """What is known of one action: its first and final verdicts, when known."""

    action_id: str
    status: Status
    first: Verdict | None
    last: Verdict | None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionState:
        def verdict(v: Any) -> Verdict | None:
            return Verdict.from_dict(v) if isinstance(v, Mapping) else None

        return cls(
            action_id=str(d["action_id"]),
            status=d["status"],
            first=verdict(d.get("first")),
            last=verdict(d.get("final")),
        )


@dataclass(frozen=True)
class Submitted:
    """An action the broker acknowledged."""

    action_id: str
    session_id: str


def canonical_json(value: Any) -> str:
    """JSON text in the canonical form handoff keeps tool arguments in (RFC 8785 for the values
    agents send: sorted keys, no spaces, shortest number forms)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def prepare(action: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `action` ready to send: an `action_id` and `timestamp_ms` when missing, and
    `tool_call.arguments` as canonical JSON text when given as a dict."""
    out = dict(action)
    out.setdefault("action_id", f"act-{uuid.uuid4()}")
    out.setdefault("timestamp_ms", int(time.time() * 1000))
    call = out.get("tool_call")
    if isinstance(call, Mapping):
        call = dict(call)
        args = call.get("arguments")
        if not isinstance(args, str):
            call["arguments"] = canonical_json(args if args is not None else {})
        out["tool_call"] = call
    return out


@dataclass(frozen=True)
class Redeemed:
    """A receipt the gateway accepted and recorded as used: run the tool now, with the
    arguments sent."""

    action_id: str
    receipt_id: str
    outcome: str
    used_at_ms: int
    tool_name: str | None = None
    approvers: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Redeemed:
        """From the gateway's answer; fields a newer handoff adds are ignored."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})
