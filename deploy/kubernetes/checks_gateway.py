"""The gateway (`handoff gateway`): gateway.toml as mounted, its [kafka], [topics], [input] the
processors', its agents' keys, its probes and ports against the routes of its router
(src/gateway/web.rs) and [gateway] bind, the startup window, its Service and its PodMonitor (a job
of its own), the grace period against its shutdown, its image, security, replicas, rollouts and
disruptions. A group of check.py's checks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from checks_workload import (
    Workload,
    duration_seconds,
    reached,
    replicated,
    same_image,
    same_sections,
    secret_references,
    security,
    served,
    settings_file,
    startup_window,
)
from rust_sources import router_routes, rust_str_consts

if TYPE_CHECKING:
    from check import Check

# At exit the gateway flushes its producer for 5 s at most (src/gateway/mod.rs, `run`).
FLUSH_SECONDS = 5


def check_gateway(c: Check, w: Workload, proc: Workload, proc_settings: dict) -> None:
    """`handoff gateway`: its settings against the processors', its agents, probes, ports, monitoring,
    shutdown, secrets, security, image, replicas and disruptions."""
    c.section(f"the gateway: {w.config_path}, as mounted ({w.kind_name}, `handoff gateway`)")
    s, key = settings_file(c, w, "a settings change (an agent's key) rolls the gateway pods (it reads them "
                                 "once, at start-up)", "gateway pod")
    if s is None:
        return
    gw = s.get("gateway") or {}
    same_sections(c, key, s, proc, proc_settings, "the gateway writes the processors' input and reads their "
                  "verdicts, on the same cluster with the same credentials")
    for section in ("inbox", "notify"):
        c.check(section not in s, f"{key} has no [{section}] (the inbox's, in inbox.toml)",
                f"{key} has a [{section}] section: `handoff gateway` does not use it, yet validates it and "
                "resolves its secrets at start-up, which the gateway pods do not mount")
    gateway_agents(c, gw, key)
    gateway_served(c, w, s)

    c.section("the gateway: who reaches it, shutdown, secrets, security, image")
    svcs = reached(c, w, "the gateway", "[gateway] bind", {w.bport})
    c.check(bool(svcs), f"Service {', '.join(d['metadata']['name'] for d in svcs)} takes the gateway's pods",
            "no Service selects the gateway's pods: agents have nothing to call")
    gateway_job(c, w, proc)
    pub = gw.get("public_url")
    if pub is None:
        c.note(f"[gateway] public_url unset: the OpenAPI document names http://{gw.get('bind', '127.0.0.1:9880')}")
    else:
        c.check(str(pub).startswith(("http://", "https://")), f"[gateway] public_url {pub}",
                f"[gateway] public_url {pub!r} must start with http:// or https:// (the gateway refuses it)")
    tgps = w.pod.get("terminationGracePeriodSeconds", 30)
    try:
        st = duration_seconds(str(gw.get("submit_timeout", "10s")))
        need = 2 * st + FLUSH_SECONDS
        c.check(tgps > need, f"terminationGracePeriodSeconds {tgps} > 2 x submit_timeout {st:g}s + the "
                f"producer's flush {FLUSH_SECONDS}s",
                f"terminationGracePeriodSeconds {tgps} is not above {need:g}s (a submission in flight: its body "
                f"read and its acknowledgement, up to [gateway] submit_timeout {st:g}s each, then the producer's "
                f"flush, {FLUSH_SECONDS}s): SIGKILL would cut an accepted submission short")
    except ValueError as e:
        c.fail(f"[gateway] submit_timeout: {e}")
    secret_references(c, w, s)
    security(c, w)
    same_image(c, w, proc, "the gateway checks submissions as the processors check their input, and reads "
                           "their verdicts: it must be their version")

    c.section("the gateway: replicas, rollouts, disruptions")
    replicated(c, w, "the gateway", "caught up with the verdicts", "PodDisruptionBudget for the gateway")


def gateway_agents(c: Check, gw: dict, key: str) -> None:
    """[[gateway.agents]]: each a key's SHA-256 (64 hex digits, not another's) and agent ids."""
    agents = [a for a in gw.get("agents") or [] if isinstance(a, dict)]
    if not agents:
        return c.note(f"[[gateway.agents]] is empty in {key}: no agent can use the gateway until one is added "
                      "(`handoff token --agent`)")
    bad, seen = [], set()
    for i, a in enumerate(agents):
        h = str(a.get("key_sha256", ""))
        if not re.fullmatch(r"[0-9a-fA-F]{64}", h):
            bad.append(f"gateway.agents[{i}].key_sha256: not 64 hex digits (see `handoff token --agent`)")
        elif h.lower() in seen:
            bad.append(f"gateway.agents[{i}].key_sha256: the same key as an agent listed before")
        seen.add(h.lower())
        if not a.get("agent_ids"):
            bad.append(f"gateway.agents[{i}].agent_ids: empty")
    c.check(not bad, f"{len(agents)} agent(s), each with a key's SHA-256 and agent ids",
            "; ".join(bad) + ": the gateway refuses to start (exit 2)")
    if zeros := [str(a.get("name")) for a in agents if str(a.get("key_sha256", "")).strip("0") == ""]:
        c.note(f"gateway agent(s) {', '.join(zeros)}: key_sha256 is the placeholder (64 zeros), which no key "
               "matches; replace it with what `handoff token --agent` prints")


def gateway_served(c: Check, w: Workload, s: dict) -> None:
    """The gateway's probes and ports against the routes of its router and [gateway] bind; the
    startup probe's window against connect_timeout."""
    src, gw = c.gateway_routes_src, s.get("gateway") or {}
    router = c.rel(src)
    c.section(f"the gateway: probes and ports against its routes ({router}) and [gateway] bind")
    if not src.is_file():
        c.fail(f"the gateway's router is missing: {src}")
    else:
        own = sorted(src.parent.glob("*.rs")) + [x for x in c.routes_src if x.is_file()]
        consts = rust_str_consts(c.const_src + own)
        w.routes, unresolved = router_routes(src, consts)
        for u in unresolved:
            c.fail(f"{router}: .route({u}, ...) names a path const found in none of {c.rel(src.parent)}/*.rs")
    c.note("gateway routes found: " + (", ".join(f"{'/'.join(sorted(m.upper() for m in v['methods']))} {p}"
                                                     for p, v in sorted(w.routes.items())) or "none"))
    served(c, w, gw.get("bind", "127.0.0.1:9880"), "[gateway] bind", "the gateway",
           (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")),
           {"/readyz": " (on /readyz it would restart the gateway while it reads the verdicts)",
            "startupProbe": " (the gateway answers no request until it has reached Kafka: without one, the "
                            "liveness probe restarts it while it connects)"})
    startup_window(c, w, s, "the gateway", (s.get("topics") or {}).get("verdicts", "agent.verdicts"))


def gateway_job(c: Check, w: Workload, proc: Workload) -> None:
    """One PodMonitor scrapes the gateway, as a job of its own: not the processors' (their rules,
    HandoffDown among them, select their job)."""
    pms = c.selecting("PodMonitor", w)
    if not c.check(len(pms) == 1, f"PodMonitor/{pms[0]['metadata']['name'] if pms else '?'} scrapes the gateway",
                   f"{len(pms)} PodMonitors select the gateway's pods: want one (handoff_gateway_* is never "
                   "scraped with none, twice with two)"):
        return

    def job(pm: dict, x: Workload) -> str | None:
        jl = (pm.get("spec") or {}).get("jobLabel")
        return x.labels.get(jl) if jl else None

    mine, theirs = job(pms[0], w), {job(pm, proc) for pm in c.selecting("PodMonitor", proc)}
    n = pms[0]["metadata"]["name"]
    c.check(mine is not None and mine not in theirs,
            f"PodMonitor/{n} gives job=\"{mine}\", apart from the processors' ({', '.join(map(str, theirs))})",
            f"PodMonitor/{n} gives job={mine or '<namespace>/' + n!r}: " + (
                "the processors' job, so their rules (HandoffDown: up{job=...}) would count gateway pods as "
                "members" if mine in theirs else "set jobLabel to a label of the gateway's pods, for a job of "
                "its own"))
