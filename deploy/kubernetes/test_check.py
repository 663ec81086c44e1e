#!/usr/bin/env python3
"""Tests of check.py: the shipped manifests pass, and each deliberately broken copy fails for
the reason it was broken.

    python3 deploy/kubernetes/test_check.py     (with kubernetes-validate installed)

Every test copies what check.py reads (deploy/kubernetes, deploy/matrix.toml, the alert rules,
the Dockerfile and .dockerignore) into a temporary tree with a stand-in routes source that
serves /metrics, /healthz, /readyz and /-/reload, breaks one thing, and runs the check on it.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import shutil
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ beside the manifests

import check  # noqa: E402
from kubernetes_validate import utils as kv  # noqa: E402

ROUTES = """\
//! A stand-in for src/serve.rs, where handoff declares the paths it serves.
// "/not-a-route" in a comment does not count.
pub const METRICS_PATH: &str = "/metrics";
pub const HEALTHZ_PATH: &str = "/healthz";
pub const READYZ_PATH: &str = "/readyz";
pub const RELOAD_PATH: &str = "/-/reload";
"""

class Tree:
    """A copy of what check.py reads, to break."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        shutil.copytree(
            HERE, root / "deploy/kubernetes", ignore=shutil.ignore_patterns("__pycache__", "*.py")
        )
        (root / "deploy/prometheus").mkdir(parents=True)
        shutil.copy(REPO / "deploy/matrix.toml", root / "deploy/matrix.toml")
        shutil.copy(
            REPO / "deploy/prometheus/handoff.rules.yml",
            root / "deploy/prometheus/handoff.rules.yml",
        )
        shutil.copy(REPO / "Dockerfile", root / "Dockerfile")
        shutil.copy(REPO / ".dockerignore", root / ".dockerignore")
        (root / "src").mkdir()
        (root / "src/serve.rs").write_text(ROUTES)
        # The inbox's router and the settings' declarations, as they are (tests break copies).
        for rel in ["src/inbox/web.rs", "src/event/mod.rs"] + [
            str(p.relative_to(REPO)) for p in sorted((REPO / "src/config").glob("*.rs"))
        ]:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / rel, root / rel)

    def edit(self, rel: str, old: str, new: str) -> None:
        """Replaces `old` (which must be there, so no test breaks nothing) with `new`."""
        path = self.root / rel
        text = path.read_text()
        if old not in text:
            raise AssertionError(f"{old!r} is not in {rel}: the test would break nothing")
        path.write_text(text.replace(old, new, 1))

    def run(self) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = check.main(
                [
                    "--dir",
                    str(self.root / "deploy/kubernetes"),
                    "--routes-src",
                    str(self.root / "src/serve.rs"),
                    "--kube-version",
                    "1.37",
                ]
            )
        return rc, out.getvalue()


class CheckTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.tree = Tree(pathlib.Path(self._tmp.name))

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def assertFails(self, *expected: str) -> None:
        rc, out = self.tree.run()
        failures = [line for line in out.splitlines() if line.startswith("  FAIL")]
        self.assertEqual(rc, 1, f"the check passed a broken tree:\n{out}")
        for e in expected:
            self.assertTrue(
                any(e in f for f in failures),
                f"no failure mentions {e!r}; failures:\n" + "\n".join(failures),
            )

    # ---- the shipped tree -------------------------------------------------------------------

    def test_shipped_manifests_pass(self) -> None:
        rc, out = self.tree.run()
        self.assertEqual(rc, 0, out)
        self.assertIn("0 failed", out)

    def test_kubernetes_validate_has_no_schema_for_the_custom_resources(self) -> None:
        # Why check.py checks them itself: on its own, kubernetes-validate does not validate
        # them at all (its command line prints WARN and exits 0).
        for doc in (
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": "x"},
                "spec": {},
            },
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PodMonitor",
                "metadata": {"name": "x"},
                "spec": {},
            },
        ):
            with self.assertRaises(kv.SchemaNotFoundError):
                kv.validate(doc, "1.37", strict=True)

    # ---- probes and ports against what handoff serves ---------------------------------------

    def test_a_probe_path_handoff_does_not_serve(self) -> None:
        self.tree.edit("deploy/kubernetes/deployment.yaml", "path: /healthz", "path: /health")
        self.assertFails("livenessProbe path '/health'")

    def test_liveness_on_readiness(self) -> None:
        self.tree.edit("deploy/kubernetes/deployment.yaml", "path: /healthz", "path: /readyz")
        self.assertFails("liveness on /readyz would restart members during a broker outage")

    def test_a_route_missing_from_the_source(self) -> None:
        self.tree.edit("src/serve.rs", 'pub const READYZ_PATH: &str = "/readyz";', "")
        self.assertFails("readinessProbe path '/readyz' is not among handoff's routes")

    def test_a_route_only_in_a_comment_does_not_count(self) -> None:
        self.tree.edit("deploy/kubernetes/deployment.yaml", "path: /healthz", "path: /not-a-route")
        self.assertFails("livenessProbe path '/not-a-route' is not among handoff's routes")

    def test_bind_port_differs_from_the_container_port(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/handoff.toml", 'bind = "0.0.0.0:9464"', 'bind = "0.0.0.0:9465"'
        )
        self.assertFails(
            "handoff listens on 9465",
            "containerPort named http is 9464, [metrics] bind port is 9465",
        )

    def test_bind_on_loopback(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/handoff.toml", 'bind = "0.0.0.0:9464"', 'bind = "127.0.0.1:9464"'
        )
        self.assertFails("the kubelet probes the pod IP")

    def test_metrics_server_off(self) -> None:
        self.tree.edit("deploy/kubernetes/handoff.toml", "enabled = true", "enabled = false")
        self.assertFails("no HTTP server, so every probe fails")

    def test_container_port_differs(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/deployment.yaml", "containerPort: 9464", "containerPort: 8080"
        )
        self.assertFails("livenessProbe port 'http' resolves to 8080", "Service/handoff port http")

    def test_podmonitor_path(self) -> None:
        self.tree.edit("deploy/kubernetes/podmonitor.yaml", "path: /metrics", "path: /stats")
        self.assertFails("PodMonitor path '/stats'")

    # ---- schemas, and the custom resources' structure ---------------------------------------

    def test_core_schema_unknown_field(self) -> None:
        self.tree.edit("deploy/kubernetes/deployment.yaml", "readinessProbe:", "readinesProbe:")
        self.assertFails("deployment.yaml: Deployment/handoff: invalid against 1.37")

    def test_core_schema_wrong_type(self) -> None:
        self.tree.edit("deploy/kubernetes/pdb.yaml", "maxUnavailable: 1", "maxUnavailable: [1]")
        self.assertFails("pdb.yaml: PodDisruptionBudget/handoff: invalid against 1.37")

    def test_scaledobject_without_target(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/scaledobject.yaml",
            "  scaleTargetRef:\n",
            "  scaleTargetReference:\n",
        )
        self.assertFails(
            "spec.scaleTargetRef.name: required string", "spec.scaleTargetReference: unknown field"
        )

    def test_scaledobject_metadata_must_be_strings(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/scaledobject.yaml", 'lagThreshold: "100000"', "lagThreshold: 100000"
        )
        self.assertFails("metadata.lagThreshold: must be a string")

    def test_podmonitor_misspelt_endpoints(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/podmonitor.yaml", "podMetricsEndpoints:", "podMetricEndpoints:"
        )
        self.assertFails(
            "spec.podMetricEndpoints: unknown field", "spec.podMetricsEndpoints: a non-empty list"
        )

    def test_triggerauthentication_ref_without_key(self) -> None:
        self.tree.edit("deploy/kubernetes/scaledobject.yaml", "      key: ca.crt\n", "")
        self.assertFails("spec.secretTargetRef[2].key: required string")

    # ---- the kustomization ------------------------------------------------------------------

    def test_missing_resource(self) -> None:
        (self.tree.root / "deploy/kubernetes/pdb.yaml").unlink()
        self.assertFails("resources missing: pdb.yaml")

    def test_manifest_left_out_of_the_kustomization(self) -> None:
        self.tree.edit("deploy/kubernetes/kustomization.yaml", "  - pdb.yaml\n", "")
        self.assertFails("not in the kustomization's resources (and not *.example.yaml): pdb.yaml")

    def test_matrix_configmap_with_hash_suffix(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/kustomization.yaml",
            "disableNameSuffixHash: true",
            "disableNameSuffixHash: false",
        )
        self.assertFails("every matrix edit would roll every pod")

    def test_matrix_copy_drifted(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/matrix.toml",
            'name = "handoff default policies"',
            'name = "edited here only"',
        )
        self.assertFails("differs from deploy/matrix.toml")

    def test_matrix_symlinked_from_outside(self) -> None:
        # The obvious way not to copy the matrix; kustomize refuses it (symlinks are resolved
        # before its "in or below the kustomization" rule is applied).
        m = self.tree.root / "deploy/kubernetes/matrix.toml"
        m.unlink()
        m.symlink_to("../matrix.toml")
        self.assertFails("matrix.toml is outside deploy/kubernetes: kustomize refuses it")

    def test_subpath_mount(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/deployment.yaml",
            "mountPath: /etc/handoff\n",
            "mountPath: /etc/handoff\n              subPath: handoff.toml\n",
        )
        self.assertFails("uses subPath: the kubelet never updates it")

    # ---- shutdown, secrets, security --------------------------------------------------------

    def test_grace_period_not_above_the_deadline(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/deployment.yaml",
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: 20",
        )
        self.assertFails("terminationGracePeriodSeconds 20 is not above shutdown_deadline 20s")

    def test_deadline_raised_past_the_grace_period(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/handoff.toml",
            'shutdown_deadline = "20s"',
            'shutdown_deadline = "1m"',
        )
        self.assertFails("terminationGracePeriodSeconds 30 is not above shutdown_deadline 60s")

    def test_secret_file_not_projected(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/deployment.yaml",
            "              - key: password\n                path: password\n",
            "",
        )
        self.assertFails("without a password item")

    def test_runs_as_root(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/deployment.yaml",
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        )
        self.assertFails("readOnlyRootFilesystem False")

    # ---- autoscaling and monitoring ---------------------------------------------------------

    def test_more_replicas_than_partitions(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/scaledobject.yaml", "maxReplicaCount: 8", "maxReplicaCount: 12"
        )
        self.assertFails("maxReplicaCount 12 != kafka.partitions 8")

    def test_scale_to_zero(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/scaledobject.yaml", "minReplicaCount: 1", "minReplicaCount: 0"
        )
        self.assertFails("minReplicaCount 0")

    def test_trigger_on_another_topic_and_group(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/scaledobject.yaml", "topic: agent.actions", "topic: agent.verdicts"
        )
        self.tree.edit(
            "deploy/kubernetes/scaledobject.yaml", "consumerGroup: handoff", "consumerGroup: other"
        )
        self.assertFails(
            "trigger topic 'agent.verdicts' != topics.input",
            "trigger consumerGroup 'other' != kafka.group_id",
        )

    def test_trigger_security_differs(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/scaledobject.yaml", "sasl: scram_sha512", "sasl: plaintext"
        )
        self.assertFails("trigger sasl 'plaintext', but sasl.mechanisms is SCRAM-SHA-512")

    def test_replicas_set_beside_the_autoscaler(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/deployment.yaml",
            "  revisionHistoryLimit: 5\n",
            "  replicas: 3\n  revisionHistoryLimit: 5\n",
        )
        self.assertFails("Deployment sets replicas")

    def test_podmonitor_job_name(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/podmonitor.yaml", "  jobLabel: app.kubernetes.io/name\n", ""
        )
        self.assertFails("PodMonitor gives job=")

    def test_selector_that_matches_no_pod(self) -> None:
        self.tree.edit(
            "deploy/kubernetes/service.yaml",
            "  selector:\n    app.kubernetes.io/name: handoff",
            "  selector:\n    app.kubernetes.io/name: handof",
        )
        self.assertFails("Service/handoff selector")

    # ---- the Dockerfile ---------------------------------------------------------------------

    def test_dockerfile_user_and_command(self) -> None:
        self.tree.edit("Dockerfile", "USER 65532:65532", "USER root")
        self.tree.edit("Dockerfile", '"/etc/handoff/handoff.toml"]', '"/etc/handoff.toml"]')
        self.assertFails("final stage USER root", "!= the Deployment's args")

    def test_dockerfile_built_otherwise(self) -> None:
        self.tree.edit(
            "Dockerfile", "    cargo build --release --locked \\\n", "    cargo build \\\n"
        )
        self.assertFails("no RUN with cargo build --release --locked")

    def test_dockerignore_keeps_target(self) -> None:
        self.tree.edit(".dockerignore", "target/\n", "")
        self.assertFails(".dockerignore missing or does not exclude target/")


if __name__ == "__main__":
    unittest.main(verbosity=2)
