"""What the gateway refuses, as exceptions whose class says what to do about it."""

from __future__ import annotations

from typing import Any


class HandoffError(Exception):
    """Any refusal or failure; `code` is the gateway's stable name of the problem."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class InvalidAction(HandoffError):
    """The action is not one handoff would decide (the processor would dead-letter it): fix the
    named `field`; sending it again will not help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
        value: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.field = field
        self.value = value
        self.reason = reason


class NotAllowed(HandoffError):
    """The key is unknown (401) or may not act as this agent (403)."""


class NotFound(HandoffError):
    """No verdict for this action: not decided yet, another agent's, or older than the
    gateway's window."""


class Unavailable(HandoffError):
    """The broker did not acknowledge, or the gateway is busy: worth trying again."""


class Timeout(HandoffError):
    """No final verdict within the time the caller gave."""


class ReceiptRefused(HandoffError):
    """The approval receipt may not run the tool: `reasons` names each problem (`expired`,
    `arguments_differ`, `other_tool`, `unknown_key`, `bad_receipt`, `already_used`, …). Do not
    run the tool."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        reasons: list[str] | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.reasons = reasons or []


def from_response(status: int, body: Any) -> HandoffError:
    """The exception for a refusal of the gateway (`body` its parsed JSON, or text)."""
    err = body.get("error", {}) if isinstance(body, dict) else {}
    message = str(err.get("message") or body or f"HTTP {status}")
    code = err.get("code")
    if code in ("receipt_refused", "receipt_used", "arguments_required", "tool_required"):
        return ReceiptRefused(message, status=status, code=code, reasons=list(err.get("reasons") or [code]))
    if status in (413, 422) or code == "invalid_action":
        return InvalidAction(
            message,
            status=status,
            code=code,
            field=err.get("field"),
            value=err.get("value"),
            reason=err.get("reason"),
        )
    if status in (401, 403):
        return NotAllowed(message, status=status, code=code)
    if status == 404:
        return NotFound(message, status=status, code=code)
    if status in (408, 429, 503) or status >= 500:
        return Unavailable(message, status=status, code=code)
    return HandoffError(message, status=status, code=code)
