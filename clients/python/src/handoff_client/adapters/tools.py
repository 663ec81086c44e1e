"""What a tool's calls are to handoff: the action type, whether they can be undone and reach
others (fail closed by default: irreversible, affecting others), and the money they move."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._models import canonical_json

Args = Mapping[str, Any]


@dataclass(frozen=True)
class Tool:
    """How handoff sees the calls of one tool.

    `amount` and `currency` read the money a call moves from its arguments (e.g.
    `amount=lambda a: a["amount"]`); `summary` says in words what a call does.
    """

    name: str
    action_type: str
    reversible: bool = False
    affects_others: bool = True
    amount: Callable[[Args], float | None] | None = None
    currency: str | None = None
    summary: Callable[[Args], str] | None = None

    def action(
        self,
        args: Args | str,
        *,
        agent_id: str,
        session_id: str,
        request: str,
        framework: str,
        call_id: str | None = None,
        run_id: str | None = None,
        arguments_schema: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The action a call of this tool with `args` is (an `AgentAction` as a dict)."""
        parsed: dict[str, Any] = json.loads(args) if isinstance(args, str) else dict(args)
        text = canonical_json(parsed)
        summary = self.summary(parsed) if self.summary else f"calls {self.name} with {text}"
        action: dict[str, Any] = {
            "session_id": session_id,
            "agent_id": agent_id,
            "action_type": self.action_type,
            "request": request,
            "summary": summary,
            "status": "proposed",
            "reversible": self.reversible,
            "affects_others": self.affects_others,
            "tool_call": {
                "name": self.name,
                "arguments": text,
                "call_id": call_id,
                "framework": framework,
                "run_id": run_id,
                "arguments_schema": canonical_json(arguments_schema) if arguments_schema else None,
            },
        }
        amount = self.amount(parsed) if self.amount else None
        if amount is not None:
            action["amount"] = float(amount)
            if self.currency:
                action["currency"] = self.currency
        return action
