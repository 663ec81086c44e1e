// The TypeScript client: its pieces without a server, then against a live gateway, processor and
// broker (`cargo test --test clients` starts them and names them in the environment; a person's
// answer is written to human.decisions by clients/python/tests/person.py, as the inbox writes it).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";

import {
  type Action,
  argumentsOf,
  canonicalJson,
  Client,
  fromResponse,
  InvalidAction,
  NotAllowed,
  NotFound,
  prepare,
  ReceiptRefused,
  runs,
  Unavailable,
  type Verdict,
} from "../src/index.js";
import { answer, clientOfA, env } from "./helpers.js";

const REVISED = '{"amount":25,"order_id":"o-1"}';

function refund(agent = "agent-a"): Action {
  return {
    session_id: `sess-${randomUUID()}`,
    agent_id: agent,
    action_type: "refund.issue",
    confidence: 0.95,
    request: "My kettle broke after two days, please refund it.",
    summary: "Checked order o-1; proposes a refund of 40 EUR.",
    amount: 40,
    currency: "EUR",
    reversible: true,
    affects_others: false,
    tool_call: { name: "issue_refund", arguments: { order_id: "o-1", amount: 40 } },
  };
}

function search(): Action {
  return {
    session_id: `sess-${randomUUID()}`,
    agent_id: "agent-a",
    action_type: "research.search",
    confidence: 0.95,
    request: "Find articles about battery recycling.",
    summary: "Searched twelve sources.",
    status: "completed",
    reversible: true,
    affects_others: false,
  };
}

describe("without a server", () => {
  test("prepare fills ids and writes arguments canonically", () => {
    const a = prepare({ ...refund(), tool_call: { name: "t", arguments: { b: 1, a: [true, null] } } });
    assert.match(a.action_id, /^act-/);
    assert.ok(a.timestamp_ms > 1_700_000_000_000);
    assert.equal(a.tool_call?.arguments, '{"a":[true,null],"b":1}');
    assert.equal(canonicalJson({ é: 1.5, a: { z: "x", b: 2 } }), '{"a":{"b":2,"z":"x"},"é":1.5}');
  });

  test("refusals map to errors by what to do", () => {
    const invalid = fromResponse(422, { error: { code: "invalid_action", message: "m", field: "confidence", value: "1.5" } });
    assert.ok(invalid instanceof InvalidAction);
    assert.equal((invalid as InvalidAction).field, "confidence");
    assert.ok(fromResponse(403, { error: { code: "forbidden_agent", message: "m" } }) instanceof NotAllowed);
    assert.ok(fromResponse(404, {}) instanceof NotFound);
    assert.ok(fromResponse(502, "Bad Gateway") instanceof Unavailable);
  });
});

describe("against a live gateway", () => {
  const client = clientOfA;

  test("an action the rules let run alone is final at once", async () => {
    const told: Verdict[] = [];
    const v = await client().decide(search(), { onWait: (f) => void told.push(f), timeoutMs: 30_000 });
    assert.equal(v.outcome, "proceed");
    assert.ok(runs(v));
    assert.deepEqual(told, []);
  });

  test("one call waits for the person and returns the revised arguments", async () => {
    const action = { ...refund(), action_id: `act-ts-${randomUUID()}` };
    const told: Verdict[] = [];
    const person = answer(action.action_id, "support", "revise", { revised_arguments: REVISED });
    const v = await client().decide(action, { onWait: (f) => void told.push(f), timeoutMs: 60_000 });
    await person;
    assert.deepEqual(told.map((t) => t.outcome), ["await_human"]);
    assert.deepEqual(told[0]?.roles, ["support"]);
    assert.equal(v.outcome, "revised");
    assert.equal(v.decided_by, "ana");
    assert.deepEqual(argumentsOf(v, action), { amount: 25, order_id: "o-1" });
  });

  test("the receipt of a revision runs the tool once, with the revised arguments only", async () => {
    const action = { ...refund(), action_id: `act-ts-${randomUUID()}` };
    const person = answer(action.action_id, "support", "revise", { revised_arguments: REVISED });
    const v = await client().decide(action, { timeoutMs: 60_000 });
    await person;
    assert.ok(v.receipt, "a receipt on the revision");
    const original = { order_id: "o-1", amount: 40 };
    await assert.rejects(client().redeem(v, original, "issue_refund"), (e: unknown) => {
      assert.ok(e instanceof ReceiptRefused);
      assert.deepEqual(e.reasons, ["arguments_differ"]);
      return true;
    });
    const used = await client().redeem(v, argumentsOf(v, action), "issue_refund");
    assert.equal(used.action_id, action.action_id);
    assert.equal(used.approvers[0]?.sub, "ana");
    await assert.rejects(client().redeem(v, argumentsOf(v, action), "issue_refund"), (e: unknown) => {
      assert.ok(e instanceof ReceiptRefused);
      assert.deepEqual(e.reasons, ["already_used"]);
      return true;
    });
    const alone = await client().decide(search(), { timeoutMs: 30_000 });
    await assert.rejects(client().redeem(alone, {}), (e: unknown) => e instanceof ReceiptRefused && e.code === "no_receipt");
  });

  test("a durable agent submits now and resumes waiting after a restart", async () => {
    const submitted = await client().submit(refund());
    const state = await client().state(submitted.action_id, { waitMs: 10_000, until: "any" });
    assert.equal(state?.status, "waiting");
    await answer(submitted.action_id, "support", "approve");
    const v = await client().wait(submitted.action_id, { timeoutMs: 60_000 });
    assert.equal(v.outcome, "approved");
    assert.equal(v.action_id, submitted.action_id);
  });

  test("refusals name what is wrong", async () => {
    const bad = { ...refund(), confidence: 1.5 };
    await assert.rejects(client().submit(bad), (e: unknown) => {
      assert.ok(e instanceof InvalidAction);
      assert.equal(e.field, "confidence");
      assert.equal(e.reason, "invalid_field");
      return true;
    });
    await assert.rejects(client().submit(refund("agent-b")), NotAllowed);
    const stranger = new Client({ baseUrl: env("HANDOFF_GATEWAY_URL"), key: "not-a-key" });
    await assert.rejects(stranger.submit(search()), NotAllowed);
  });
});
