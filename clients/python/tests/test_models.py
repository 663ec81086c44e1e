"""The client's pieces that need no server."""

from __future__ import annotations

import json

import pytest

from handoff_client import InvalidAction, NotAllowed, NotFound, Unavailable, Verdict, canonical_json, prepare
from handoff_client._errors import from_response


def verdict(**over: object) -> Verdict:
    base = {
        "action_id": "a",
        "session_id": "s",
        "agent_id": "g",
        "action_type": "refund.issue",
        "level": "ask_first",
        "outcome": "revised",
        "final": True,
        "rule_version": "rv",
        "decided_at_ms": 1,
        "a_field_of_a_newer_handoff": 7,
    }
    return Verdict.from_dict({**base, **over})


def test_prepare_fills_ids_and_writes_arguments_canonically() -> None:
    a = prepare({"session_id": "s", "tool_call": {"name": "t", "arguments": {"b": 1, "a": [True, None]}}})
    assert a["action_id"].startswith("act-")
    assert a["timestamp_ms"] > 1_700_000_000_000
    assert a["tool_call"]["arguments"] == '{"a":[true,null],"b":1}'
    kept = prepare({"action_id": "x", "timestamp_ms": 5, "tool_call": {"name": "t", "arguments": '{"z": 1}'}})
    assert (kept["action_id"], kept["timestamp_ms"], kept["tool_call"]["arguments"]) == ("x", 5, '{"z": 1}')
    assert canonical_json({"é": 1.5}) == '{"é":1.5}'


def test_a_verdict_ignores_unknown_fields_and_says_whether_and_how_to_run() -> None:
    v = verdict(revised_arguments='{"amount":25}')
    assert v.runs
    assert v.arguments({"amount": 40}) == {"amount": 25}
    plain = verdict(outcome="approved")
    assert plain.arguments('{"amount": 40}') == {"amount": 40}
    assert not verdict(outcome="rejected").runs
    assert not verdict(outcome="await_human", final=False).runs
    assert not verdict(outcome="timed_out_blocked").runs


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            422,
            {"error": {"code": "invalid_action", "message": "m", "field": "confidence", "value": "1.5"}},
            InvalidAction,
        ),
        (413, {"error": {"code": "too_large", "message": "m"}}, InvalidAction),
        (401, {"error": {"code": "unauthorized", "message": "m"}}, NotAllowed),
        (403, {"error": {"code": "forbidden_agent", "message": "m"}}, NotAllowed),
        (404, {"error": {"code": "not_found", "message": "m"}}, NotFound),
        (503, {"error": {"code": "not_delivered", "message": "m"}}, Unavailable),
        (502, "Bad Gateway", Unavailable),
    ],
)
def test_refusals_map_to_exceptions_by_what_to_do(status: int, body: object, kind: type) -> None:
    e = from_response(status, body)
    assert isinstance(e, kind)
    assert e.status == status
    if isinstance(e, InvalidAction) and e.field:
        assert (e.field, e.value) == ("confidence", "1.5")


def test_the_packaged_schemas_are_handoffs() -> None:
    from importlib import resources
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3] / "schemas"
    for name, source in [
        ("agent_action.avsc", repo / "agent_action.avsc"),
        ("verdict.avsc", repo / "verdict.avsc"),
        ("verdict.v1.avsc", repo / "history/verdict.v1.avsc"),
        ("verdict.v2.avsc", repo / "history/verdict.v2.avsc"),
    ]:
        packaged = resources.files("handoff_client").joinpath("schemas").joinpath(name).read_text()
        assert json.loads(packaged) == json.loads(source.read_text()), name
