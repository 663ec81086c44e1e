/**
 * handoff's TypeScript client: ask handoff whether an AI agent's action may run, and wait for the
 * person who decides. It speaks to `handoff gateway` with the platform's `fetch`.
 *
 * ```ts
 * const handoff = new Client({ baseUrl: "http://127.0.0.1:9880", key });
 * const verdict = await handoff.decide(action, { onWait: (first) => console.log(first.roles) });
 * if (runs(verdict)) await issueRefund(argumentsOf(verdict, action));
 * ```
 */

/** The levels of the escalation matrix, least to most restrictive. */
export type Level = "execute" | "execute_log" | "ask_first" | "hard_stop";

/** What the agent must do after a verdict. */
export type Outcome =
  | "proceed"
  | "proceed_and_log"
  | "await_human"
  | "stopped"
  | "approved"
  | "rejected"
  | "revised"
  | "redirected"
  | "timed_out_blocked"
  | "timed_out_proceed";

/** A tool call behind an action; `arguments` may be given as an object (sent as canonical JSON). */
export interface ToolCall {
  name: string;
  arguments: string | Record<string, unknown>;
  call_id?: string | null;
  framework?: string | null;
  run_id?: string | null;
  arguments_schema?: string | null;
}

/** An action an agent proposes (the AgentAction fields; see the gateway's OpenAPI document). */
export interface Action {
  action_id?: string;
  session_id: string;
  agent_id: string;
  timestamp_ms?: number;
  action_type: string;
  confidence?: number | null;
  request: string;
  summary: string;
  output?: string | null;
  template_id?: string | null;
  options?: string[];
  status?: "proposed" | "completed" | "failed";
  error?: string | null;
  amount?: number | null;
  currency?: string | null;
  customer?: { id: string; tier?: "standard" | "premium" | "vip"; prior_complaints?: number } | null;
  reversible: boolean;
  affects_others: boolean;
  user_message?: string | null;
  attributes?: Record<string, string>;
  tool_call?: ToolCall | null;
}

/** handoff's answer about one action (the Verdict schema's fields). */
export interface Verdict {
  action_id: string;
  session_id: string;
  agent_id: string;
  action_type: string;
  level: Level;
  outcome: Outcome;
  final: boolean;
  triggers: string[];
  roles: string[];
  escalation_ids: string[];
  rule_version: string;
  decided_at_ms: number;
  decided_by: string | null;
  comment: string | null;
  revised_output: string | null;
  redirect_role: string | null;
  drill: boolean;
  chosen_option: string | null;
  revised_arguments: string | null;
  /** The approval receipt (a compact JWS) on a final verdict that lets the action run after people approved it. */
  receipt?: string | null;
}

/** What is known of one action. */
export interface ActionState {
  action_id: string;
  status: "pending" | "waiting" | "final";
  first: Verdict | null;
  final: Verdict | null;
}

/** An action the broker acknowledged. */
export interface Submitted {
  action_id: string;
  session_id: string;
}

const RUNS: ReadonlySet<Outcome> = new Set(["proceed", "proceed_and_log", "approved", "revised", "timed_out_proceed"]);

/** True when the verdict is final and lets the action run. */
export function runs(v: Verdict): boolean {
  return v.final && RUNS.has(v.outcome);
}

/** The arguments to run the tool with: a person's revision when there is one, else the action's. */
export function argumentsOf(v: Verdict, action?: Pick<Action, "tool_call">): Record<string, unknown> | undefined {
  if (v.revised_arguments !== null) return JSON.parse(v.revised_arguments) as Record<string, unknown>;
  const args = action?.tool_call?.arguments;
  if (args === undefined) return undefined;
  return typeof args === "string" ? (JSON.parse(args) as Record<string, unknown>) : { ...args };
}

/** JSON text with sorted keys and no spaces: the canonical form of plain JSON values (RFC 8785). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** A copy of `action` ready to send: ids and time filled, tool arguments as canonical JSON. */
export function prepare(action: Action): Action & { action_id: string; timestamp_ms: number } {
  const out = { ...action, action_id: action.action_id ?? `act-${crypto.randomUUID()}`, timestamp_ms: action.timestamp_ms ?? Date.now() };
  if (out.tool_call) {
    const args = out.tool_call.arguments;
    out.tool_call = { ...out.tool_call, arguments: typeof args === "string" ? args : canonicalJson(args) };
  }
  return out;
}

/** A refusal or failure; `code` is the gateway's stable name of the problem. */
export class HandoffError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
/** Not an action handoff would decide: fix `field`; sending it again will not help. */
export class InvalidAction extends HandoffError {
  field?: string;
  value?: string;
  reason?: string;
}
/** The key is unknown (401) or may not act as this agent (403). */
export class NotAllowed extends HandoffError {}
/** No verdict for this action (not decided yet, another agent's, or older than the window). */
export class NotFound extends HandoffError {}
/** The broker or the gateway: worth trying again. */
export class Unavailable extends HandoffError {}
/** No final verdict within the time given. */
export class Timeout extends HandoffError {}
/** The approval receipt may not run the tool: `reasons` names each problem (`expired`, `arguments_differ`, `already_used`, …). Do not run the tool. */
export class ReceiptRefused extends HandoffError {
  reasons: string[] = [];
}

/** A receipt the gateway accepted and recorded as used: run the tool now, with the arguments sent. */
export interface Redeemed {
  action_id: string;
  receipt_id: string;
  outcome: string;
  tool_name: string | null;
  approvers: { sub: string; role: string; at: string; via: string; context_sha256?: string }[];
  used_at_ms: number;
}

interface ProblemBody {
  error?: { code?: string; message?: string; field?: string; value?: string; reason?: string; reasons?: string[] };
}

/** The exception for a refusal of the gateway. */
export function fromResponse(status: number, body: unknown): HandoffError {
  const err = (typeof body === "object" && body !== null ? (body as ProblemBody).error : undefined) ?? {};
  const message = err.message ?? (typeof body === "string" && body ? body : `HTTP ${status}`);
  if (["receipt_refused", "receipt_used", "arguments_required", "tool_required"].includes(err.code ?? "")) {
    const e = new ReceiptRefused(message, status, err.code);
    e.reasons = err.reasons ?? [err.code ?? "receipt_refused"];
    return e;
  }
  if (status === 413 || status === 422 || err.code === "invalid_action") {
    const e = new InvalidAction(message, status, err.code);
    if (err.field !== undefined) e.field = err.field;
    if (err.value !== undefined) e.value = err.value;
    if (err.reason !== undefined) e.reason = err.reason;
    return e;
  }
  if (status === 401 || status === 403) return new NotAllowed(message, status, err.code);
  if (status === 404) return new NotFound(message, status, err.code);
  if (status === 408 || status === 429 || status >= 500) return new Unavailable(message, status, err.code);
  return new HandoffError(message, status, err.code);
}

/** Options of a wait. */
export interface WaitOptions {
  /** Called once with the first verdict when a person (or a deadline) decides next. */
  onWait?: (first: Verdict) => void | Promise<void>;
  /** Give up (Timeout) after this long; by default, wait as long as it takes. */
  timeoutMs?: number;
}

/** How long one long poll waits on the gateway (its max_wait shortens longer ones). */
const POLL_MS = 30_000;

/** A client of `handoff gateway`. */
export class Client {
  readonly #base: string;
  readonly #headers: Record<string, string>;

  constructor(options: { baseUrl: string; key: string }) {
    this.#base = options.baseUrl.replace(/\/+$/, "");
    this.#headers = { authorization: `Bearer ${options.key}`, "user-agent": "handoff-client-typescript/0.1.0" };
  }

  /** Sends the action; resolves once the broker acknowledged it. */
  async submit(action: Action): Promise<Submitted> {
    const body = JSON.stringify(prepare(action));
    const r = await this.#fetch("/v1/actions", { method: "POST", body, headers: { "content-type": "application/json" } }, 15_000);
    const s = (await checked(r)) as Submitted;
    return { action_id: s.action_id, session_id: s.session_id };
  }

  /** What is known of the action, after waiting up to `waitMs` for `until`; `null` when unknown. */
  async state(actionId: string, options: { waitMs?: number; until?: "final" | "any" } = {}): Promise<ActionState | null> {
    const wait = Math.max(0, Math.round(options.waitMs ?? 0));
    const path = `/v1/actions/${encodeURIComponent(actionId)}/verdict?wait=${wait}ms&until=${options.until ?? "final"}`;
    try {
      return (await checked(await this.#fetch(path, { method: "GET" }, wait + 15_000))) as ActionState;
    } catch (e) {
      if (e instanceof NotFound) return null;
      throw e;
    }
  }

  /** The action's final verdict, waiting as long as it takes (or `timeoutMs`). */
  async wait(actionId: string, options: WaitOptions = {}): Promise<Verdict> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let until: "any" | "final" = options.onWait ? "any" : "final";
    let told = false;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Timeout(`no final verdict for ${actionId} in time`, undefined, "timeout");
      const state = await this.state(actionId, { waitMs: Math.min(POLL_MS, left), until });
      if (state?.first && !state.first.final && !told && options.onWait) {
        told = true;
        await options.onWait(state.first);
      }
      if (state?.final) return state.final;
      if (state?.first) until = "final";
    }
  }

  /** Submits the action and resolves with its final verdict. */
  async decide(action: Action, options: WaitOptions = {}): Promise<Verdict> {
    const submitted = await this.submit(action);
    return this.wait(submitted.action_id, options);
  }

  /**
   * Right before the tool runs: the gateway checks `verdict`'s receipt (signature, expiry, this
   * key's agent, `toolName`, exactly these `args`) and records its only use. Rejects with
   * `ReceiptRefused` naming each reason — then do not run the tool.
   */
  async redeem(verdict: Verdict, args?: Record<string, unknown> | string, toolName?: string): Promise<Redeemed> {
    if (!verdict.receipt) {
      const e = new ReceiptRefused(`the verdict for ${verdict.action_id} (${verdict.outcome}) carries no receipt`, undefined, "no_receipt");
      e.reasons = ["no_receipt"];
      throw e;
    }
    const body = JSON.stringify({ receipt: verdict.receipt, arguments: args, tool_name: toolName });
    const r = await this.#fetch("/v1/receipts/redeem", { method: "POST", body, headers: { "content-type": "application/json" } }, 15_000);
    return (await checked(r)) as Redeemed;
  }

  async #fetch(path: string, init: RequestInit & { headers?: Record<string, string> }, timeoutMs: number): Promise<Response> {
    try {
      return await fetch(`${this.#base}${path}`, {
        ...init,
        headers: { ...this.#headers, ...(init.headers ?? {}) },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new Unavailable(`gateway unreachable: ${(e as Error).message}`);
    }
  }
}

async function checked(r: Response): Promise<unknown> {
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // a plain-text answer (a proxy's error page): kept as text
  }
  if (r.status >= 400) throw fromResponse(r.status, body);
  return body;
}
