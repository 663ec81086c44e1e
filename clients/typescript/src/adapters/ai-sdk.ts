/**
 * Vercel AI SDK (`ai`): its tool approval requests, answered from handoff.
 *
 * ```ts
 * const approvals = new Approvals(client, { agentId, sessionId, tools: [REFUND] });
 * const tools = { issue_refund: tool({ inputSchema, execute: approvals.execute("issue_refund", refund) }) };
 * const r1 = await generateText({ model, tools, toolApproval: approvals.toolApproval(), messages });
 * messages.push(...r1.responseMessages, await approvals.answer(r1.content));
 * const r2 = await generateText({ model, tools, toolApproval: approvals.toolApproval(), messages });
 * ```
 *
 * Every gated tool pauses with a `tool-approval-request`; `answer` sends each paused call to
 * handoff, waits for its final verdict and returns the `tool-approval-response`s to append:
 * approved (the tool runs — with a person's revised arguments, swapped in by `toolCallId`
 * since the SDK's answer carries none), or denied with the reason the model reads.
 */
import { type Action, type Client, runs } from "../index.js";

/** What a tool's calls are to handoff. */
export interface ToolPolicy {
  name: string;
  actionType: string;
  /** Default false (fail closed). */
  reversible?: boolean;
  /** Default true (fail closed). */
  affectsOthers?: boolean;
  amount?: (input: Record<string, unknown>) => number | undefined;
  currency?: string;
}

/** The answer to one approval request (the SDK's `ToolApprovalResponse`). */
export interface ApprovalResponse {
  type: "tool-approval-response";
  approvalId: string;
  approved: boolean;
  reason?: string;
}

interface ApprovalRequest {
  type: "tool-approval-request";
  approvalId: string;
  toolCall: { toolCallId: string; toolName: string; input: unknown };
}

const FRAMEWORK = "ai-sdk";

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
  actionId(toolCallId: string): string {
    return `${FRAMEWORK}-${this.#sessionId}-${toolCallId}`;
  }

  /** `generateText`'s `toolApproval`: every gated tool waits for an answer (from handoff). */
  toolApproval(): Record<string, "user-approval"> {
    return Object.fromEntries([...this.#tools.keys()].map((name) => [name, "user-approval" as const]));
  }

  /** The tool's `execute`, run with a person's revised arguments when there are some. */
  execute<I extends Record<string, unknown>, O>(
    _name: string,
    execute: (input: I, options: { toolCallId: string }) => Promise<O>,
  ): (input: I, options: { toolCallId: string }) => Promise<O> {
    return async (input, options) => {
      const revised = this.#revised.get(options.toolCallId);
      this.#revised.delete(options.toolCallId);
      return execute((revised ?? input) as I, options);
    };
  }

  /** The tool message answering every approval request in `content` (a result's `content`). */
  async answer(content: readonly unknown[]): Promise<{ role: "tool"; content: ApprovalResponse[] }> {
    const requests = content.filter(isRequest);
    const answers = await Promise.all(requests.map((r) => this.#decide(r)));
    return { role: "tool", content: answers };
  }

  async #decide(r: ApprovalRequest): Promise<ApprovalResponse> {
    const { toolCallId, toolName, input } = r.toolCall;
    const actionId = this.actionId(toolCallId);
    if ((await this.#client.state(actionId)) === null) {
      await this.#client.submit(this.#action(actionId, toolName, toolCallId, input as Record<string, unknown>));
    }
    const wait = this.#timeoutMs === undefined ? {} : { timeoutMs: this.#timeoutMs };
    const v = await this.#client.wait(actionId, wait);
    const answer = (approved: boolean, reason?: string): ApprovalResponse =>
      reason === undefined
        ? { type: "tool-approval-response", approvalId: r.approvalId, approved }
        : { type: "tool-approval-response", approvalId: r.approvalId, approved, reason };
    if (!runs(v)) return answer(false, refusal(v.outcome, v.decided_by, v.comment, v.roles));
    if (v.revised_arguments !== null) {
      this.#revised.set(toolCallId, JSON.parse(v.revised_arguments) as Record<string, unknown>);
      return answer(true);
    }
    // A person rewrote the words, not the call: the model reads them instead of a result (lossy).
    if (v.revised_output !== null) return answer(false, v.revised_output);
    return answer(true);
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

function isRequest(part: unknown): part is ApprovalRequest {
  return typeof part === "object" && part !== null && (part as { type?: unknown }).type === "tool-approval-request";
}

/** The reason the model reads for a verdict that does not let the call run. */
export function refusal(outcome: string, by: string | null, comment: string | null, roles: string[]): string {
  const why =
    outcome === "timed_out_blocked"
      ? `nobody answered in time (${roles.join(", ") || "no role"}); the rules block it`
      : outcome === "rejected"
        ? `rejected by ${by ?? "handoff"}`
        : `not allowed (${outcome})`;
  return comment ? `${why}: ${comment}` : why;
}
