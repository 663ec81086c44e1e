"""The gateway's clients: `Client` (blocking) and `AsyncClient` (asyncio), the same calls.

One call does it all — `decide(action)` submits the action and returns its final verdict (at once
when the rules let it run alone, after the person or the deadline otherwise), calling `on_wait`
with the first verdict while a person decides. Durable agents split it: `submit(action)` now,
`wait(action_id)` later — after a restart too.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ._errors import HandoffError, NotFound, ReceiptRefused, Timeout, from_response
from ._models import ActionState, Redeemed, Submitted, Verdict, prepare

#: Called once with the first verdict when a person (or a deadline) decides next.
OnWait = Callable[[Verdict], Any]
AsyncOnWait = Callable[[Verdict], Awaitable[Any] | Any]

#: How long one long poll waits on the gateway (its max_wait shortens longer ones).
POLL_S = 30.0


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": "handoff-client-python/0.1.0"}


def _http1(base_url: str, http2: bool) -> bool:
    """Whether HTTP/1.1 may be spoken: always without `http2`; with it (needs the `http2`
    extra) only over https, where the version is negotiated — over plain http HTTP/2 is spoken
    by prior knowledge (the gateway speaks both on one port)."""
    return not http2 or base_url.startswith("https:")


def _verdict_path(action_id: str) -> str:
    return f"/v1/actions/{quote(action_id, safe='')}/verdict"


def _check(response: httpx.Response) -> Any:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if response.status_code >= 400:
        raise from_response(response.status_code, body)
    return body


def _redemption(
    verdict: Verdict, arguments: Mapping[str, Any] | str | None, tool_name: str | None
) -> dict[str, Any]:
    """The body of `POST /v1/receipts/redeem` for `verdict`'s receipt."""
    if verdict.receipt is None:
        raise ReceiptRefused(
            f"the verdict for {verdict.action_id} ({verdict.outcome}) carries no receipt",
            code="no_receipt",
            reasons=["no_receipt"],
        )
    body: dict[str, Any] = {"receipt": verdict.receipt}
    if arguments is not None:
        body["arguments"] = arguments if isinstance(arguments, str) else dict(arguments)
    if tool_name is not None:
        body["tool_name"] = tool_name
    return body


def _submitted(body: Any) -> Submitted:
    return Submitted(action_id=str(body["action_id"]), session_id=str(body["session_id"]))


class _Wait:
    """The state of one wait: the deadline and whether the caller heard of the first verdict."""

    def __init__(self, action_id: str, timeout_s: float | None) -> None:
        self.action_id = action_id
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.told = False

    def poll_s(self) -> float:
        if self.deadline is None:
            return POLL_S
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Timeout(f"no final verdict for {self.action_id} in time", code="timeout")
        return min(POLL_S, max(left, 0.001))

    def tell(self, state: ActionState | None) -> Verdict | None:
        """The first verdict to report to `on_wait`, once."""
        if state is None or self.told or state.first is None or state.first.final:
            return None
        self.told = True
        return state.first


class Client:
    """A blocking client of `handoff gateway`.

    >>> client = Client("http://127.0.0.1:9880", key)            # doctest: +SKIP
    >>> verdict = client.decide({"agent_id": "support-bot", ...})  # doctest: +SKIP

    `http2=True` (the `http2` extra) waits for many actions over one connection: a process
    holding thousands of waits costs the gateway about 3 KB each instead of 23 KB.
    """

    def __init__(
        self, base_url: str, key: str, *, http: httpx.Client | None = None, http2: bool = False
    ) -> None:
        self._http = http or httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=_headers(key),
            timeout=POLL_S + 15,
            http1=_http1(base_url, http2),
            http2=http2,
        )
        self._owned = http is None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def submit(self, action: Mapping[str, Any]) -> Submitted:
        """Sends the action; returns once the broker acknowledged it."""
        return _submitted(_check(self._http.post("/v1/actions", json=prepare(action))))

    def state(self, action_id: str, *, wait_s: float = 0, until: str = "final") -> ActionState | None:
        """What is known of the action (after waiting up to `wait_s` for `until`: `final` or
        `any`); `None` when the gateway knows no verdict of it."""
        params = {"wait": f"{int(wait_s * 1000)}ms", "until": until}
        try:
            return ActionState.from_dict(_check(self._http.get(_verdict_path(action_id), params=params)))
        except NotFound:
            return None

    def wait(
        self, action_id: str, *, on_wait: OnWait | None = None, timeout_s: float | None = None
    ) -> Verdict:
        """The action's final verdict, waiting as long as it takes (or `timeout_s`)."""
        w = _Wait(action_id, timeout_s)
        until = "any" if on_wait else "final"
        while True:
            state = self.state(action_id, wait_s=w.poll_s(), until=until)
            first = w.tell(state)
            if first is not None and on_wait is not None:
                on_wait(first)
            if state is not None and state.last is not None:
                return state.last
            if state is not None and state.first is not None:
                until = "final"

    def decide(
        self, action: Mapping[str, Any], *, on_wait: OnWait | None = None, timeout_s: float | None = None
    ) -> Verdict:
        """Submits the action and returns its final verdict."""
        return self.wait(self.submit(action).action_id, on_wait=on_wait, timeout_s=timeout_s)

    def redeem(
        self,
        verdict: Verdict,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        tool_name: str | None = None,
    ) -> Redeemed:
        """Right before the tool runs: the gateway checks `verdict`'s receipt (signature,
        expiry, this key's agent, `tool_name`, exactly these `arguments`) and records its only
        use. Raises `ReceiptRefused` naming each reason — then do not run the tool."""
        body = _redemption(verdict, arguments, tool_name)
        return Redeemed.from_dict(_check(self._http.post("/v1/receipts/redeem", json=body)))


class AsyncClient:
    """The asyncio twin of `Client`."""

    def __init__(
        self, base_url: str, key: str, *, http: httpx.AsyncClient | None = None, http2: bool = False
    ) -> None:
        self._http = http or httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=_headers(key),
            timeout=POLL_S + 15,
            http1=_http1(base_url, http2),
            http2=http2,
        )
        self._owned = http is None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def submit(self, action: Mapping[str, Any]) -> Submitted:
        """Sends the action; returns once the broker acknowledged it."""
        return _submitted(_check(await self._http.post("/v1/actions", json=prepare(action))))

    async def state(self, action_id: str, *, wait_s: float = 0, until: str = "final") -> ActionState | None:
        """See `Client.state`."""
        params = {"wait": f"{int(wait_s * 1000)}ms", "until": until}
        try:
            response = await self._http.get(_verdict_path(action_id), params=params)
            return ActionState.from_dict(_check(response))
        except NotFound:
            return None

    async def wait(
        self, action_id: str, *, on_wait: AsyncOnWait | None = None, timeout_s: float | None = None
    ) -> Verdict:
        """See `Client.wait`; `on_wait` may be a coroutine function."""
        w = _Wait(action_id, timeout_s)
        until = "any" if on_wait else "final"
        while True:
            state = await self.state(action_id, wait_s=w.poll_s(), until=until)
            first = w.tell(state)
            if first is not None and on_wait is not None:
                told = on_wait(first)
                if inspect.isawaitable(told):
                    await told
            if state is not None and state.last is not None:
                return state.last
            if state is not None and state.first is not None:
                until = "final"

    async def decide(
        self,
        action: Mapping[str, Any],
        *,
        on_wait: AsyncOnWait | None = None,
        timeout_s: float | None = None,
    ) -> Verdict:
        """Submits the action and returns its final verdict."""
        submitted = await self.submit(action)
        return await self.wait(submitted.action_id, on_wait=on_wait, timeout_s=timeout_s)

    async def redeem(
        self,
        verdict: Verdict,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        tool_name: str | None = None,
    ) -> Redeemed:
        """Right before the tool runs: the gateway checks `verdict`'s receipt and records its
        only use (see `Client.redeem`)."""
        body = _redemption(verdict, arguments, tool_name)
        return Redeemed.from_dict(_check(await self._http.post("/v1/receipts/redeem", json=body)))


__all__ = ["AsyncClient", "Client", "HandoffError"]
