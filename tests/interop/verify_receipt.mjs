// Checks an approval receipt of handoff's as an executor would, with the `jose` package: the
// signature against the JWKS, typ, expiry and audience (the agent), then the SHA-256 of the
// canonical arguments about to run. Exit 0 when accepted, 1 when refused. Arguments: the JWKS
// file, the receipt file, the arguments file (JSON), the agent id.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createLocalJWKSet, jwtVerify } from "jose";

const [jwksPath, receiptPath, argumentsPath, agent] = process.argv.slice(2);
const jwks = JSON.parse(readFileSync(jwksPath, "utf8"));
const token = readFileSync(receiptPath, "utf8").trim();
const args = JSON.parse(readFileSync(argumentsPath, "utf8"));

// RFC 8785 for what tool arguments hold here (strings, integers, objects, arrays).
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

try {
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
    algorithms: ["EdDSA"],
    typ: "handoff-receipt+jwt",
    audience: agent,
  });
  const digest = createHash("sha256").update(canonical(args)).digest("base64url");
  if (payload.arguments_sha256 !== digest) throw new Error("arguments differ from the approved ones");
  console.log(`jose: verified, approvers ${payload.approvers.map((a) => a.sub).join(",")}`);
} catch (e) {
  console.log(`jose: refused: ${e.code ?? e.message}`);
  process.exit(1);
}
