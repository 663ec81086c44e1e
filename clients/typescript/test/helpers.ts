// What the live tests share: the environment `cargo test --test clients` sets, and a person
// answering an escalation through clients/python/tests/person.py (as the inbox writes answers).
import { spawn } from "node:child_process";

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
