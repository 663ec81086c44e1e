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
import { type Client, runs } from "../index.js";
import { type AdapterOptions, Calls, refusal } from "./calls.js";

export type { AdapterOptions, ToolPolicy } from "./calls.js";

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

/** Routes one conversation's tool approvals to handoff. */
export class Approvals {
  readonly #calls: Calls;

  constructor(client: Client, options: AdapterOptions) {
    this.#calls = new Calls(client, "ai-sdk", options);
  }

  /** handoff's id of the action a tool call is. */
  actionId(toolCallId: string): string {
    return this.#calls.actionId(toolCallId);
  }

  /** `generateText`'s `toolApproval`: every gated tool waits for an answer (from handoff). */
  toolApproval(): Record<string, "user-approval"> {
    return Object.fromEntries(this.#calls.names().map((name) => [name, "user-approval" as const]));
  }

  /** The tool's `execute`, run with a person's revised arguments when there are some. */
  execute<I extends Record<string, unknown>, O>(
    _name: string,
    execute: (input: I, options: { toolCallId: string }) => Promise<O>,
  ): (input: I, options: { toolCallId: string }) => Promise<O> {
    return async (input, options) => execute((this.#calls.take(options.toolCallId) ?? input) as I, options);
  }

  /** The tool message answering every approval request in `content` (a result's `content`). */
  async answer(content: readonly unknown[]): Promise<{ role: "tool"; content: ApprovalResponse[] }> {
    const requests = content.filter(isRequest);
    return { role: "tool", content: await Promise.all(requests.map((r) => this.#decide(r))) };
  }

  async #decide(r: ApprovalRequest): Promise<ApprovalResponse> {
    const { toolCallId, toolName, input } = r.toolCall;
    const v = await this.#calls.decide(toolCallId, toolName, input as Record<string, unknown>);
    const answer = (approved: boolean, reason?: string): ApprovalResponse =>
      reason === undefined
        ? { type: "tool-approval-response", approvalId: r.approvalId, approved }
        : { type: "tool-approval-response", approvalId: r.approvalId, approved, reason };
    if (!runs(v)) return answer(false, refusal(v));
    // A person rewrote the words, not the call: the model reads them instead of a result (lossy).
    if (v.revised_arguments === null && v.revised_output !== null) return answer(false, v.revised_output);
    const refused = await this.#calls.redeem(v, toolName, input as Record<string, unknown>);
    if (refused !== null) return answer(false, refused);
    return answer(true);
  }
}

function isRequest(part: unknown): part is ApprovalRequest {
  return typeof part === "object" && part !== null && (part as { type?: unknown }).type === "tool-approval-request";
}
