// What the live tests share: the environment `cargo test --test clients` sets, and a person
// answering an escalation through clients/python/tests/person.py (as the inbox writes answers).
import { spawn } from "node:child_process";

import type { AdapterOptions, ToolPolicy } from "../src/adapters/calls.js";
import { Client } from "../src/index.js";

export function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests with \`cargo test --test clients\``);
  return v;
}

/** A person of `role` answers the action's escalation (resolves once the answer is written). */
export function answer(actionId: string, role: string, decision: string, fields: object = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(env("HANDOFF_PYTHON"), [env("HANDOFF_PERSON"), actionId, role, decision, JSON.stringify(fields)], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`person exited ${code}`))));
  });
}

/** agent-a's client of the live gateway. */
export function clientOfA(): Client {
  return new Client({ baseUrl: env("HANDOFF_GATEWAY_URL"), key: env("HANDOFF_KEY_A") });
}

/** The refund tool as handoff sees it (the matrix hands refund.issue to support). */
export const REFUND: ToolPolicy = {
  name: "issue_refund",
  actionType: "refund.issue",
  reversible: true,
  affectsOthers: false,
  amount: (a) => a["amount"] as number,
  currency: "EUR",
};

/** An adapter's options for agent-a in a session of its own, the refund tool gated. */
export function refundOptions(sessionId: string): AdapterOptions {
  return { agentId: "agent-a", sessionId, timeoutMs: 60_000, tools: [REFUND] };
}
