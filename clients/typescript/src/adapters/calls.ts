/**
 * What the TypeScript adapters share: a tool's calls as handoff's actions, each sent once, its
 * final verdict waited for, and a person's revised arguments kept for the tool by call id (no
 * framework's approval carries other arguments).
 */
import { type Action, type Client, ReceiptRefused, runs, type Verdict } from "../index.js";

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

/** The options every adapter takes. */
export interface AdapterOptions {
  agentId: string;
  sessionId: string;
  tools: ToolPolicy[];
  request?: string;
  timeoutMs?: number;
}

/** One conversation's tool calls, as handoff's actions. */
export class Calls {
  readonly #client: Client;
  readonly #framework: string;
  readonly #options: AdapterOptions;
  readonly #tools: Map<string, ToolPolicy>;
  readonly #revised = new Map<string, Record<string, unknown>>();

  constructor(client: Client, framework: string, options: AdapterOptions) {
    this.#client = client;
    this.#framework = framework;
    this.#options = options;
    this.#tools = new Map(options.tools.map((t) => [t.name, t]));
  }

  /** handoff's id of the action a tool call is. */
  actionId(callId: string): string {
    return `${this.#framework}-${this.#options.sessionId}-${callId}`;
  }

  /** The names of the tools handoff decides. */
  names(): string[] {
    return [...this.#tools.keys()];
  }

  /** The call's final verdict (sent to handoff unless it knows it already); a person's revised
   * arguments are kept for `take`. */
  async decide(callId: string, name: string, input: Record<string, unknown>): Promise<Verdict> {
    const actionId = this.actionId(callId);
    if ((await this.#client.state(actionId)) === null) {
      await this.#client.submit(this.#action(actionId, name, callId, input));
    }
    const timeout = this.#options.timeoutMs;
    const v = await this.#client.wait(actionId, timeout === undefined ? {} : { timeoutMs: timeout });
    if (v.revised_arguments !== null) {
      this.#revised.set(callId, JSON.parse(v.revised_arguments) as Record<string, unknown>);
    }
    return v;
  }

  /**
   * Before an approved call runs: its receipt redeemed for the arguments about to run (its one
   * use). Resolves with why the call must not run when the gateway refuses it, else null (also
   * when the verdict carries no receipt: the rules let it run alone).
   */
  async redeem(v: Verdict, name: string, input: Record<string, unknown>): Promise<string | null> {
    const callRuns = runs(v) && (v.revised_arguments !== null || v.revised_output === null);
    if (!v.receipt || !callRuns) return null;
    const args = v.revised_arguments !== null ? (JSON.parse(v.revised_arguments) as Record<string, unknown>) : input;
    try {
      await this.#client.redeem(v, args, name);
      return null;
    } catch (e) {
      if (e instanceof ReceiptRefused) return `the approval receipt was refused (${e.reasons.join(", ")}): ${e.message}`;
      throw e;
    }
  }

  /** The arguments a person gave the call (once), if any. */
  take(callId: string | undefined): Record<string, unknown> | undefined {
    if (callId === undefined) return undefined;
    const revised = this.#revised.get(callId);
    this.#revised.delete(callId);
    return revised;
  }

  #action(actionId: string, name: string, callId: string, input: Record<string, unknown>): Action {
    const kind = `tool.${name.toLowerCase().replace(/[^a-z0-9_]+/g, "_")}`;
    const p = this.#tools.get(name) ?? { name, actionType: kind };
    const amount = p.amount?.(input);
    return {
      action_id: actionId,
      session_id: this.#options.sessionId,
      agent_id: this.#options.agentId,
      action_type: p.actionType,
      request: this.#options.request || `tool call ${name}`,
      summary: `calls ${name}`,
      status: "proposed",
      reversible: p.reversible ?? false,
      affects_others: p.affectsOthers ?? true,
      ...(amount === undefined ? {} : { amount, ...(p.currency ? { currency: p.currency } : {}) }),
      tool_call: { name, arguments: input, call_id: callId, framework: this.#framework },
    };
  }
}

/** The reason the model reads for a verdict that does not let the call run. */
export function refusal(v: Verdict): string {
  const why =
    v.outcome === "timed_out_blocked"
      ? `nobody answered in time (${v.roles.join(", ") || "no role"}); the rules block it`
      : v.outcome === "rejected"
        ? `rejected by ${v.decided_by ?? "handoff"}`
        : `not allowed (${v.outcome})`;
  return v.comment ? `${why}: ${v.comment}` : why;
}
