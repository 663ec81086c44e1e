"""Across the Deployments: each selector takes the pods of exactly one; the PodMonitors give the jobs
the alert rules select (the processors' rules job `handoff`, the rules on the inbox's metrics its own
job); every Secret key a manifest uses is shown in secret.example.yaml. A group of check.py's checks.
"""

from __future__ import annotations

import pathlib
import re
from typing import TYPE_CHECKING

import yaml

from checks_workload import Workload, selector_matches, selector_of

if TYPE_CHECKING:
    from check import Check

INBOX_METRIC_PREFIXES = ("handoff_inbox_", "handoff_notification")  # only `handoff inbox` exports these


def rules_jobs(path: pathlib.Path) -> list[tuple[str, set[str], set[str]]]:
    """(rule name, metric names, jobs selected) of every rule of a Prometheus rules file."""
    groups = ((yaml.safe_load(path.read_text()) or {}).get("groups") or []) if path.is_file() else []
    return [(rule.get("alert") or rule.get("record") or "?",
             set(re.findall(r"\b(handoff_[a-z0-9_]+)", str(rule.get("expr", "")))),
             set(re.findall(r'job="([^"]+)"', str(rule.get("expr", "")))))
            for g in groups for rule in g.get("rules") or []]


def check_selectors(c: Check, workloads: list[Workload]) -> None:
    """Each selector takes the pods of exactly one Deployment (its own, for a Deployment's)."""
    c.section("selectors")
    sel = [(w.kind_name, w.spec.get("selector"), w) for w in workloads]
    sel += [(f"{w.kind_name} topologySpreadConstraints[{i}]", t.get("labelSelector"), w)
            for w in workloads for i, t in enumerate(w.pod.get("topologySpreadConstraints") or [])]
    sel += [(f"{k}/{d['metadata']['name']}", selector_of(d), None)
            for k in ("Service", "PodDisruptionBudget", "PodMonitor") for d in c.find(k)]
    for what, s, own in sel:
        hits = [w for w in workloads if selector_matches(s, w.labels)]
        if len(hits) == 1 and own in (None, hits[0]):
            c.ok(f"{what} selects the pods of {hits[0].kind_name}")
        elif not hits:
            c.fail(f"{what} selector {s!r} does not match the pod labels of any Deployment "
                   f"({'; '.join(f'{w.name}: {w.labels}' for w in workloads)})")
        else:
            c.fail(f"{what} selector {s!r} matches the pods of {', '.join(w.kind_name for w in hits)}: each "
                   "must take the pods of one (the processors', the inbox's and the gateway's are told apart by "
                   "app.kubernetes.io/name)")


def check_monitoring(c: Check, proc: Workload, inbox: Workload | None) -> None:
    """The PodMonitors give the jobs the alert rules select: the processors' for their rules, the
    inbox's own for the rules on its metrics."""
    c.section("monitoring: the jobs the alert rules select")
    rules = rules_jobs(c.repo / "deploy" / "prometheus" / "handoff.rules.yml")

    def job_of(pm: dict, w: Workload) -> str | None:
        jl = (pm.get("spec") or {}).get("jobLabel")
        return w.labels.get(jl) if jl else None

    def gives(pm: dict, job) -> str:
        return f"gives job={job or '<namespace>/' + pm['metadata']['name']!r}"

    # A rule is the inbox's when it reads the inbox's metrics or selects only the inbox's job (with no inbox
    # deployed, the job the shipped inbox PodMonitor gives).
    inbox_pms = c.selecting("PodMonitor", inbox)
    inbox_job = (job_of(inbox_pms[0], inbox) if len(inbox_pms) == 1 else None) if inbox else "handoff-inbox"

    def inbox_rule(metrics, js) -> bool:
        return any(m.startswith(INBOX_METRIC_PREFIXES) for m in metrics) or bool(inbox_job and js == {inbox_job})

    jobs, proc_jobs = {j for _, ms, js in rules if not inbox_rule(ms, js) for j in js}, set()
    proc_pms = c.selecting("PodMonitor", proc)
    c.check(len(proc_pms) == 1, "one PodMonitor scrapes the processors",
            f"{len(proc_pms)} PodMonitors select the processors' pods: want one (with none, the alert rules "
            "have no data, HandoffDown: up{job=...} included; with two, every member is scraped twice)")
    for pm in proc_pms:
        jl, job = (pm.get("spec") or {}).get("jobLabel"), job_of(pm, proc)
        proc_jobs.add(job)
        c.check(job is not None and all(j == job for j in jobs),
                f'PodMonitor jobLabel {jl} gives job="{job}", the job the alert rules select '
                f"({', '.join(sorted(jobs)) or 'none'})",
                f"PodMonitor {gives(pm, job)}; the alert rules select job {', '.join(sorted(jobs))}")
    if inbox is None or not c.check(
            len(inbox_pms) == 1, f"PodMonitor/{inbox_pms[0]['metadata']['name'] if inbox_pms else '?'} scrapes "
            "the inbox", f"{len(inbox_pms)} PodMonitors select the inbox's pods: want one, or the inbox's metrics "
            "(handoff_inbox_*, handoff_notification*) are never scraped and HandoffNotificationsFailing has no "
            "data"):
        return
    pm, n = inbox_pms[0], inbox_pms[0]["metadata"]["name"]
    c.check(inbox_job is not None and inbox_job not in proc_jobs,
            f"PodMonitor/{n} jobLabel {(pm.get('spec') or {}).get('jobLabel')} gives job=\"{inbox_job}\", apart "
            f"from the processors' ({', '.join(sorted(j for j in proc_jobs if j)) or 'none'})",
            f"PodMonitor/{n} {gives(pm, inbox_job)}: " + (
                "the processors' job, so their rules (HandoffDown: up{job=...}) would count inbox pods as "
                "members" if inbox_job in proc_jobs
                else "set jobLabel to a label of the inbox's pods, for a job of its own"))
    for name, ms, js in (r for r in rules if inbox_rule(r[1], r[2])):
        c.check(not js or js == {inbox_job},
                f"rule {name} (on {', '.join(sorted(ms))}) selects {f'job {inbox_job}' if js else 'any job'}: "
                "the inbox's data reaches it",
                f"rule {name} selects job {', '.join(sorted(js))}, but the inbox's metrics come with "
                f"job={inbox_job!r}: it never fires")


def check_secrets_shown(c: Check) -> None:
    """Every (Secret, key) the checks found used is shown in secret.example.yaml."""
    c.section("Secrets: every key a manifest uses is in secret.example.yaml")
    shown: dict[str, set] = {}
    for d in c.find("Secret", c.examples):
        keys = {*(d.get("data") or {}), *(d.get("stringData") or {})}
        shown.setdefault(d["metadata"]["name"], set()).update(keys)
    for (secret, key), who in sorted(c.documented.items(), key=lambda item: tuple(map(str, item[0]))):
        c.check(key in shown.get(secret, set()), f"Secret {secret} key {key} (used by {who}) is in the examples",
                f"Secret {secret} key {key} is used by {who} but not shown in secret.example.yaml: the example "
                "lists what to create; add it there")
