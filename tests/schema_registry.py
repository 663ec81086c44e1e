#!/usr/bin/env python3
"""A minimal Confluent-compatible schema registry for the tests (tests/schema_registry.rs).

No real registry server is installable on these machines: Karapace is not on PyPI, and
Confluent's and Apicurio's registries are Java, from package registries these machines do not
reach. So the tests run against this one, which follows Confluent's documented REST API for
the endpoints handoff uses, and no more:

  GET  /schemas/ids/{id}                   -> {"schema": "..."}
  GET  /subjects/{subject}/versions        -> [1, 2, ...]
  POST /subjects/{subject}/versions        -> {"id": N}       (register; the same schema
                                                               keeps its id)
  POST /subjects/{subject}                 -> {"subject", "id", "version", "schema"} (lookup)
  GET  /subjects/{subject}/versions/latest -> {"subject", "id", "version", "schema"}

Errors are {"error_code": N, "message": "..."}: 40401 subject not found, 40403 schema not
found, 42201 invalid schema, 409 incompatible schema, 401 unauthorized. Compatibility is NONE
unless --compatibility BACKWARD (or `PUT /config/{subject}` with {"compatibility": "BACKWARD"}):
then a schema registered under a subject must read data written with the subject's latest
version, by Avro's schema resolution rules (records, defaults, unions, enums, promotions), and
`POST /compatibility/subjects/{subject}/versions/latest` answers {"is_compatible", "messages"}.
Optional basic auth (--username/--password); --fail-first N answers the first N
GET /schemas/ids requests with 503, to test retries. --register SUBJECT=FILE (repeatable)
registers the Avro schema in FILE under SUBJECT before the port opens, so no client can find the
registry up but the schema missing.

Prints "ready PORT" once listening; exits when its standard input closes or on SIGTERM.

Usage: schema_registry.py [--port PORT] [--username U --password P] [--fail-first N]
                          [--compatibility NONE|BACKWARD] [--register SUBJECT=FILE ...]
"""

import argparse
import base64
import json
import re
import signal
import sys
import threading
from urllib.parse import unquote
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# What a reader of the key reads from a writer of each value (Avro schema resolution).
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


def named_types(schema, found=None):
    """Every named type (record, enum, fixed) of a parsed schema, by name."""
    found = {} if found is None else found
    if isinstance(schema, list):
        for branch in schema:
            named_types(branch, found)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            found[schema["name"]] = schema
        for field in schema.get("fields", []):
            named_types(field["type"], found)
        for key in ("items", "values"):
            if key in schema:
                named_types(schema[key], found)
    return found


def incompatibilities(writer, reader, w_names, r_names, at="/"):
    """Why a reader of `reader` cannot read data written with `writer` (empty: it can)."""
    if isinstance(writer, str) and writer in w_names:
        writer = w_names[writer]
    if isinstance(reader, str) and reader in r_names:
        reader = r_names[reader]
    if isinstance(writer, list):
        return [p for branch in writer for p in incompatibilities(branch, reader, w_names, r_names, at)]
    if isinstance(reader, list):
        if any(not incompatibilities(writer, branch, w_names, r_names, at) for branch in reader):
            return []
        return [f"{at}: no branch of the reader's union reads the writer's {kind(writer)}"]
    wk, rk = kind(writer), kind(reader)
    if wk in PRIMITIVES or rk in PRIMITIVES:
        if wk == rk or rk in PROMOTIONS.get(wk, ()):
            return []
        return [f"{at}: the reader's {rk} cannot read the writer's {wk}"]
    if wk != rk:
        return [f"{at}: the reader's {rk} cannot read the writer's {wk}"]
    if rk == "record":
        written = {f["name"]: f for f in writer["fields"]}
        out = []
        for f in reader["fields"]:
            if f["name"] in written:
                out += incompatibilities(written[f["name"]]["type"], f["type"], w_names, r_names, f"{at}{f['name']}/")
            elif "default" not in f:
                out.append(f"{at}{f['name']}: a new field without a default")
        return out
    if rk == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            return [f"{at}: the reader's enum lacks {sorted(missing)}"]
        return []
    if rk == "array":
        return incompatibilities(writer["items"], reader["items"], w_names, r_names, at + "[]/")
    if rk == "map":
        return incompatibilities(writer["values"], reader["values"], w_names, r_names, at + "{}/")
    if rk == "fixed" and writer.get("size") != reader.get("size"):
        return [f"{at}: fixed sizes differ"]
    return []


def kind(schema):
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        t = schema.get("type")
        return t if isinstance(t, str) else kind(t)
    return "union"


def backward(old_text, new_text):
    """BACKWARD: why the new schema cannot read data written with the old one."""
    old, new = json.loads(old_text), json.loads(new_text)
    return incompatibilities(old, new, named_types(old), named_types(new))



class Registry:
    def __init__(self, fail_first, compatibility="NONE"):
        self.lock = threading.Lock()
        self.compatibility = {"": compatibility}  # subject ("" for the global level) -> level
        self.schemas = {}  # id -> (schema text, schema type)
        self.ids = {}  # (normalized text, type) -> id
        self.subjects = {}  # subject -> [id, ...] (version = index + 1)
        self.fail_first = fail_first

    def id_of(self, text, schema_type, create):
        """The id of a schema text (None for text that is not JSON, or unknown and not
        created)."""
        try:
            key = (json.dumps(json.loads(text), sort_keys=True), schema_type)
        except ValueError:
            return None
        with self.lock:
            if key not in self.ids and create:
                new_id = len(self.schemas) + 1
                self.ids[key] = new_id
                self.schemas[new_id] = (text, schema_type)
            return self.ids.get(key)


class Handler(BaseHTTPRequestHandler):
    registry = None
    auth = None

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="registry"')
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message):
        self.answer(status, {"error_code": code, "message": message})

    def authorized(self):
        if self.auth is None or self.headers.get("Authorization") == self.auth:
            return True
        self.error(401, 401, "Unauthorized")
        return False

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}

    def do_GET(self):
        if not self.authorized():
            return
        r = self.registry
        m = re.fullmatch(r"/schemas/ids/(\d+)", self.path)
        if m:
            with r.lock:
                if r.fail_first > 0:
                    r.fail_first -= 1
                    return self.error(503, 50003, "Service unavailable (test)")
                found = r.schemas.get(int(m.group(1)))
            if found is None:
                return self.error(404, 40403, "Schema not found")
            body = {"schema": found[0]}
            if found[1] != "AVRO":
                body["schemaType"] = found[1]
            return self.answer(200, body)
        m = re.fullmatch(r"/subjects/([^/]+)/versions(/latest)?", self.path)
        if m:
            subject = unquote(m.group(1))
            with r.lock:
                versions = list(r.subjects.get(subject, []))
            if not versions:
                return self.error(404, 40401, f"Subject '{subject}' not found.")
            if m.group(2) is None:
                return self.answer(200, list(range(1, len(versions) + 1)))
            return self.answer(200, self.version(subject, len(versions), versions[-1]))
        self.error(404, 404, "HTTP 404 Not Found")

    def version(self, subject, version, schema_id):
        return {
            "subject": subject,
            "version": version,
            "id": schema_id,
            "schema": self.registry.schemas[schema_id][0],
        }

    def do_PUT(self):
        if not self.authorized():
            return
        m = re.fullmatch(r"/config(?:/([^/]+))?", self.path)
        level = self.body().get("compatibility")
        if m is None or level not in ("NONE", "BACKWARD"):
            return self.error(422, 42203, "Invalid compatibility level (NONE or BACKWARD here)")
        with self.registry.lock:
            self.registry.compatibility[unquote(m.group(1) or "")] = level
        self.answer(200, {"compatibility": level})

    def problems(self, subject, text):
        """Why `text` may not be registered under `subject` (its compatibility level)."""
        r = self.registry
        with r.lock:
            level = r.compatibility.get(subject, r.compatibility[""])
            versions = r.subjects.get(subject) or []
            latest = r.schemas[versions[-1]][0] if versions else None
        if level != "BACKWARD" or latest is None:
            return []
        return backward(latest, text)

    def do_POST(self):
        if not self.authorized():
            return
        r = self.registry
        body = self.body()
        text, schema_type = body.get("schema"), body.get("schemaType", "AVRO")
        m = re.fullmatch(r"/compatibility/subjects/([^/]+)/versions/latest", self.path)
        if m is not None:
            found = self.problems(unquote(m.group(1)), text) if isinstance(text, str) else ["not a schema"]
            return self.answer(200, {"is_compatible": not found, "messages": found})
        m = re.fullmatch(r"/subjects/([^/]+)(/versions)?", self.path)
        if m is None:
            return self.error(404, 404, "HTTP 404 Not Found")
        register = m.group(2) is not None
        subject = unquote(m.group(1))
        existing = r.id_of(text, schema_type, False) if isinstance(text, str) else None
        with r.lock:
            known = existing is not None and existing in (r.subjects.get(subject) or [])
        if register and isinstance(text, str) and not known:
            try:
                found = self.problems(subject, text)
            except (ValueError, KeyError, TypeError):
                found = None
            if found:
                message = f"Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: {found}"
                return self.error(409, 409, message)
        schema_id = r.id_of(text, schema_type, register) if isinstance(text, str) else None
        if register and schema_id is None:
            return self.error(422, 42201, "Invalid schema")
        with r.lock:
            versions = r.subjects.setdefault(subject, []) if register else r.subjects.get(subject)
            if versions is None:
                return self.error(404, 40401, f"Subject '{subject}' not found.")
            if register:
                if schema_id not in versions:
                    versions.append(schema_id)
                return self.answer(200, {"id": schema_id})
            if schema_id is None or schema_id not in versions:
                return self.error(404, 40403, "Schema not found")
            return self.answer(200, self.version(subject, versions.index(schema_id) + 1, schema_id))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--register", action="append", default=[], metavar="SUBJECT=FILE")
    ap.add_argument("--compatibility", choices=["NONE", "BACKWARD"], default="NONE")
    args = ap.parse_args()
    Handler.registry = Registry(args.fail_first, args.compatibility)
    for pair in args.register:
        subject, _, path = pair.partition("=")
        with open(path) as f:
            schema_id = Handler.registry.id_of(f.read(), "AVRO", True)
        if schema_id is None:
            sys.exit(f"--register {pair}: {path} is not JSON")
        Handler.registry.subjects.setdefault(subject, []).append(schema_id)
    if args.username is not None:
        token = base64.b64encode(f"{args.username}:{args.password}".encode()).decode()
        Handler.auth = f"Basic {token}"
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def watch_stdin():
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
