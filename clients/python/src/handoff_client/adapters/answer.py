"""A final verdict as the one answer every framework's pause takes some form of: run the call
(as proposed, or with a person's arguments), do not run it (with the reason), or do not run it
and hand the model a person's words instead. The lossy cases are named in
docs/agents/frameworks.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from .._models import Verdict

Kind = Literal["approve", "edit", "reject", "respond"]


@dataclass(frozen=True)
class Answer:
    """`edit` carries `arguments`; `reject` and `respond` carry a `message` for the model."""

    kind: Kind
    arguments: dict[str, Any] | None = None
    message: str | None = None


def answer(v: Verdict) -> Answer:
    """The answer a final verdict gives a paused tool call."""
    if not v.final:
        raise ValueError(f"verdict {v.outcome} of {v.action_id} is not final")
    if v.runs and v.revised_arguments is not None:
        revised: dict[str, Any] = json.loads(v.revised_arguments)
        return Answer("edit", arguments=revised)
    if v.runs and v.revised_output is not None:
        # A person rewrote what the agent says, not the call: the model gets their words.
        return Answer("respond", message=v.revised_output)
    if v.runs:
        return Answer("approve")
    return Answer("reject", message=_refusal(v))


def _refusal(v: Verdict) -> str:
    who = v.decided_by or "handoff"
    if v.outcome == "timed_out_blocked":
        why = f"nobody answered in time ({', '.join(v.roles) or 'no role'}); the rules block it"
    elif v.outcome == "rejected":
        why = f"rejected by {who}"
    else:
        why = f"not allowed ({v.outcome})"
    return f"{why}: {v.comment}" if v.comment else why
