// Checks a detached compact JWS (RFC 7515, Appendix F) of handoff's against a JWKS with the
// `jose` package: exit 0 when it verifies, 1 when refused. Arguments: the JWKS file, the JWS
// file, the payload file.
import { readFileSync } from "node:fs";
import { createLocalJWKSet, flattenedVerify } from "jose";

const [jwksPath, jwsPath, payloadPath] = process.argv.slice(2);
const jwks = JSON.parse(readFileSync(jwksPath, "utf8"));
const [protectedHeader, middle, signature] = readFileSync(jwsPath, "utf8").trim().split(".");
if (middle !== "") throw new Error("a detached JWS has an empty payload part");
const payload = readFileSync(payloadPath).toString("base64url");
try {
  const r = await flattenedVerify({ protected: protectedHeader, payload, signature }, createLocalJWKSet(jwks), {
    algorithms: ["EdDSA"],
  });
  console.log(`jose: verified, kid ${r.protectedHeader.kid}`);
} catch (e) {
  console.log(`jose: refused: ${e.code ?? e.message}`);
  process.exit(1);
}
