"""Checks a detached compact JWS (RFC 7515, Appendix F) of handoff's against a JWKS with two
independent JOSE libraries, PyJWT and joserfc: exit 0 when both verify it, 1 when either
refuses it. Arguments: the JWKS file, the JWS file, the payload file."""

from __future__ import annotations

import base64
import json
import sys
import warnings

import jwt
from joserfc import jws as rfc_jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# joserfc warns that RFC 9864 deprecates "EdDSA" for the fully specified "Ed25519"; handoff
# signs with "EdDSA", which every library here still verifies.
warnings.filterwarnings("ignore", message="EdDSA is deprecated")


def main() -> int:
    jwks = json.load(open(sys.argv[1]))
    token = open(sys.argv[2]).read().strip()
    payload = open(sys.argv[3], "rb").read()
    header_b64, middle, signature_b64 = token.split(".")
    assert middle == "", "a detached JWS has an empty payload part"
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    kid = header.get("kid")
    jwk = next((k for k in jwks["keys"] if k.get("kid") == kid), None)
    if jwk is None:
        print(f"no key {kid!r} in the JWKS")
        return 1
    ok = True
    # RFC 7515 Appendix F: the recipient puts the payload back in, then verifies as usual.
    attached = f"{header_b64}.{b64url(payload)}.{signature_b64}"
    try:
        got = jwt.PyJWS().decode_complete(attached, key=jwt.PyJWK(jwk).key, algorithms=["EdDSA"])
        assert got["payload"] == payload
        print(f"pyjwt: verified, kid {kid}")
    except jwt.InvalidTokenError as e:
        print(f"pyjwt: refused: {e}")
        ok = False
    try:
        obj = rfc_jws.deserialize_compact(attached, KeySet.import_key_set(jwks), algorithms=["EdDSA"])
        assert obj.payload == payload
        print(f"joserfc: verified, kid {kid}")
    except JoseError as e:
        print(f"joserfc: refused: {e}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
