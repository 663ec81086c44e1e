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
  `handoff inbox`, at most one `handoff gateway`. Each one's settings file (--config) against the
  keys and enum values src/config declares (handoff refuses unknown keys), every secret it names
  (file:, env:, /run/secrets/) from a mounted Secret item or a secretKeyRef and shown in
  secret.example.yaml, the security context.
- Probes and ports against what handoff serves: the routes of src/serve.rs (the processors), of
  the inbox's router (src/inbox/web.rs) and of the gateway's (src/gateway/web.rs), on the port of
  [metrics], [inbox] or [gateway] bind, on all interfaces; the Services and PodMonitors reach that
  port and /metrics.
- The processors: grace period above shutdown_deadline, the matrix mount and copy, the
  ScaledObject against handoff.toml (group, topic, servers, SASL/TLS, maxReplicaCount =
  partitions) and its TriggerAuthentication's Secrets, a PodDisruptionBudget.
- The inbox: [kafka], [topics], [input] and matrix equal to the processors'; its people and
  roles; the startup window; sign-in through a proxy; the Ingress (every page, none of /metrics
  and the probes, public_url's host, TLS); cookie_key and secrets by reference; replicas,
  rollout, disruptions; the processors' image.
- The gateway: [kafka], [topics], [input] equal to the processors'; its agents' keys; the startup
  window; a PodMonitor job of its own; the grace period above its shutdown; replicas, rollout,
  disruptions; the processors' image.
- Across them all: each selector takes one Deployment's pods; the jobs the alert rules select; the
  Dockerfile (parsed, hadolint, its USER and CMD against the Deployments).

This file is the driver: it loads the kustomization, runs the groups of checks (the modules beside
it, each a few functions taking the Check first) and prints the report.
  checks_schemas.py    every object against its schema
  checks_workload.py   a Deployment running handoff, and what every Deployment is checked for
  checks_processor.py  the processors (`handoff run`), their ScaledObject
  checks_inbox.py      the inbox (`handoff inbox`), its Ingress
  checks_gateway.py    the agents' HTTP gateway (`handoff gateway`)
  checks_across.py     selectors, the jobs the alert rules select, the Secret keys shown
  checks_image.py      the Dockerfile
  rust_sources.py      what handoff's Rust sources declare: routes, router, settings

Prints a report and exits 1 when anything fails (2 when it cannot run at all).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the manifests (the modules below are imported from here)

try:
    import yaml
    from kubernetes_validate import utils as kv

    from checks_across import check_monitoring, check_secrets_shown, check_selectors
    from checks_gateway import check_gateway
    from checks_image import check_dockerfile
    from checks_inbox import check_inbox
    from checks_processor import check_processors, processor_settings
    from checks_schemas import check_schemas
    from checks_workload import SUBCOMMANDS, Workload, selector_matches, selector_of
    from rust_sources import rust_config_schema
except ImportError as e:  # pragma: no cover - depends on the environment
    print(f"check.py needs kubernetes-validate, jsonschema and PyYAML: {e}\n  python3 -m venv ~/.cache/handoff/"
          "deploy-venv && ~/.cache/handoff/deploy-venv/bin/pip install -r deploy/kubernetes/requirements.txt",
          file=sys.stderr)
    sys.exit(2)

HERE = pathlib.Path(__file__).resolve().parent


class Report:
    """What passed and what failed, printed as it goes."""

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
        """`ok` when `cond` holds, else the failure `bad`; returns `cond`."""
        if cond:
            self.ok(ok)
        else:
            self.fail(bad or ok)
        return cond

    def checks(self, rows) -> None:
        """Several checks, as (condition, ok message, failure message) rows."""
        for row in rows:
            self.check(*row)


def load_docs(path: pathlib.Path) -> list[dict]:
    """The YAML documents of a file, the empty ones left out."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


class Check(Report):
    """The report, and what the groups of checks read: the paths (from the command line), the objects
    of the kustomization and of the examples, the generated ConfigMaps, the settings' declarations, and
    the (Secret, key) pairs found used."""

    def __init__(self, args) -> None:
        super().__init__()
        self.kdir = args.dir.resolve()
        self.repo = (args.repo or self.kdir.parent.parent).resolve()
        src = self.repo / "src"
        self.routes_src = args.routes_src or [src / "serve.rs"]
        self.inbox_routes_src = args.inbox_routes_src or src / "inbox" / "web.rs"
        self.gateway_routes_src = args.gateway_routes_src or src / "gateway" / "web.rs"
        # Where a router's path consts may be declared (`crate::trust::JWKS_PATH`); a router's own
        # file and the processors' routes are read after these, so their declarations win.
        self.const_src = sorted(src.rglob("*.rs"))
        self.config_src = args.config_src or [*sorted((src / "config").glob("*.rs")), src / "event" / "mod.rs"]
        self.versions = args.kube_version or ["1.27", kv.latest_version()]
        self.dockerfile = args.dockerfile or self.repo / "Dockerfile"
        self.docs, self.examples, self.generators = [], [], {}
        self.documented: dict[tuple[str, str], str] = {}  # (Secret, key) -> who uses it
        self.structs, self.enums = rust_config_schema([s for s in self.config_src if s.is_file()])

    def rel(self, p) -> str:
        """A path as the messages show it: from the repository's root when it is inside."""
        p = pathlib.Path(p).resolve()
        return str(p.relative_to(self.repo)) if p.is_relative_to(self.repo) else str(p)

    def find(self, kind: str, pool=None) -> list[dict]:
        """The documents of `kind` in `pool` (by default the kustomization's: resources, generated)."""
        return [d for _, d in (self.docs if pool is None else pool) if d.get("kind") == kind]

    def selecting(self, kind: str, w: Workload | None) -> list[dict]:
        """The documents of `kind` whose selector takes the pods of `w`."""
        return [d for d in self.find(kind) if w and selector_matches(selector_of(d), w.labels)]

    def run(self) -> int:
        """Runs every group of checks, prints the summary; the exit status."""
        if self.kustomization():
            check_schemas(self)
            self.deployments()
        print()
        if self.failures:
            print(f"{len(self.failures)} problem(s):")
            for f in self.failures:
                print(f"  - {f}")
        print(f"deploy/kubernetes/check.py: {self.passed} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0

    def kustomization(self) -> bool:
        """Loads the kustomization: its resources, its ConfigMaps assembled as kustomize generates them,
        the *.example.yaml files; checks that every file is there and listed. False when there is none."""
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

    def deployments(self) -> None:
        """The Deployments, told apart by subcommand, and the groups of checks on them."""
        workloads = [Workload(d) for d in self.find("Deployment")]
        by_cmd = {c: [w for w in workloads if w.subcommand == c] for c in SUBCOMMANDS}
        if strays := [w.kind_name for w in workloads if w.subcommand not in SUBCOMMANDS]:
            self.fail(f"{', '.join(strays)}: no container runs handoff {' or '.join(SUBCOMMANDS)} (args)")
        if len(by_cmd["run"]) != 1:
            return self.fail(f"expected one Deployment running `handoff run`, found {len(by_cmd['run'])}")
        for cmd in ("inbox", "gateway"):
            if len(by_cmd[cmd]) > 1:
                return self.fail(f"expected at most one Deployment running `handoff {cmd}`, found {len(by_cmd[cmd])}")
        proc, inbox, gateway = by_cmd["run"][0], (by_cmd["inbox"] or [None])[0], (by_cmd["gateway"] or [None])[0]
        if (settings := processor_settings(self, proc)) is None:
            return
        proc_matrix = check_processors(self, proc, settings)
        if inbox is None:
            self.section("the inbox")
            self.note("no Deployment runs `handoff inbox`: the inbox's checks are skipped")
        else:
            check_inbox(self, inbox, proc, settings, proc_matrix)
        if gateway is None:
            self.section("the gateway")
            self.note("no Deployment runs `handoff gateway`: the gateway's checks are skipped")
        else:
            check_gateway(self, gateway, proc, settings)
        check_selectors(self, workloads)
        check_monitoring(self, proc, inbox)
        check_secrets_shown(self)
        check_dockerfile(self, proc, [w for w in workloads if w is not proc])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=pathlib.Path, default=HERE, help="the kustomization directory")
    ap.add_argument("--repo", type=pathlib.Path, help="repository root (default: DIR/../..)")
    ap.add_argument("--routes-src", type=pathlib.Path, action="append",
                    help="file(s) declaring handoff's HTTP routes (default: REPO/src/serve.rs)")
    ap.add_argument("--inbox-routes-src", type=pathlib.Path,
                    help="the inbox's router (default: REPO/src/inbox/web.rs); its consts come from --routes-src")
    ap.add_argument("--gateway-routes-src", type=pathlib.Path,
                    help="the gateway's router (default: REPO/src/gateway/web.rs); consts from the files beside it")
    ap.add_argument("--config-src", type=pathlib.Path, action="append",
                    help="Rust files declaring the settings (default: REPO/src/config/*.rs and REPO/src/event/mod.rs)")
    ap.add_argument("--kube-version", action="append",
                    help="Kubernetes version(s) to validate against (default: 1.27 and the newest bundled)")
    ap.add_argument("--dockerfile", type=pathlib.Path, help="default: REPO/Dockerfile")
    return Check(ap.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
