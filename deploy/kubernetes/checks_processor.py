"""The processors (`handoff run`): handoff.toml as mounted, their probes and ports against the routes
of src/serve.rs and [metrics] bind, the grace period against shutdown_deadline, the matrix's
hot-reloaded ConfigMap and its copy, the ScaledObject and its TriggerAuthentication against
handoff.toml, the PodDisruptionBudget; no [inbox], [notify] or [gateway] in handoff.toml. A group of check.py's checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks_workload import (
    Workload,
    disruption_budget,
    duration,
    matrix_file,
    reached,
    secret_references,
    security,
    served,
    settings_file,
)
from rust_sources import served_routes

if TYPE_CHECKING:
    from check import Check


def processor_settings(c: Check, proc: Workload) -> dict | None:
    """handoff.toml as the processors mount it (a directory mount, for the matrix's hot reload), without
    the inbox's and the gateway's sections. None when it cannot be read."""
    c.section(f"handoff.toml, as mounted ({proc.kind_name}, `handoff run`)")
    settings, key = settings_file(c, proc, "a settings change rolls the pods (settings are read at start-up)",
                                  "running member")
    if (m := proc.file_source(proc.config_path)[0] if proc.config_path else None) is not None:
        mp = m.get("mountPath")
        c.check(not m.get("subPath"), f"{mp} is a directory mount (subPath mounts are never updated)",
                f"{mp} uses subPath: the kubelet never updates it, so the matrix is never reloaded")
    if settings is None:
        return None
    for section, owner in (("inbox", "inbox"), ("notify", "inbox"), ("gateway", "gateway")):
        c.check(section not in settings, f"{key} has no [{section}] (it is handoff {owner}'s, in its own file)",
                f"{key} has a [{section}] section: `handoff run` does not use it, yet validates it and resolves "
                "its secrets at start-up (a mistake there, or a Secret it names and the processors do not "
                f"mount, stops them); it belongs in the {owner}'s settings file")
    return settings


def check_processors(c: Check, proc: Workload, settings: dict) -> tuple[str, str] | None:
    """The processors' probes, ports, shutdown, matrix, secrets, security and autoscaling. Returns
    (ConfigMap, key) of their matrix."""
    metrics, pipeline = settings.get("metrics") or {}, settings.get("pipeline") or {}
    c.section(f"probes and ports against handoff's routes ({', '.join(map(c.rel, c.routes_src))}) "
              "and [metrics] bind")
    if absent := [s for s in c.routes_src if not s.is_file()]:
        c.fail(f"routes source missing: {', '.join(map(str, absent))}")
    proc.routes = served_routes([s for s in c.routes_src if s.is_file()])
    c.note(f"routes found: {proc.route_list()}")
    c.check(metrics.get("enabled", True) is True, "[metrics] enabled: the HTTP server runs",
            "[metrics] enabled = false: no HTTP server, so every probe fails")
    served(c, proc, metrics.get("bind", "127.0.0.1:9464"), "[metrics] bind", "handoff",
           (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")),
           {"/readyz": " (liveness on /readyz would restart members during a broker outage)"})
    reached(c, proc, "handoff", "[metrics] bind", {proc.bport})

    c.section("shutdown, matrix reload, secrets, security")
    tgps = proc.pod.get("terminationGracePeriodSeconds", 30)
    if (deadline := duration(c, pipeline, "shutdown_deadline", "20s")) is not None:
        c.check(tgps > deadline, f"terminationGracePeriodSeconds {tgps} > shutdown_deadline {deadline:g}s",
                f"terminationGracePeriodSeconds {tgps} is not above shutdown_deadline {deadline:g}s: SIGKILL "
                "would cut the drain and commit short")
    proc_matrix = matrix_file(c, proc, settings, "[matrix] path unset: the built-in matrix, which no ConfigMap "
                                                 "edit can change")
    if proc_matrix:
        (g, key), copy = proc_matrix, c.rel(c.kdir / proc_matrix[1])
        c.check(not c.generators[g]["hashed"],
                f"ConfigMap {g} has disableNameSuffixHash: an edit updates it in place, no restart",
                f"ConfigMap {g} gets a hash suffix: every matrix edit would roll every pod instead of a hot "
                "reload")
        if (src := c.repo / "deploy" / "matrix.toml").is_file():
            same = c.generators[g]["data"][key] == src.read_text()
            c.check(same, f"{key} is identical to deploy/matrix.toml",
                    f"{copy} differs from deploy/matrix.toml: cp deploy/matrix.toml {copy}")
    watch = (settings.get("matrix") or {}).get("watch")
    c.check(bool(watch), f"[matrix] watch = {watch!r}: ConfigMap updates are reloaded",
            "[matrix] watch unset: a ConfigMap update would not be reloaded")
    secret_references(c, proc, settings)
    security(c, proc)

    c.section("autoscaling, disruptions")
    sos = c.find("ScaledObject")
    c.checks([("replicas" not in proc.spec, "Deployment sets no replicas: the ScaledObject's HPA owns them",
               "Deployment sets replicas: every kubectl apply would reset what the HPA chose"),
              (len(sos) == 1, "one ScaledObject", f"{len(sos)} ScaledObjects")])
    for so in sos:
        scaledobject(c, so, proc, settings)
    disruption_budget(c, proc, "PodDisruptionBudget")
    return proc_matrix


def scaledobject(c: Check, so: dict, proc: Workload, settings: dict) -> None:
    """The ScaledObject against handoff.toml: its Deployment, replicas, group, topic, cluster."""
    kafka, topics, spec = settings.get("kafka") or {}, settings.get("topics") or {}, so.get("spec") or {}
    ref, parts = spec.get("scaleTargetRef") or {}, kafka.get("partitions", 4)
    lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    c.checks([
        (ref.get("name") == proc.name and ref.get("kind", "Deployment") == "Deployment",
         f"scaleTargetRef Deployment/{ref.get('name')}", f"scaleTargetRef {ref!r} is not Deployment/{proc.name}"),
        (isinstance(lo, int) and lo >= 1, f"minReplicaCount {lo} >= 1 (members fire the escalation deadlines)",
         f"minReplicaCount {lo!r}: with no member no deadline fires; want >= 1"),
        (hi == parts, f"maxReplicaCount {hi} = kafka.partitions {parts}",
         f"maxReplicaCount {hi!r} != kafka.partitions {parts}: members beyond the partitions sit idle")])
    kts = [t for t in spec.get("triggers") or [] if isinstance(t, dict) and t.get("type") == "kafka"]
    if not c.check(len(kts) == 1, "one kafka trigger", f"{len(kts)} kafka triggers"):
        return
    md = kts[0].get("metadata") or {}
    for mk, want, what in (("consumerGroup", kafka.get("group_id", "handoff"), "kafka.group_id"),
                           ("topic", topics.get("input", "agent.actions"), "topics.input")):
        c.check(md.get(mk) == want, f"trigger {mk} {md.get(mk)} = {what}",
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
    c.checks([
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
        trigger_authentication(c, (kts[0].get("authenticationRef") or {}).get("name"), need, proc)


def trigger_authentication(c: Check, name, need: set, proc: Workload) -> None:
    """The TriggerAuthentication gives KEDA the credentials, from the Secrets the processors mount."""
    tas = [d for d in c.find("TriggerAuthentication") if (d.get("metadata") or {}).get("name") == name]
    if not c.check(bool(tas), f"authenticationRef {name}: a TriggerAuthentication here",
                   f"authenticationRef {name!r}: no such TriggerAuthentication in the kustomization"):
        return
    refs = [x for x in (tas[0].get("spec") or {}).get("secretTargetRef") or [] if isinstance(x, dict)]
    params = {x.get("parameter") for x in refs}
    for x in (x for x in refs if isinstance(x.get("key"), str)):
        c.documented.setdefault((x.get("name"), x["key"]), f"TriggerAuthentication/{name}")
    foreign = sorted(map(str, {x.get("name") for x in refs} - {s for s, _ in proc.secret_mounts().values()}))
    c.checks([
        (need <= params, f"TriggerAuthentication gives {', '.join(sorted(map(str, params)))}",
         f"TriggerAuthentication lacks {', '.join(sorted(need - params))}"),
        (not foreign, "TriggerAuthentication reads the Secrets the Deployment mounts",
         f"TriggerAuthentication reads Secrets the Deployment does not mount: {', '.join(foreign)}")])
