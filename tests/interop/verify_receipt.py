"""Checks an approval receipt of handoff's (a compact JWS, typ handoff-receipt+jwt) as an executor
would, with two independent JOSE libraries, PyJWT and joserfc: the signature against the JWKS,
the expiry, the audience (the agent), then the SHA-256 of the canonical arguments about to run.
Exit 0 when both accept it, 1 when either refuses it. Arguments: the JWKS file, the receipt file,
the arguments file (JSON), the agent id."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
import warnings

import jwt
from joserfc import jwt as rfc_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

warnings.filterwarnings("ignore", message="EdDSA is deprecated")


def arguments_sha256(arguments: object) -> str:
    # RFC 8785 for what tool arguments hold here (strings, integers, objects, arrays).
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def main() -> int:
    jwks = json.load(open(sys.argv[1]))
    token = open(sys.argv[2]).read().strip()
    arguments = json.load(open(sys.argv[3]))
    agent = sys.argv[4]
    ok = True
    header = jwt.get_unverified_header(token)
    jwk = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    try:
        if jwk is None:
            raise jwt.InvalidTokenError(f"no key {header.get('kid')!r} in the JWKS")
        if header.get("typ") != "handoff-receipt+jwt":
            raise jwt.InvalidTokenError(f"typ {header.get('typ')!r}")
        claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience=agent)
        if claims.get("arguments_sha256") != arguments_sha256(arguments):
            raise jwt.InvalidTokenError("arguments differ from the approved ones")
        print(f"pyjwt: verified, approvers {[a['sub'] for a in claims['approvers']]}")
    except jwt.InvalidTokenError as e:
        print(f"pyjwt: refused: {e}")
        ok = False
    try:
        tok = rfc_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["EdDSA"])
        registry = JWTClaimsRegistry(now=int(time.time()), aud={"essential": True, "value": agent})
        registry.validate(tok.claims)
        if tok.claims.get("arguments_sha256") != arguments_sha256(arguments):
            raise JoseError("arguments differ from the approved ones")
        print(f"joserfc: verified, approval {tok.claims['approval']['id']}")
    except (JoseError, ValueError) as e:
        print(f"joserfc: refused: {e}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
