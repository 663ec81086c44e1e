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
import { type Action, type Client, runs } from "../index.js";
import { refusal, type ToolPolicy } from "./ai-sdk.js";

export type { ToolPolicy } from "./ai-sdk.js";

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

const FRAMEWORK = "openai-agents";

/** Routes one conversation's tool approvals to handoff. */
export class Approvals {
  readonly #client: Client;
  readonly #agentId: string;
  readonly #sessionId: string;
  readonly #request: string;
  readonly #timeoutMs: number | undefined;
  readonly #tools: Map<string, ToolPolicy>;
  readonly #revised = new Map<string, Record<string, unknown>>();

  constructor(
    client: Client,
    options: { agentId: string; sessionId: string; tools: ToolPolicy[]; request?: string; timeoutMs?: number },
  ) {
    this.#client = client;
    this.#agentId = options.agentId;
    this.#sessionId = options.sessionId;
    this.#request = options.request ?? "";
    this.#timeoutMs = options.timeoutMs;
    this.#tools = new Map(options.tools.map((t) => [t.name, t]));
  }

  /** handoff's id of the action a tool call is. */
  actionId(callId: string): string {
    return `${FRAMEWORK}-${this.#sessionId}-${callId}`;
  }

  /** The tool's `execute`, run with a person's revised arguments when there are some. */
  execute<I, O>(
    execute: (input: I, context?: unknown, details?: { toolCall?: { callId?: string } }) => Promise<O>,
  ): (input: I, context?: unknown, details?: { toolCall?: { callId?: string } }) => Promise<O> {
    return async (input, context, details) => {
      const callId = details?.toolCall?.callId;
      const revised = callId === undefined ? undefined : this.#revised.get(callId);
      if (callId !== undefined) this.#revised.delete(callId);
      return execute((revised ?? input) as I, context, details);
    };
  }

  /** Answers every paused call of `state` from its final verdict. */
  async resolve<Item extends ApprovalItem>(state: ApprovalState<Item>): Promise<void> {
    for (const item of state.getInterruptions()) {
      const raw = (item.rawItem ?? {}) as { callId?: string; name?: string; arguments?: string };
      const callId = raw.callId ?? "";
      const name = item.name ?? raw.name ?? "";
      const args = JSON.parse(item.arguments ?? raw.arguments ?? "{}") as Record<string, unknown>;
      const actionId = this.actionId(callId);
      if ((await this.#client.state(actionId)) === null) {
        await this.#client.submit(this.#action(actionId, name, callId, args));
      }
      const v = await this.#client.wait(actionId, this.#timeoutMs === undefined ? {} : { timeoutMs: this.#timeoutMs });
      if (!runs(v)) {
        state.reject(item, { message: refusal(v.outcome, v.decided_by, v.comment, v.roles) });
      } else if (v.revised_arguments !== null) {
        this.#revised.set(callId, JSON.parse(v.revised_arguments) as Record<string, unknown>);
        state.approve(item);
      } else if (v.revised_output !== null) {
        state.reject(item, { message: v.revised_output }); // a person's words instead of the call
      } else {
        state.approve(item);
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

  #action(actionId: string, name: string, callId: string, input: Record<string, unknown>): Action {
    const p = this.#tools.get(name) ?? { name, actionType: `tool.${name.toLowerCase().replace(/[^a-z0-9_]+/g, "_")}` };
    const amount = p.amount?.(input);
    return {
      action_id: actionId,
      session_id: this.#sessionId,
      agent_id: this.#agentId,
      action_type: p.actionType,
      request: this.#request || `tool call ${name}`,
      summary: `calls ${name}`,
      status: "proposed",
      reversible: p.reversible ?? false,
      affects_others: p.affectsOthers ?? true,
      ...(amount === undefined ? {} : { amount, ...(p.currency ? { currency: p.currency } : {}) }),
      tool_call: { name, arguments: input, call_id: callId, framework: FRAMEWORK },
    };
  }
}
