/**
 * OpenAI Agents SDK for JavaScript (`@openai/agents`): its tool approvals, decided by handoff.
 *
 * ```ts
 * const approvals = new Approvals(client, { agentId, sessionId, tools: [REFUND] });
 * const issueRefund = tool({ name: "issue_refund", parameters, needsApproval: true,
 *                            execute: approvals.execute(refund) });
 * const result = await approvals.run(run, agent, "Refund order o-1");
 * ```
 *
 * A gated tool (`needsApproval: true`) pauses the run with an approval item; `run` (or
 * `resolve(result.state)` for code that drives `run` itself) sends each paused call to handoff,
 * waits for its final verdict and answers in the SDK's terms — `state.approve(item)`, or
 * `state.reject(item, { message })` with the reason the model reads — then resumes. A person's
 * revised arguments are what the tool runs with, swapped in by call id (the SDK's approval
 * carries none).
 */
import { type Client, runs } from "../index.js";
import { type AdapterOptions, Calls, refusal } from "./calls.js";

export type { AdapterOptions, ToolPolicy } from "./calls.js";

/** What the adapter needs of a paused approval item. */
export interface ApprovalItem {
  name?: string;
  arguments?: string;
  rawItem: { callId?: string; name?: string; arguments?: string } | unknown;
}

/** What the adapter needs of a run's state. */
export interface ApprovalState<Item extends ApprovalItem> {
  getInterruptions(): Item[];
  approve(item: Item): void;
  reject(item: Item, options?: { message?: string }): void;
}

/** Routes one conversation's tool approvals to handoff. */
export class Approvals {
  readonly #calls: Calls;

  constructor(client: Client, options: AdapterOptions) {
    this.#calls = new Calls(client, "openai-agents", options);
  }

  /** handoff's id of the action a tool call is. */
  actionId(callId: string): string {
    return this.#calls.actionId(callId);
  }

  /** The tool's `execute`, run with a person's revised arguments when there are some. */
  execute<I, O>(
    execute: (input: I, context?: unknown, details?: { toolCall?: { callId?: string } }) => Promise<O>,
  ): (input: I, context?: unknown, details?: { toolCall?: { callId?: string } }) => Promise<O> {
    return async (input, context, details) =>
      execute((this.#calls.take(details?.toolCall?.callId) ?? input) as I, context, details);
  }

  /** Answers every paused call of `state` from its final verdict. */
  async resolve<Item extends ApprovalItem>(state: ApprovalState<Item>): Promise<void> {
    for (const item of state.getInterruptions()) {
      const raw = (item.rawItem ?? {}) as { callId?: string; name?: string; arguments?: string };
      const callId = raw.callId ?? "";
      const name = item.name ?? raw.name ?? "";
      const args = JSON.parse(item.arguments ?? raw.arguments ?? "{}") as Record<string, unknown>;
      const v = await this.#calls.decide(callId, name, args);
      if (!runs(v)) {
        state.reject(item, { message: refusal(v) });
      } else if (v.revised_arguments === null && v.revised_output !== null) {
        state.reject(item, { message: v.revised_output }); // a person's words instead of the call
      } else {
        const refused = await this.#calls.redeem(v, name, args);
        if (refused === null) state.approve(item);
        else state.reject(item, { message: refused });
      }
    }
  }

  /** `runner(agent, input)` (the SDK's `run`), resumed after each pause until the run ends. */
  async run<A, R extends { interruptions: unknown[]; state: unknown }>(
    runner: (agent: A, input: never) => Promise<R>,
    agent: A,
    input: string,
  ): Promise<R> {
    let result = await runner(agent, input as never);
    while (result.interruptions.length > 0) {
      await this.resolve(result.state as ApprovalState<ApprovalItem>);
      result = await runner(agent, result.state as never);
    }
    return result;
  }
}
