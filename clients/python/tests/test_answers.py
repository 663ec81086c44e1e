"""How a final verdict becomes each framework's answer, without a server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from handoff_client import Verdict
from handoff_client.adapters import Answer, answer
from handoff_client.adapters.langgraph import Reviews


def final(outcome: str, **over: Any) -> Verdict:
    return Verdict.from_dict(
        {
            "action_id": "a",
            "session_id": "s",
            "agent_id": "g",
            "action_type": "refund.issue",
            "level": "ask_first",
            "outcome": outcome,
            "final": True,
            "rule_version": "rv",
            "decided_at_ms": 1,
            "decided_by": "ana",
            **over,
        }
    )


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (final("approved"), Answer("approve")),
        (final("approved", chosen_option="Voucher"), Answer("approve")),
        (final("revised", revised_arguments='{"amount":25}'), Answer("edit", arguments={"amount": 25})),
        (
            final("revised", revised_output="We refund 25 EUR."),
            Answer("respond", message="We refund 25 EUR."),
        ),
        (final("rejected", comment="no"), Answer("reject", message="rejected by ana: no")),
        (final("timed_out_proceed"), Answer("approve")),
        (final("proceed"), Answer("approve")),
    ],
)
def test_each_final_verdict_is_one_answer(verdict: Verdict, expected: Answer) -> None:
    assert answer(verdict) == expected


def test_a_timeout_that_blocks_names_who_did_not_answer() -> None:
    a = answer(final("timed_out_blocked", decided_by=None, roles=["support"]))
    assert a.kind == "reject"
    assert a.message is not None
    assert "nobody answered in time (support)" in a.message


def test_a_verdict_that_is_not_final_is_no_answer() -> None:
    with pytest.raises(ValueError, match="not final"):
        answer(final("await_human", final=False))


@dataclass
class FakeInterrupt:
    id: str
    value: dict[str, Any]


class Decided:
    """A stand-in for the client: every action is already decided as `verdict` says."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.submitted: list[dict[str, Any]] = []

    def state(self, action_id: str, **_: Any) -> None:
        return None

    def submit(self, action: dict[str, Any]) -> None:
        self.submitted.append(action)

    def wait(self, action_id: str, **_: Any) -> Verdict:
        return self.verdict


def test_the_older_arguments_field_name_and_a_disallowed_edit_are_answered() -> None:
    client = Decided(final("revised", revised_arguments='{"amount":25}'))
    reviews = Reviews(client, agent_id="g", session_id="t")  # type: ignore[arg-type]
    older = FakeInterrupt(
        "i-1",
        {
            "action_requests": [{"name": "issue_refund", "arguments": {"amount": 40}}],
            "review_configs": [{"action_name": "issue_refund", "allowed_decisions": ["approve", "reject"]}],
        },
    )
    command = reviews.resume([older], [("issue_refund", "call-7")])
    assert command.resume == {
        "decisions": [
            {"type": "reject", "message": "a person allowed it only with other arguments: {'amount': 25}"}
        ]
    }
    sent = client.submitted[0]
    assert sent["tool_call"]["arguments"] == '{"amount":40}'
    assert sent["action_id"] == "langgraph-t-call-7"
