"""A final verdict as the one answer every framework's pause takes some form of: run the call
(as proposed, or with a person's arguments), do not run it (with the reason), or do not run it
and hand the model a person's words instead. The lossy cases are named in
docs/agents/frameworks.md."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._client import AsyncClient, Client
from .._errors import ReceiptRefused
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


def _used(v: Verdict, a: Answer, proposed: Mapping[str, Any] | str) -> Mapping[str, Any] | str | None:
    """The arguments a receipt must be redeemed for before the call runs: none when the call
    does not run, or when the verdict carries no receipt (the rules let it run alone)."""
    if v.receipt is None or a.kind not in ("approve", "edit"):
        return None
    return a.arguments if a.kind == "edit" and a.arguments is not None else proposed


def redeemed(client: Client, v: Verdict, a: Answer, proposed: Mapping[str, Any] | str, tool: str) -> Answer:
    """`a`, once the verdict's receipt was redeemed for the arguments about to run (its one
    use); a `reject` naming why when the gateway refuses it."""
    args = _used(v, a, proposed)
    if args is None:
        return a
    try:
        client.redeem(v, args, tool_name=tool)
    except ReceiptRefused as e:
        return Answer("reject", message=f"the approval receipt was refused ({', '.join(e.reasons)}): {e}")
    return a


async def aredeemed(
    client: AsyncClient, v: Verdict, a: Answer, proposed: Mapping[str, Any] | str, tool: str
) -> Answer:
    """`redeemed` for the asyncio client."""
    args = _used(v, a, proposed)
    if args is None:
        return a
    try:
        await client.redeem(v, args, tool_name=tool)
    except ReceiptRefused as e:
        return Answer("reject", message=f"the approval receipt was refused ({', '.join(e.reasons)}): {e}")
    return a


def _refusal(v: Verdict) -> str:
    who = v.decided_by or "handoff"
    if v.outcome == "timed_out_blocked":
        why = f"nobody answered in time ({', '.join(v.roles) or 'no role'}); the rules block it"
    elif v.outcome == "rejected":
        why = f"rejected by {who}"
    else:
        why = f"not allowed ({v.outcome})"
    return f"{why}: {v.comment}" if v.comment else why
