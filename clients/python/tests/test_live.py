"""The client against a live gateway, processor and broker: one call for an action the rules
let run alone and for one a person revises; the split form after a restart; asyncio; refusals;
and the Kafka client giving the same verdicts as the gateway."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from conftest import Person, refund, search

from handoff_client import AsyncClient, Client, InvalidAction, NotAllowed, ReceiptRefused, Verdict
from handoff_client.kafka import KafkaClient

REVISED = '{"amount":25,"order_id":"o-1"}'


def answer_later(person: Person, action: dict[str, object], delay_s: float = 0.5) -> threading.Thread:
    def run() -> None:
        time.sleep(delay_s)
        person.answer(str(action["action_id"]), "support", "revise", revised_arguments=REVISED)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_an_action_the_rules_let_run_alone_is_final_at_once(gateway_url: str, key_a: str) -> None:
    with Client(gateway_url, key_a) as handoff:
        told: list[Verdict] = []
        v = handoff.decide(search(), on_wait=told.append, timeout_s=30)
    assert (v.outcome, v.final, v.runs) == ("proceed", True, True)
    assert told == [], "nobody decides next: on_wait is not called"


def test_one_call_waits_for_the_person_and_returns_the_revised_arguments(
    gateway_url: str, key_a: str, person: Person
) -> None:
    action = refund()
    action["action_id"] = "act-py-sync"
    told: list[Verdict] = []
    answering = answer_later(person, action)
    with Client(gateway_url, key_a) as handoff:
        v = handoff.decide(action, on_wait=told.append, timeout_s=60)
    answering.join()
    assert [t.outcome for t in told] == ["await_human"]
    assert told[0].roles == ["support"]
    assert (v.outcome, v.decided_by, v.runs) == ("revised", "ana", True)
    assert v.arguments(action["tool_call"]["arguments"]) == {"amount": 25, "order_id": "o-1"}


async def test_the_asyncio_client_does_the_same_with_an_async_callback(
    gateway_url: str, key_a: str, person: Person
) -> None:
    action = refund()
    action["action_id"] = "act-py-async"
    told: list[str] = []

    async def waiting(first: Verdict) -> None:
        told.append(first.outcome)

    answering = answer_later(person, action)
    async with AsyncClient(gateway_url, key_a) as handoff:
        v = await handoff.decide(action, on_wait=waiting, timeout_s=60)
    answering.join()
    assert told == ["await_human"]
    assert v.revised_arguments == REVISED


async def test_many_waits_share_one_http2_connection(gateway_url: str, key_a: str) -> None:
    """50 waits at once over HTTP/2 (prior knowledge on plain http): each is held by the gateway
    (its gauge counts them) and answered, and an action the rules let run alone is decided."""
    versions: set[str] = set()

    async def seen(response: httpx.Response) -> None:
        versions.add(response.http_version)

    async with AsyncClient(gateway_url, key_a, http2=True) as handoff:
        handoff._http.event_hooks["response"].append(seen)
        waits = [asyncio.create_task(handoff.state(f"never-h2-{i}", wait_s=4)) for i in range(50)]
        held = 0.0
        deadline = time.monotonic() + 3
        while held < 50 and time.monotonic() < deadline:
            metrics = (await handoff._http.get("/metrics")).text
            held = float(
                next(
                    ln for ln in metrics.splitlines() if ln.startswith("handoff_gateway_waiting_requests ")
                ).split()[1]
            )
            await asyncio.sleep(0.05)
        assert held >= 50, f"the gateway holds {held} waits"
        assert await asyncio.gather(*waits) == [None] * 50
        v = await handoff.decide(search(), timeout_s=30)
    assert (v.outcome, v.final) == ("proceed", True)
    assert versions == {"HTTP/2"}


def test_a_receipt_runs_the_tool_once_with_the_approved_arguments(
    gateway_url: str, key_a: str, key_b: str, person: Person
) -> None:
    action = refund()
    action["action_id"] = "act-py-receipt"
    answering = answer_later(person, action)
    with Client(gateway_url, key_a) as handoff:
        v = handoff.decide(action, timeout_s=60)
        answering.join()
        assert v.receipt is not None, "a revision carries a receipt"
        revised = v.arguments(action["tool_call"]["arguments"])
        with pytest.raises(ReceiptRefused) as refused:
            handoff.redeem(v, {"amount": 40, "order_id": "o-1"}, tool_name="issue_refund")
        assert refused.value.reasons == ["arguments_differ"]
        with Client(gateway_url, key_b) as other, pytest.raises(NotAllowed):
            other.redeem(v, revised, tool_name="issue_refund")
        used = handoff.redeem(v, revised, tool_name="issue_refund")
        assert (used.action_id, used.outcome) == ("act-py-receipt", "revised")
        assert [a["sub"] for a in used.approvers] == ["ana"]
        with pytest.raises(ReceiptRefused) as again:
            handoff.redeem(v, revised, tool_name="issue_refund")
        assert again.value.reasons == ["already_used"]
        alone = handoff.decide(search(), timeout_s=30)
        with pytest.raises(ReceiptRefused) as none:
            handoff.redeem(alone, {})
        assert none.value.code == "no_receipt"


async def test_the_asyncio_client_redeems_a_receipt_once(
    gateway_url: str, key_a: str, person: Person
) -> None:
    action = refund()
    action["action_id"] = "act-py-receipt-async"
    answering = answer_later(person, action)
    async with AsyncClient(gateway_url, key_a) as handoff:
        v = await handoff.decide(action, timeout_s=60)
        answering.join()
        revised = v.arguments(action["tool_call"]["arguments"])
        used = await handoff.redeem(v, revised, tool_name="issue_refund")
        assert used.action_id == "act-py-receipt-async"
        with pytest.raises(ReceiptRefused):
            await handoff.redeem(v, revised, tool_name="issue_refund")


def test_a_durable_agent_submits_now_and_resumes_waiting_after_a_restart(
    gateway_url: str, key_a: str, person: Person
) -> None:
    action = refund()
    with Client(gateway_url, key_a) as before_restart:
        submitted = before_restart.submit(action)
        state = before_restart.state(submitted.action_id, wait_s=10, until="any")
    assert state is not None
    assert state.status == "waiting"
    person.answer(submitted.action_id, "support", "approve")
    with Client(gateway_url, key_a) as after_restart:
        v = after_restart.wait(submitted.action_id, timeout_s=60)
    assert (v.action_id, v.outcome) == (submitted.action_id, "approved")


def test_refusals_name_what_is_wrong(gateway_url: str, key_a: str) -> None:
    with Client(gateway_url, key_a) as handoff:
        bad = refund()
        bad["confidence"] = 1.5
        with pytest.raises(InvalidAction) as invalid:
            handoff.submit(bad)
        assert (invalid.value.field, invalid.value.value, invalid.value.reason) == (
            "confidence",
            "1.5",
            "invalid_field",
        )
        with pytest.raises(NotAllowed):
            handoff.submit(refund(agent="agent-b"))
    with Client(gateway_url, "not-a-key") as stranger, pytest.raises(NotAllowed):
        stranger.submit(search())


def test_the_kafka_client_gets_the_same_verdicts_as_the_gateway(
    gateway_url: str, key_a: str, bootstrap: str, person: Person
) -> None:
    results: dict[str, Verdict] = {}
    over_http, over_kafka = refund(), refund()
    over_http["action_id"], over_kafka["action_id"] = "act-same-http", "act-same-kafka"
    for action in (over_http, over_kafka):
        answering = answer_later(person, action)
        if action is over_http:
            with Client(gateway_url, key_a) as handoff:
                results["http"] = handoff.decide(action, timeout_s=60)
        else:
            with KafkaClient(bootstrap) as direct:
                told: list[Verdict] = []
                results["kafka"] = direct.decide(action, on_wait=told.append, timeout_s=60)
                assert [t.outcome for t in told] == ["await_human"]
        answering.join()
    http, kafka = results["http"], results["kafka"]
    same = (
        "level",
        "outcome",
        "final",
        "triggers",
        "roles",
        "rule_version",
        "decided_by",
        "revised_arguments",
    )
    assert {f: getattr(http, f) for f in same} == {f: getattr(kafka, f) for f in same}
    assert (http.action_id, kafka.action_id) == ("act-same-http", "act-same-kafka")
