"""schemathesis hooks for tests/gateway_openapi.rs: the failures that are not a mismatch
between the gateway and its OpenAPI document. Every other failure stands.

- An action's `tool_call.arguments` (and `arguments_schema`) is JSON as text: the document says
  so (`contentMediaType`, `contentSchema`), but JSON Schema cannot make a generator write valid
  JSON inside a string, so a schema-valid request refused for exactly that (422 naming one of
  those two fields) is dropped.
- A schema-violating body larger than `gateway.max_body_bytes` is refused with 413 before it is
  read: refused, as the check wants, by its size rather than by its content.
- A receipt is a signature over claims by a key of the gateway's: no generator makes one, so a
  schema-valid redemption refused for its receipt, tool or arguments (422 `receipt_refused`,
  `tool_required`, `arguments_required`, all documented) is not a "valid data rejected" failure
  (ST202); every other check of that answer stands. tests/gateway_receipts.rs redeems real ones.
"""

import schemathesis

JSON_TEXT_FIELDS = {"tool_call.arguments", "tool_call.arguments_schema"}
RECEIPT_CODES = {"receipt_refused", "tool_required", "arguments_required"}


def _error(response, key):
    try:
        return response.json()["error"].get(key)
    except (ValueError, KeyError, AttributeError, TypeError):
        return None


def _field(response):
    return _error(response, "field")


@schemathesis.hook
def filter_failure(context, failure, case, response):  # noqa: ARG001
    if response.status_code == 422 and _field(response) in JSON_TEXT_FIELDS:
        return False
    receipt = _error(response, "code") in RECEIPT_CODES
    if response.status_code == 422 and receipt and getattr(failure, "code", "") == "ST202":
        return False
    return not (response.status_code == 413 and getattr(failure, "code", "") == "ST201")
