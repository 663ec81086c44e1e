"""A Deployment running handoff (Workload), and the checks they all pass, the processors' (`handoff
run`), the inbox's (`handoff inbox`) and the gateway's (`handoff gateway`): the settings file and the
matrix from ConfigMaps the kustomization generates, the settings' keys against src/config, the port
and the probes against the routes served, the Services and PodMonitors reaching that port, every
secret the settings name mounted, the security context, the PodDisruptionBudget; and what the inbox
and the gateway share (the processors' sections and image, the startup window, replicas and
rollouts). Like every check of check.py's groups, each takes the Check (`c`: the report, and what
check.py loaded) first.
"""

from __future__ import annotations

import pathlib
import re
import tomllib
from typing import TYPE_CHECKING

from rust_sources import config_problems

if TYPE_CHECKING:
    from check import Check

SUBCOMMANDS = ("run", "inbox", "gateway")
ALL_INTERFACES = ("0.0.0.0", "::", "")
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
    """("0.0.0.0", 9464) of "0.0.0.0:9464" ("[::]:9464" too)."""
    m = re.fullmatch(r"\[?([^\]]*)\]?:(\d+)", bind)
    if not m:
        raise ValueError(f"not host:port: {bind!r}")
    return m.group(1), int(m.group(2))


def flat(d, at: str = "") -> dict:
    """A nested table as {dotted.key: value}."""
    if not isinstance(d, dict):
        return {at: d}
    return {k2: v2 for k, v in d.items() for k2, v2 in flat(v, f"{at}.{k}" if at else str(k)).items()}


def selector_of(d: dict) -> dict | None:
    """The label selector of a Service (a plain map), or of a PDB, PodMonitor or Deployment."""
    spec = d.get("spec") or {}
    return {"matchLabels": spec.get("selector")} if d.get("kind") == "Service" else spec.get("selector")


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """Whether a label selector (its matchLabels, which must not be empty) takes pods with `labels`."""
    match = (selector or {}).get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def secret_settings(settings: dict) -> list[tuple[str, object, bool]]:
    """(field, value, is a secret) of every setting set that may name a secret: librdkafka properties,
    the schema registry's password and CA, the inbox's keys, the receivers' URLs and secrets, the
    signing key. The inbox's keys, the receivers' secrets, Slack webhook URLs and the signing key are
    secrets themselves: never written in a settings file (a ConfigMap), only referred to (file:, env:)."""
    kafka, inbox = settings.get("kafka") or {}, settings.get("inbox") or {}
    registry = (settings.get("input") or {}).get("schema_registry") or {}
    refs = [(f"kafka.{s}.{k}", v, False) for s in ("common", "consumer", "producer")
            for k, v in (kafka.get(s) or {}).items()]
    refs += [(f"input.schema_registry.{k}", registry.get(k), False) for k in ("password", "ca_file")]
    refs += [(f"inbox.{k}", inbox.get(k), True) for k in ("cookie_key", "slack_signing_secret", "proxy_secret")]
    refs += [("metrics.reload_token", (settings.get("metrics") or {}).get("reload_token"), True)]
    refs += [("trust.signing_key", (settings.get("trust") or {}).get("signing_key"), True)]
    refs += [(f"notify.receivers[{i}].{k}", rc.get(k), k == "secret" or rc.get("kind") == "slack")
             for i, rc in enumerate((settings.get("notify") or {}).get("receivers") or [])
             if isinstance(rc, dict) for k in ("url", "secret")]
    return [r for r in refs if r[1] is not None]


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
        """The ConfigMaps of a volume (a configMap volume, or the sources of a projected one)."""
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
        """Whether `path` is among the routes found, answering GET."""
        return bool((self.routes.get(path) or {}).get("methods", set()) & {"get", "any"})

    def route_list(self) -> str:
        """The routes found, for messages."""
        return ", ".join(sorted(self.routes)) or "none"


def mounted(c: Check, w: Workload, path: str, label: str) -> tuple[str, str] | None:
    """(ConfigMap, key) of the file at `path` in the pods of `w`, which must be a key of a ConfigMap
    the kustomization generates, mounted there; `label` names the file in the messages."""
    m, vname, key = w.file_source(path)
    g = next((g for g in w.configmaps_of(vname) if key in c.generators.get(g, {}).get("data", {})), None)
    at = f"{w.kind_name}: {label}"
    c.check(g is not None, f"{at}: key {key} of ConfigMap {g}, mounted at {(m or {}).get('mountPath')}",
            f"{at}: no mounted ConfigMap of the kustomization has a key {key}")
    return (g, key) if g else None


def settings_file(c: Check, w: Workload, hashed_why: str, pods: str) -> tuple[dict | None, str | None]:
    """The settings file of `w` (its --config) from a generated, hash-suffixed ConfigMap (`pods`:
    who would not see a change until restarted otherwise), checked against the keys and enum values
    src/config declares."""
    if not w.config_path:
        c.fail(f"{w.kind_name}: the container's args {w.args} have no --config FILE")
        return None, None
    if (found := mounted(c, w, w.config_path, f"--config {w.config_path}")) is None:
        return None, None
    (g, key), settings = found, None
    try:
        settings = tomllib.loads(c.generators[g]["data"][key])
        c.ok(f"{key} parses as TOML")
    except tomllib.TOMLDecodeError as e:
        c.fail(f"{key}: not TOML: {e}")
    c.check(c.generators[g]["hashed"], f"ConfigMap {g} keeps kustomize's hash suffix: {hashed_why}",
            f"ConfigMap {g} has disableNameSuffixHash: a change of {key} would reach no {pods} until it "
            "restarts")
    if settings is not None and "Settings" not in c.structs:
        c.fail(f"no `pub struct Settings` with deny_unknown_fields in "
               f"{', '.join(c.rel(s) for s in c.config_src)}: the settings' keys are not checked")
    elif settings is not None:
        problems = config_problems(settings, "Settings", c.structs, c.enums)
        for p in problems:
            c.fail(f"{w.kind_name}: {key}: {p}")
        if not problems:
            c.ok(f"{key}: every key is one handoff's settings declare (deny_unknown_fields in src/config), "
                 "every enum value known")
    return settings, key


def duration(c: Check, pipeline: dict, key: str, default: str) -> float | None:
    """[pipeline] `key` in seconds, or None (a failure) when it is not a duration."""
    try:
        return duration_seconds(str(pipeline.get(key, default)))
    except ValueError as e:
        c.fail(f"[pipeline] {key}: {e}")
        return None


def matrix_file(c: Check, w: Workload, settings: dict, unset: str) -> tuple[str, str] | None:
    """(ConfigMap, key) of the matrix file [matrix] path names, mounted in the pods of `w`."""
    mpath = (settings.get("matrix") or {}).get("path")
    if not c.check(bool(mpath), f"[matrix] path {mpath}", unset):
        return None
    return mounted(c, w, mpath, mpath)


def served(c: Check, w: Workload, bind: str, bind_name: str, who: str, probes, hints: dict) -> None:
    """`w` listens on all interfaces, on its port named http, and its probes get the paths they
    should, routes it serves, on that port."""
    try:
        host, w.bport = bind_host_port(bind)
    except ValueError as e:
        c.fail(f"{bind_name}: {e}")
        host = ""
    c.checks([
        (host in ALL_INTERFACES,
         f"{bind_name} {bind}: all interfaces, reachable by the kubelet, Prometheus and the Service",
         (f"{bind_name} {bind}: the kubelet probes, Prometheus scrapes and the Service forwards to the pod IP, "
          f"which {host} does not answer on")),
        (w.ports.get("http") == w.bport, f"{w.kind_name}: containerPort named http = {bind_name} port {w.bport}",
         f"{w.kind_name}: containerPort named http is {w.ports.get('http')}, {bind_name} port is {w.bport}")])
    route_ok, route_bad = (("a route handoff serves", "is not among handoff's routes") if who == "handoff"
                           else (f"a GET route {who} serves", f"is not a GET route {who} serves"))
    for probe, want in probes:
        hg, at = (w.ctr.get(probe) or {}).get("httpGet"), f"{w.kind_name}: {probe}"
        if not hg:
            c.fail(f"{at}: missing, or not an httpGet probe" + hints.get(probe, ""))
            continue
        path, port = hg.get("path"), w.port(hg.get("port"))
        hint = hints["/readyz"] if probe != "readinessProbe" and path == "/readyz" else ""
        c.checks([
            (path == want, f"{at} path {path}", f"{at} path {path!r}: must be {want}{hint}"),
            (w.serves(path), f"{at} path {path} is {route_ok}",
             f"{at} path {path!r} {route_bad} ({w.route_list()})"),
            (port is not None and port == w.bport,
             f"{at} port {hg.get('port')} = containerPort {port} = {bind_name} port {w.bport}",
             f"{at} port {hg.get('port')!r} resolves to {port}, but {who} listens on {w.bport} ({bind_name})")])


def reached(c: Check, w: Workload, who: str, bind_name: str, front: set, front_bad: str = "") -> list[dict]:
    """The Services taking the pods of `w` reach the port it listens on (or `front`, a proxy's), its
    PodMonitors that port and /metrics. Returns the Services."""
    svcs = c.selecting("Service", w)
    for svc in svcs:
        for sp in (svc.get("spec") or {}).get("ports") or []:
            target = sp.get("targetPort", sp.get("port"))
            tp = w.pod_port(target)
            what = f"Service/{svc['metadata']['name']} port {sp.get('name')}: targetPort {target} -> {tp}"
            c.check(tp in front, what, f"{what}, " + (front_bad or f"{who} listens on {w.bport}"))
    for pm in c.selecting("PodMonitor", w):
        label = "PodMonitor" if who == "handoff" else f"PodMonitor/{pm['metadata']['name']}"
        endpoints = (pm.get("spec") or {}).get("podMetricsEndpoints") or []
        c.check(bool(endpoints), f"{label} has podMetricsEndpoints",
                f"{label}: spec.podMetricsEndpoints: a non-empty list (nothing is scraped otherwise)")
        for ep in endpoints:
            path = ep.get("path", "/metrics")
            c.checks([
                (w.pod_port(ep.get("port")) == w.bport, f"{label} port {ep.get('port')} -> {w.bport}",
                 f"{label} port {ep.get('port')!r} is not {who}'s port {w.bport} ({bind_name})"),
                (path == "/metrics" and w.serves(path), f"{label} path {path} is a GET route {who} serves",
                 f"{label} path {path!r} is not {who}'s /metrics route (routes: {w.route_list()})")])
    return svcs


def secret_references(c: Check, w: Workload, settings: dict) -> None:
    """Every secret the settings hold is a reference, not the secret itself; every `file:` (or
    /run/secrets/ path) they name is a mounted Secret's item, every `env:` variable is set from a
    Secret; the (Secret, key) pairs used go to `documented`."""
    key = pathlib.PurePosixPath(w.config_path or "its settings").name
    for field, v in ((f, v) for f, v, secret in secret_settings(settings) if secret):
        field += " (a Slack webhook URL)" if field.endswith(".url") else ""
        c.check(isinstance(v, str) and v.startswith(("file:", "env:")),
                f"{field} is a reference ({str(v).split(':', 1)[0]}:), not the secret itself",
                f"{field} is written in {key} itself, which is a ConfigMap in version control: make it "
                "file:/run/secrets/<dir>/<key>, a key of a Secret the Deployment mounts")
    mounts, env = w.secret_mounts(), {e.get("name"): e for e in w.ctr.get("env") or []}
    env_from = [(e.get("secretRef") or {}).get("name") for e in w.ctr.get("envFrom") or [] if "secretRef" in e]
    for field, v in ((f, v) for f, v, _ in secret_settings(settings) if isinstance(v, str)):
        where = f"{w.kind_name}: {field} = {v!r}"
        if v.startswith("env:"):
            name = v[4:]
            ref = ((env.get(name) or {}).get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                c.documented.setdefault((ref.get("name"), ref.get("key")), w.kind_name)
                c.ok(f"{w.kind_name}: {field}: ${name} from Secret {ref.get('name')} key {ref.get('key')}")
            elif name in env:
                c.fail(f"{where}: {name} is written in the Deployment, a manifest in version control: set it "
                       "with valueFrom.secretKeyRef")
            elif env_from:
                c.ok(f"{w.kind_name}: {field}: ${name} from envFrom Secret {', '.join(env_from)}")
            else:
                c.fail(f"{where}: the container does not set {name}: handoff refuses to start (environment "
                       "variable is not set)")
            continue
        if (path := v[5:] if v.startswith("file:") else v if v.startswith("/run/secrets/") else None) is None:
            continue
        p = pathlib.PurePosixPath(path)
        if (hit := mounts.get(str(p.parent))) is None:
            c.fail(f"{where}: no Secret is mounted at {p.parent}: handoff refuses to start (cannot read "
                   "secret file)")
        elif (key := p.name if hit[1] is None else hit[1].get(p.name)) is None:
            c.fail(f"{where}: Secret {hit[0]} is mounted at {p.parent} without a {p.name} item: handoff refuses "
                   "to start (cannot read secret file)")
        else:
            c.documented.setdefault((hit[0], key), w.kind_name)
            c.ok(f"{w.kind_name}: {field}: {path} comes from Secret {hit[0]} key {key}")


def security(c: Check, w: Workload) -> None:
    """Non-root user 65532, read-only root, no privilege escalation or capabilities, seccomp, no
    service account token, resources requested and memory limited."""
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
    c.checks((cond, f"{w.kind_name}: {ok}", f"{w.kind_name}: {bad}") for cond, ok, bad in rows)


def disruption_budget(c: Check, w: Workload, label: str) -> None:
    """One PodDisruptionBudget takes the pods of `w`, letting one go at a time."""
    found = [(p.get("spec") or {}).get("maxUnavailable") for p in c.selecting("PodDisruptionBudget", w)]
    c.check(found == [1], f"{label} maxUnavailable 1: drains take one replica at a time",
            f"{label}: want one with maxUnavailable 1, found {found}")


def same_sections(c: Check, key: str, s: dict, proc: Workload, proc_settings: dict, why: str) -> None:
    """[kafka], [topics] and [input] of `s` (the settings file `key`) are handoff.toml's; `why` they must be."""
    for section in ("kafka", "topics", "input"):
        mine, theirs = flat(s.get(section) or {}), flat(proc_settings.get(section) or {})
        diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
        c.check(not diff, f"[{section}] of {key} is the same as handoff.toml's ({proc.kind_name})",
                f"[{section}] of {key} differs from handoff.toml's at {', '.join(diff)}: {why}; keep the sections "
                "identical")


def same_image(c: Check, w: Workload, proc: Workload, why: str) -> None:
    """`w` runs the processors' image."""
    image = w.ctr.get("image")
    c.check(image == proc.ctr.get("image"),
            f"{w.kind_name}: image {image}, the processors' (kustomization.yaml's images: sets them all)",
            f"{w.kind_name}: image {image!r} != the processors' {proc.ctr.get('image')!r}: {why}")


def startup_window(c: Check, w: Workload, s: dict, who: str, assigned: str) -> None:
    """The startup probe allows 3 x [pipeline] connect_timeout: `who` answers nothing until it has
    reached Kafka, created its topics and assigned itself the topic it reads (`assigned`)."""
    if sp := w.ctr.get("startupProbe") or {}:
        window = sp.get("initialDelaySeconds", 0) + sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
        if (ct := duration(c, s.get("pipeline") or {}, "connect_timeout", "10s")) is not None:
            c.check(window >= 3 * ct,
                    f"{w.kind_name}: startupProbe allows {window}s >= 3 x [pipeline] connect_timeout {ct:g}s",
                    f"{w.kind_name}: startupProbe allows {window}s, less than 3 x [pipeline] connect_timeout "
                    f"({ct:g}s): {who} answers nothing until it has reached Kafka, created its topics and "
                    f"assigned {assigned}, each up to connect_timeout; the kubelet would restart it first")


def replicated(c: Check, w: Workload, who: str, caught_up: str, pdb_label: str) -> None:
    """2+ replicas, a rollout that adds a pod and waits for it to be ready (`caught_up`) before
    stopping one, a PodDisruptionBudget."""
    reps, strategy = w.spec.get("replicas", 1), w.spec.get("strategy") or {}
    ru = strategy.get("rollingUpdate") or {}
    c.checks([
        (isinstance(reps, int) and reps >= 2, f"replicas {reps}: a drain, a crash or a rollout leaves one serving",
         (f"replicas {reps!r}: want 2 or more; with one, a node drain or a crash takes {who} away until a "
          f"new pod has {caught_up}")),
        (strategy.get("type", "RollingUpdate") == "RollingUpdate" and ru.get("maxUnavailable") == 0
         and ru.get("maxSurge", "25%") not in (0, "0", "0%"),
         (f"rolling updates add a pod and wait for it to be ready before stopping one (maxSurge "
          f"{ru.get('maxSurge')}, maxUnavailable 0)"),
         (f"strategy {strategy!r}: want RollingUpdate with maxUnavailable 0 and a maxSurge: otherwise a replica "
          f"stops before its replacement has {caught_up}"))])
    disruption_budget(c, w, pdb_label)
