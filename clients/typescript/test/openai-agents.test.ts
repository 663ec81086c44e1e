// The OpenAI Agents SDK (JavaScript) adapter with the real `@openai/agents` and its ScriptedModel
// (no network, no LLM), against the live gateway and processor of `cargo test --test clients`.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { Agent, run, setTracingDisabled, tool } from "@openai/agents";
import { assistantMessage, functionCall, modelResponder, ScriptedModel } from "@openai/agents/testing";
import { z } from "zod";

import { Approvals } from "../src/adapters/openai-agents.js";
import { answer, clientOfA, refundOptions } from "./helpers.js";

setTracingDisabled(true);

async function refundRun(decision: string, fields: object) {
  const approvals = new Approvals(clientOfA(), refundOptions(`sess-${randomUUID()}`));
  const ran: Array<{ orderId: string; amount: number }> = [];
  const issueRefund = tool({
    name: "issue_refund",
    description: "Refund an order.",
    parameters: z.object({ orderId: z.string(), amount: z.number() }),
    needsApproval: true,
    execute: approvals.execute(async (input: { orderId: string; amount: number }) => {
      ran.push(input);
      return `refunded ${input.amount} on ${input.orderId}`;
    }),
  });
  const respond = modelResponder((call) => {
    const input = Array.isArray(call.request.input) ? call.request.input : [];
    const res = [...input].reverse().find((i) => (i as { type?: string }).type === "function_call_result") as
      | { output?: unknown }
      | undefined;
    return res
      ? [assistantMessage(`saw ${JSON.stringify(res.output)}`)]
      : [functionCall("issue_refund", { orderId: "o-1", amount: 40 }, { callId: "call-1" })];
  });
  const agent = new Agent({ name: "support", model: new ScriptedModel([respond, respond]), tools: [issueRefund] });
  const person = answer(approvals.actionId("call-1"), "support", decision, fields);
  const result = await approvals.run(run, agent, "Refund order o-1, 40 EUR");
  await person;
  return { ran, output: String(result.finalOutput) };
}

test("a refund runs with the amount a person revised", async () => {
  const { ran, output } = await refundRun("revise", { revised_arguments: '{"amount":25,"orderId":"o-1"}' });
  assert.deepEqual(ran, [{ amount: 25, orderId: "o-1" }]);
  assert.match(output, /refunded 25 on o-1/);
});

test("a rejected refund does not run and the model reads why", async () => {
  const { ran, output } = await refundRun("reject", { comment: "already refunded" });
  assert.deepEqual(ran, []);
  assert.match(output, /rejected by ana: already refunded/);
});
