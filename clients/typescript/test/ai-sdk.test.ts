// The Vercel AI SDK adapter with the real `ai` package and its mock model (no network, no LLM),
// against the live gateway and processor of `cargo test --test clients`: a refund pauses for
// approval, handoff hands it to support, a person revises the amount, and the tool runs with it;
// a rejection's reason reaches the model and the tool does not run.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { generateText, isStepCount, type ModelMessage, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { z } from "zod";

import { Approvals } from "../src/adapters/ai-sdk.js";
import { answer, clientOfA, refundOptions } from "./helpers.js";

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};

/** Calls issue_refund first; then says what the tool answered (or why it did not run). */
function model(seen: string[]) {
  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }) => {
      const last = prompt.at(-1);
      if (last?.role === "tool") {
        const part = last.content.find((p) => p.type === "tool-result");
        const out = part?.type === "tool-result" ? part.output : undefined;
        const text = out?.type === "execution-denied" ? `denied: ${out.reason ?? ""}` : `done: ${JSON.stringify(out)}`;
        seen.push(text);
        return { content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
      }
      const input = JSON.stringify({ orderId: "o-1", amount: 40 });
      return {
        content: [{ type: "tool-call", toolCallId: "call-1", toolName: "issue_refund", input }],
        finishReason: { unified: "tool-calls", raw: "tool_calls" },
        usage,
        warnings: [],
      };
    },
  });
}

async function refundRun(decision: string, fields: object) {
  const approvals = new Approvals(clientOfA(), refundOptions(`sess-${randomUUID()}`));
  const ran: Array<{ orderId: string; amount: number }> = [];
  const tools = {
    issue_refund: tool({
      inputSchema: z.object({ orderId: z.string(), amount: z.number() }),
      execute: approvals.execute("issue_refund", async (input: { orderId: string; amount: number }) => {
        ran.push(input);
        return { refunded: input.amount };
      }),
    }),
  };
  const seen: string[] = [];
  const m = model(seen);
  const messages: ModelMessage[] = [{ role: "user", content: "Refund order o-1, 40 EUR" }];
  const options = { model: m, tools, toolApproval: approvals.toolApproval(), stopWhen: isStepCount(5) };
  const r1 = await generateText({ ...options, messages });
  assert.equal(r1.stoppedBy, "approval");
  const person = answer(approvals.actionId("call-1"), "support", decision, fields);
  messages.push(...r1.responseMessages, await approvals.answer(r1.content));
  await person;
  const r2 = await generateText({ ...options, messages });
  return { ran, seen, text: r2.text };
}

test("a refund runs with the amount a person revised", async () => {
  const { ran, text } = await refundRun("revise", { revised_arguments: '{"amount":25,"orderId":"o-1"}' });
  assert.deepEqual(ran, [{ amount: 25, orderId: "o-1" }]);
  assert.equal(text, 'done: {"type":"json","value":{"refunded":25}}');
});

test("a rejected refund does not run and the model reads why", async () => {
  const { ran, text } = await refundRun("reject", { comment: "already refunded" });
  assert.deepEqual(ran, []);
  assert.equal(text, "denied: rejected by ana: already refunded");
});
