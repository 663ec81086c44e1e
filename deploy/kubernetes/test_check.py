#!/usr/bin/env python3
"""Tests of check.py: the shipped manifests pass, and each deliberately broken copy fails for
the reason it was broken.

    python3 deploy/kubernetes/test_check.py     (with kubernetes-validate installed)

Every test copies what check.py reads (deploy/kubernetes, deploy/matrix.toml, the alert rules,
the Dockerfile and .dockerignore) into a temporary tree with a stand-in routes source that
serves /metrics, /healthz, /readyz and /-/reload, breaks one thing, and runs the check on it.
Most broken copies are rows of BROKEN at the end (a file, a text, its replacement, the failures
expected); the methods of CheckTest are the tests that need more than replacing text.
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

from kubernetes_validate import utils as kv  # noqa: E402

import check  # noqa: E402

ROUTES = """\
//! A stand-in for src/serve.rs, where handoff declares the paths it serves.
// "/not-a-route" in a comment does not count.
pub const METRICS_PATH: &str = "/metrics";
pub const HEALTHZ_PATH: &str = "/healthz";
pub const READYZ_PATH: &str = "/readyz";
pub const RELOAD_PATH: &str = "/-/reload";
"""

INBOX = "deploy/kubernetes/inbox.toml"
INBOX_DEP = "deploy/kubernetes/inbox-deployment.yaml"
INGRESS = "deploy/kubernetes/inbox-ingress.example.yaml"
SECRETS = "deploy/kubernetes/secret.example.yaml"
DEP = "deploy/kubernetes/deployment.yaml"
HANDOFF = "deploy/kubernetes/handoff.toml"
SCALEDOBJECT = "deploy/kubernetes/scaledobject.yaml"
KUSTOMIZATION = "deploy/kubernetes/kustomization.yaml"
PODMONITOR = "deploy/kubernetes/podmonitor.yaml"
INBOX_PODMONITOR = "deploy/kubernetes/inbox-podmonitor.yaml"
INBOX_SVC = "deploy/kubernetes/inbox-service.yaml"
GATEWAY = "deploy/kubernetes/gateway.toml"
GATEWAY_DEP = "deploy/kubernetes/gateway-deployment.yaml"
TOKEN_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

# Sign-in through the SSO proxy: its address (the pod's loopback) and the secret it sends.
PROXY_AUTH = 'auth = "proxy"\ntrusted_proxies = ["127.0.0.1", "::1"]\nproxy_secret = "file:/run/secrets/inbox/proxy-secret"'

# An SSO proxy as a second container of the inbox pod (auth = "proxy").
SIDECAR = """\
        - name: sso-proxy
          image: quay.io/oauth2-proxy/oauth2-proxy:v7.6.0
          args: ["--upstream=http://127.0.0.1:9870", "--http-address=0.0.0.0:4180"]
          ports:
            - name: proxy
              containerPort: 4180
      volumes:
"""


class Tree:
    """A copy of what check.py reads, to break."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        ignore = shutil.ignore_patterns("__pycache__", "*.py", "schemas", "ruff.toml")
        shutil.copytree(HERE, root / "deploy/kubernetes", ignore=ignore)
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
        # The inbox's and the gateway's routers (their path consts in api.rs and trust/jwks.rs)
        # and the settings' declarations, as they are (tests break copies).
        for rel in ["src/inbox/web.rs", "src/gateway/web.rs", "src/gateway/api.rs", "src/event/mod.rs",
                    "src/trust/jwks.rs"] + [
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

    def edit_all(self, rel: str, old: str, new: str) -> None:
        """Replaces every `old` (there must be one) with `new`."""
        path = self.root / rel
        text = path.read_text()
        if old not in text:
            raise AssertionError(f"{old!r} is not in {rel}: the test would break nothing")
        path.write_text(text.replace(old, new))

    def uncomment(self, rel: str, first: str, last: str) -> None:
        """Uncomments the lines from the one starting with `# {first}` to the one starting with
        `# {last}` (a commented example, made real)."""
        path = self.root / rel
        lines = path.read_text().split("\n")
        start = next(i for i, line in enumerate(lines) if line.startswith(f"# {first}"))
        end = next(i for i, line in enumerate(lines) if i >= start and line.startswith(f"# {last}"))
        for i in range(start, end + 1):
            lines[i] = lines[i][2:] if lines[i].startswith("# ") else lines[i].lstrip("#")
        path.write_text("\n".join(lines))

    def run(self) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = check.main(["--dir", str(self.root / "deploy/kubernetes"), "--routes-src",
                             str(self.root / "src/serve.rs"), "--kube-version", "1.37"])
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
        # Why check.py validates them against the CRDs' schemas in schemas/: on its own,
        # kubernetes-validate does not validate them at all (its command line prints WARN and
        # exits 0).
        for api, kind in (("keda.sh/v1alpha1", "ScaledObject"), ("monitoring.coreos.com/v1", "PodMonitor")):
            doc = {"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": {}}
            with self.assertRaises(kv.SchemaNotFoundError):
                kv.validate(doc, "1.37", strict=True)

    # ---- the kustomization ------------------------------------------------------------------

    def test_missing_resource(self) -> None:
        (self.tree.root / "deploy/kubernetes/pdb.yaml").unlink()
        self.assertFails("resources missing: pdb.yaml")

    def test_matrix_symlinked_from_outside(self) -> None:
        # The obvious way not to copy the matrix; kustomize refuses it (symlinks are resolved
        # before its "in or below the kustomization" rule is applied).
        m = self.tree.root / "deploy/kubernetes/matrix.toml"
        m.unlink()
        m.symlink_to("../matrix.toml")
        self.assertFails("matrix.toml is outside deploy/kubernetes: kustomize refuses it")

    # ---- the inbox: settings ----------------------------------------------------------------

    def test_inbox_section_in_the_processors_settings(self) -> None:
        # What `handoff run` would do with it: resolve the cookie key's file, which the
        # processors do not mount, and refuse to start.
        path = self.tree.root / "deploy/kubernetes/handoff.toml"
        path.write_text(
            path.read_text() + '\n[inbox]\ncookie_key = "file:/run/secrets/inbox/cookie-key"\n'
        )
        self.assertFails(
            "handoff.toml has a [inbox] section: `handoff run` does not use it",
            "Deployment/handoff: inbox.cookie_key = 'file:/run/secrets/inbox/cookie-key': no Secret is mounted at /run/secrets/inbox",
        )

    def test_inbox_people_examples_are_valid_once_filled_in(self) -> None:
        self.tree.uncomment(INBOX, "[[inbox.people]]", "slack_user")
        self.tree.edit(INBOX, "<64 hex digits from `handoff token`>", TOKEN_SHA256)
        rc, out = self.tree.run()
        self.assertEqual(rc, 0, out)

    def test_inbox_people_placeholder_and_unknown_role(self) -> None:
        self.tree.uncomment(INBOX, "[[inbox.people]]", "slack_user")
        self.tree.edit(INBOX, '"support_l2"]', '"support_l3"]')
        self.assertFails(
            "inbox.people[0].roles: 'support_l3' is not a role of the matrix",
            "inbox.people[0].token_sha256: not 64 hex digits",
        )

    # ---- the inbox: probes and ports ----------------------------------------------------------

    def test_inbox_without_startup_probe(self) -> None:
        path = self.tree.root / INBOX_DEP
        text = path.read_text()
        start, end = text.index("          startupProbe:\n"), text.index("          # 200 as long")
        path.write_text(text[:start] + text[end:])
        self.assertFails("Deployment/handoff-inbox: startupProbe: missing, or not an httpGet probe (the inbox answers no request until it has reached Kafka")

    # ---- the inbox: secrets -------------------------------------------------------------------

    def test_inbox_cookie_key_written_in_the_configmap(self) -> None:
        self.tree.edit(
            INBOX, '"file:/run/secrets/inbox/cookie-key"', '"' + "k" * 48 + '"'
        )
        _, out = self.tree.run()
        self.assertNotIn("k" * 48, out, "the check printed the secret")
        self.assertFails("inbox.cookie_key is written in inbox.toml itself, which is a ConfigMap")

    def test_the_signing_key_is_a_mounted_secret_never_written_in_the_configmap(self) -> None:
        self.tree.edit(
            HANDOFF, '"file:/run/secrets/signing/processor-key.pem"', '"' + "p" * 48 + '"'
        )
        _, out = self.tree.run()
        self.assertNotIn("p" * 48, out, "the check printed the secret")
        self.assertFails("trust.signing_key is written in handoff.toml itself, which is a ConfigMap")

    def test_the_signing_key_must_be_mounted_where_the_settings_name_it(self) -> None:
        self.tree.edit(DEP, "mountPath: /run/secrets/signing", "mountPath: /run/secrets/sign")
        self.assertFails(
            "Deployment/handoff: trust.signing_key = 'file:/run/secrets/signing/processor-key.pem': no Secret is mounted at /run/secrets/signing"
        )

    def test_inbox_receivers_need_their_secrets_mounted(self) -> None:
        self.tree.uncomment(INBOX, "[notify]", 'tiers = ["immediate"]')
        self.assertFails(
            "notify.receivers[0].url = 'file:/run/secrets/inbox/support-slack-webhook-url': Secret handoff-inbox is mounted at /run/secrets/inbox without a support-slack-webhook-url item",
            "notify.receivers[1].secret = 'file:/run/secrets/inbox/pager-webhook-secret': Secret handoff-inbox is mounted at /run/secrets/inbox without a pager-webhook-secret item",
        )

    def _mount_inbox_keys(self, *keys: str, shown: bool = True) -> None:
        items = "".join(f"              - key: {k}\n                path: {k}\n" for k in keys)
        self.tree.edit(
            INBOX_DEP,
            "              - key: cookie-key\n                path: cookie-key\n",
            "              - key: cookie-key\n                path: cookie-key\n" + items,
        )
        if shown:
            self.tree.edit(
                SECRETS,
                "  cookie-key: REPLACE-ME-with-openssl-rand-base64-48\n",
                "  cookie-key: REPLACE-ME-with-openssl-rand-base64-48\n"
                + "".join(f"  {k}: REPLACE-ME\n" for k in keys),
            )

    def test_inbox_receivers_and_slack_examples_pass_once_mounted(self) -> None:
        self.tree.uncomment(INBOX, "slack_signing_secret", "slack_signing_secret")
        self.tree.uncomment(INBOX, "[notify]", 'tiers = ["immediate"]')
        self._mount_inbox_keys(
            "slack-signing-secret", "support-slack-webhook-url", "pager-webhook-secret"
        )
        rc, out = self.tree.run()
        self.assertEqual(rc, 0, out)
        self.assertIn("notify.receivers[1].secret: /run/secrets/inbox/pager-webhook-secret comes from Secret handoff-inbox", out)

    def test_inbox_secret_key_not_in_the_example(self) -> None:
        self.tree.uncomment(INBOX, "slack_signing_secret", "slack_signing_secret")
        self._mount_inbox_keys("slack-signing-secret", shown=False)
        self.assertFails(
            "Secret handoff-inbox key slack-signing-secret is used by Deployment/handoff-inbox but not shown in secret.example.yaml"
        )

    def test_slack_webhook_url_written_in_the_configmap(self) -> None:
        self.tree.uncomment(INBOX, "[notify]", 'tiers = ["immediate"]')
        self.tree.edit(
            INBOX,
            '"file:/run/secrets/inbox/support-slack-webhook-url"',
            '"https://hooks.slack.com/services/T0/B0/secret"',
        )
        self.assertFails("notify.receivers[0].url (a Slack webhook URL) is written in inbox.toml itself")

    # ---- the inbox: sign-in through a proxy ---------------------------------------------------

    def test_inbox_proxy_auth_with_a_sidecar_passes(self) -> None:
        self.tree.edit(INBOX, 'auth = "token"', PROXY_AUTH)
        self.tree.edit(INBOX_DEP, "              - key: cookie-key\n",
                       "              - key: proxy-secret\n                path: proxy-secret\n"
                       "              - key: cookie-key\n")
        self.tree.edit(SECRETS, "  cookie-key: REPLACE-ME", "  proxy-secret: REPLACE-ME-with-openssl-rand-hex-32\n  cookie-key: REPLACE-ME")
        self.tree.edit(INBOX_DEP, "      volumes:\n", SIDECAR)
        self.tree.edit(INBOX_SVC, "targetPort: http", "targetPort: proxy")
        # The proxy's own sign-in callback is routed too: not an inbox route, not a failure.
        self.tree.edit(
            INGRESS,
            "          - path: /static\n",
            "          - path: /oauth2\n            pathType: Prefix\n            backend:\n"
            "              service:\n                name: handoff-inbox\n                port:\n"
            "                  name: http\n          - path: /static\n",
        )
        rc, out = self.tree.run()
        self.assertEqual(rc, 0, out)
        self.assertIn("path /oauth2 (Prefix) leads to no route of the inbox: the SSO proxy's own", out)

    # ---- the inbox: replicas, rollouts, disruptions, the pod ----------------------------------

    def test_inbox_without_disruption_budget(self) -> None:
        self.tree.edit(KUSTOMIZATION, "  - inbox-pdb.yaml\n", "")
        (self.tree.root / "deploy/kubernetes/inbox-pdb.yaml").unlink()
        self.assertFails("PodDisruptionBudget for the inbox: want one with maxUnavailable 1, found []")

    def test_inbox_pods_taken_in_by_the_processors_selectors(self) -> None:
        self.tree.edit_all(INBOX_DEP, "app.kubernetes.io/name: handoff-inbox", "app.kubernetes.io/name: handoff")
        self.assertFails(
            "Deployment/handoff selector {'matchLabels': {'app.kubernetes.io/name': 'handoff'}} matches the pods of Deployment/handoff, Deployment/handoff-inbox",
            "Service/handoff selector",
        )

    def test_no_inbox_or_gateway_at_all(self) -> None:
        # The inbox and the gateway are optional: without their Deployments, their checks are
        # skipped, and what is left of them (a Service, a PodMonitor) selects no pods.
        for who in ("inbox", "gateway"):
            for f in (f"{who}-deployment.yaml", f"{who}-service.yaml", f"{who}-podmonitor.yaml", f"{who}-pdb.yaml"):
                self.tree.edit(KUSTOMIZATION, f"  - {f}\n", "")
                (self.tree.root / "deploy/kubernetes" / f).unlink()
        rc, out = self.tree.run()
        self.assertEqual(rc, 0, out)
        self.assertIn("no Deployment runs `handoff inbox`", out)
        self.assertIn("no Deployment runs `handoff gateway`", out)

    def test_gateway_pods_taken_in_by_the_inbox_selectors(self) -> None:
        self.tree.edit_all(GATEWAY_DEP, "app.kubernetes.io/name: handoff-gateway", "app.kubernetes.io/name: handoff-inbox")
        self.assertFails("Deployment/handoff-inbox selector {'matchLabels': {'app.kubernetes.io/name': 'handoff-inbox'}} matches the pods of Deployment/handoff-inbox, Deployment/handoff-gateway")


# Copies broken by replacing text: (name, [(file, text, replaced by), ...], the failures the check must
# report, each a part of a FAIL line). Each becomes a test_<name> of CheckTest.
BROKEN = [
    # ---- the shipped tree -------------------------------------------------------------------

    # ---- probes and ports against what handoff serves ---------------------------------------
    ("a_probe_path_handoff_does_not_serve", [(DEP, "path: /healthz", "path: /health")], "livenessProbe path '/health'"),
    ("liveness_on_readiness",
     [(DEP, "path: /healthz", "path: /readyz")],
     "liveness on /readyz would restart members during a broker outage"),
    ("a_route_missing_from_the_source",
     [("src/serve.rs", 'pub const READYZ_PATH: &str = "/readyz";', "")],
     "readinessProbe path '/readyz' is not among handoff's routes"),
    ("a_route_only_in_a_comment_does_not_count",
     [(DEP, "path: /healthz", "path: /not-a-route")],
     "livenessProbe path '/not-a-route' is not among handoff's routes"),
    ("bind_port_differs_from_the_container_port",
     [(HANDOFF, 'bind = "0.0.0.0:9464"', 'bind = "0.0.0.0:9465"')],
     "handoff listens on 9465", "containerPort named http is 9464, [metrics] bind port is 9465"),
    ("bind_on_loopback",
     [(HANDOFF, 'bind = "0.0.0.0:9464"', 'bind = "127.0.0.1:9464"')],
     "[metrics] bind 127.0.0.1:9464: the kubelet probes"),
    ("metrics_server_off", [(HANDOFF, "enabled = true", "enabled = false")], "no HTTP server, so every probe fails"),
    ("container_port_differs",
     [(DEP, "containerPort: 9464", "containerPort: 8080")],
     "livenessProbe port 'http' resolves to 8080", "Service/handoff port http"),
    ("podmonitor_path", [(PODMONITOR, "path: /metrics", "path: /stats")], "PodMonitor path '/stats'"),

    # ---- schemas: kubernetes-validate's, and the CRDs' (schemas/) for the custom resources --
    ("core_schema_unknown_field",
     [(DEP, "readinessProbe:", "readinesProbe:")],
     "deployment.yaml: Deployment/handoff: invalid against 1.37"),
    ("core_schema_wrong_type",
     [("deploy/kubernetes/pdb.yaml", "maxUnavailable: 1", "maxUnavailable: [1]")],
     "pdb.yaml: PodDisruptionBudget/handoff: invalid against 1.37"),
    ("scaledobject_without_target",
     [(SCALEDOBJECT, "  scaleTargetRef:\n", "  scaleTargetReference:\n")],
     "scaledobject.yaml: ScaledObject/handoff: invalid against the CRD's schema (KEDA v2.10.1",
     "spec.scaleTargetRef: required by the CRD",
     "spec.scaleTargetReference: unknown field (not in the CRD)"),
    ("scaledobject_metadata_must_be_strings",
     [(SCALEDOBJECT, 'lagThreshold: "100000"', "lagThreshold: 100000")],
     "spec.triggers[0].metadata.lagThreshold: must be of type string, is 100000"),
    ("podmonitor_misspelt_endpoints",
     [(PODMONITOR, "podMetricsEndpoints:", "podMetricEndpoints:")],
     "podmonitor.yaml: PodMonitor/handoff: invalid against the CRD's schema (Prometheus Operator v0.57.0",
     "spec.podMetricEndpoints: unknown field (not in the CRD)",
     "spec.podMetricsEndpoints: required by the CRD",
     "PodMonitor: spec.podMetricsEndpoints: a non-empty list (nothing is scraped otherwise)"),
    ("custom_resource_without_a_schema", [(PODMONITOR, "kind: PodMonitor", "kind: ServiceMonitor")],
     "podmonitor.yaml: ServiceMonitor/handoff: no schema for monitoring.coreos.com/v1 ServiceMonitor"),
    ("custom_resource_metadata_misspelt", [(PODMONITOR, "  labels:\n", "  label:\n")],
     "podmonitor.yaml: PodMonitor/handoff: invalid against the CRD's schema", "metadata.label: unknown field"),
    ("triggerauthentication_ref_without_key",
     [(SCALEDOBJECT, "      key: ca.crt\n", "")],
     "TriggerAuthentication/handoff-kafka: invalid against the CRD's schema (KEDA v2.10.1, schemas/keda.sh_v1alpha1_triggerauthentication.json): spec.secretTargetRef[2].key: required by the CRD"),

    # ---- the kustomization ------------------------------------------------------------------
    ("manifest_left_out_of_the_kustomization",
     [(KUSTOMIZATION, "  - pdb.yaml\n", "")],
     "not in the kustomization's resources (and not *.example.yaml): pdb.yaml"),
    ("matrix_configmap_with_hash_suffix",
     [(KUSTOMIZATION, "disableNameSuffixHash: true", "disableNameSuffixHash: false")],
     "every matrix edit would roll every pod"),
    ("matrix_copy_drifted",
     [("deploy/kubernetes/matrix.toml", 'name = "handoff default policies"', 'name = "edited here only"')],
     "differs from deploy/matrix.toml"),
    ("subpath_mount",
     [(DEP, "mountPath: /etc/handoff\n", "mountPath: /etc/handoff\n              subPath: handoff.toml\n")],
     "uses subPath: the kubelet never updates it"),

    # ---- shutdown, secrets, security --------------------------------------------------------
    ("grace_period_not_above_the_deadline",
     [(DEP, "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 20")],
     "terminationGracePeriodSeconds 20 is not above shutdown_deadline 20s"),
    ("deadline_raised_past_the_grace_period",
     [(HANDOFF, 'shutdown_deadline = "20s"', 'shutdown_deadline = "1m"')],
     "terminationGracePeriodSeconds 30 is not above shutdown_deadline 60s"),
    ("secret_file_not_projected",
     [(DEP, "              - key: password\n                path: password\n", "")],
     "without a password item"),
    ("runs_as_root",
     [(DEP, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")],
     "readOnlyRootFilesystem False"),

    # ---- autoscaling and monitoring ---------------------------------------------------------
    ("more_replicas_than_partitions",
     [(SCALEDOBJECT, "maxReplicaCount: 8", "maxReplicaCount: 12")],
     "maxReplicaCount 12 != kafka.partitions 8"),
    ("scale_to_zero", [(SCALEDOBJECT, "minReplicaCount: 1", "minReplicaCount: 0")], "minReplicaCount 0"),
    ("trigger_on_another_topic_and_group",
     [(SCALEDOBJECT, "topic: agent.actions", "topic: agent.verdicts"),
      (SCALEDOBJECT, "consumerGroup: handoff", "consumerGroup: other")],
     "trigger topic 'agent.verdicts' != topics.input", "trigger consumerGroup 'other' != kafka.group_id"),
    ("trigger_security_differs",
     [(SCALEDOBJECT, "sasl: scram_sha512", "sasl: plaintext")],
     "trigger sasl 'plaintext', but sasl.mechanisms is SCRAM-SHA-512"),
    ("replicas_set_beside_the_autoscaler",
     [(DEP, "  revisionHistoryLimit: 5\n", "  replicas: 3\n  revisionHistoryLimit: 5\n")],
     "Deployment sets replicas"),
    ("processors_not_scraped", [(KUSTOMIZATION, "  - podmonitor.yaml\n", "")],
     "0 PodMonitors select the processors' pods: want one"),
    ("podmonitor_job_name", [(PODMONITOR, "  jobLabel: app.kubernetes.io/name\n", "")], "PodMonitor gives job="),
    ("selector_that_matches_no_pod",
     [("deploy/kubernetes/service.yaml", "  selector:\n    app.kubernetes.io/name: handoff",
       "  selector:\n    app.kubernetes.io/name: handof")],
     "Service/handoff selector"),

    # ---- the inbox: settings ----------------------------------------------------------------
    ("inbox_unknown_key",
     [(INBOX, 'session_ttl = "12h"', 'session_timeout = "12h"')],
     "inbox.toml: inbox.session_timeout: unknown key (handoff refuses the file"),
    ("inbox_unknown_auth", [(INBOX, 'auth = "token"', 'auth = "sso"')], "inbox.auth: 'sso' is not one of token, proxy"),
    ("unknown_key_in_the_processors_settings",
     [(HANDOFF, "workers = 2", "worker = 2")],
     "handoff.toml: pipeline.worker: unknown key"),
    # The keys come from src/config: a field removed there makes its key unknown here.
    ("a_key_the_sources_no_longer_declare",
     [("src/config/inbox.rs", "pub session_ttl: Duration,", "")],
     "inbox.session_ttl: unknown key"),
    ("inbox_kafka_differs_from_the_processors",
     [(INBOX, 'group_id = "handoff"', 'group_id = "reviewers"'),
      (INBOX, 'input = "agent.actions"', 'input = "agent.actions.v2"')],
     "[kafka] of inbox.toml differs from handoff.toml's at group_id",
     "[topics] of inbox.toml differs from handoff.toml's at input"),
    ("inbox_matrix_without_hash_suffix",
     [(INBOX_DEP, "name: handoff-inbox-matrix", "name: handoff-matrix")],
     "ConfigMap handoff-matrix has disableNameSuffixHash: the inbox reads the matrix once"),
    ("inbox_settings_without_hash_suffix",
     [(KUSTOMIZATION, "      - inbox.toml\n", "      - inbox.toml\n    options:\n      disableNameSuffixHash: true\n")],
     "ConfigMap handoff-inbox-config has disableNameSuffixHash"),

    # ---- the inbox: probes and ports ----------------------------------------------------------
    ("inbox_probe_path_it_does_not_serve",
     [(INBOX_DEP, "livenessProbe:\n            httpGet:\n              path: /healthz",
       "livenessProbe:\n            httpGet:\n              path: /livez")],
     "Deployment/handoff-inbox: livenessProbe path '/livez' is not a GET route the inbox serves"),
    ("inbox_readiness_on_a_post_route",
     [(INBOX_DEP, "path: /readyz", "path: /sign-out")],
     "readinessProbe path '/sign-out' is not a GET route the inbox serves"),
    ("inbox_liveness_on_readiness",
     [(INBOX_DEP, "livenessProbe:\n            httpGet:\n              path: /healthz",
       "livenessProbe:\n            httpGet:\n              path: /readyz")],
     "on /readyz it would restart the inbox while it catches up"),
    ("inbox_route_removed_from_its_router",
     [("src/inbox/web.rs", ".route(crate::serve::READYZ_PATH, get(readyz))", "")],
     "Deployment/handoff-inbox: readinessProbe path '/readyz' is not a GET route the inbox serves"),
    ("inbox_route_const_found_nowhere",
     [("src/serve.rs", 'pub const HEALTHZ_PATH: &str = "/healthz";', "")],
     ".route(crate::serve::HEALTHZ_PATH, ...) names a path const found in none of"),
    ("inbox_startup_window_too_short",
     [(INBOX_DEP, "failureThreshold: 30", "failureThreshold: 5")],
     "startupProbe allows 10s, less than 3 x [pipeline] connect_timeout (10s)"),
    ("inbox_bind_port_differs",
     [(INBOX, 'bind = "0.0.0.0:9870"', 'bind = "0.0.0.0:9871"')],
     "containerPort named http is 9870, [inbox] bind port is 9871",
     "readinessProbe port 'http' resolves to 9870, but the inbox listens on 9871",
     "Service/handoff-inbox port http: targetPort http -> 9870, the inbox listens on 9871",
     "PodMonitor/handoff-inbox port 'http' is not the inbox's port 9871"),
    ("inbox_bind_left_at_its_default",
     [(INBOX, 'bind = "0.0.0.0:9870"\n', "")],
     "[inbox] bind 127.0.0.1:9870: the kubelet probes, Prometheus scrapes"),
    ("inbox_service_to_another_port",
     [(INBOX_SVC, "targetPort: http", "targetPort: 9464")],
     "Service/handoff-inbox port http: targetPort 9464 -> 9464, the inbox listens on 9870"),
    ("inbox_podmonitor_port",
     [(INBOX_PODMONITOR, "port: http", "port: metrics")],
     "PodMonitor/handoff-inbox port 'metrics' is not the inbox's port 9870"),
    ("inbox_podmonitor_selects_no_pod",
     [(INBOX_PODMONITOR, "    matchLabels:\n      app.kubernetes.io/name: handoff-inbox",
       "    matchLabels:\n      app.kubernetes.io/name: handoff-inbx")],
     "PodMonitor/handoff-inbox selector", "0 PodMonitors select the inbox's pods"),
    ("inbox_podmonitor_selects_the_processors",
     [(INBOX_PODMONITOR, "    matchLabels:\n      app.kubernetes.io/name: handoff-inbox",
       "    matchLabels:\n      app.kubernetes.io/name: handoff")],
     "0 PodMonitors select the inbox's pods"),

    # ---- the inbox: monitoring ----------------------------------------------------------------
    ("inbox_job_is_the_processors",
     [(INBOX_DEP, "        app.kubernetes.io/component: inbox\n    spec:",
       "        app.kubernetes.io/component: inbox\n        app.kubernetes.io/instance: handoff\n    spec:"),
      (INBOX_PODMONITOR, "jobLabel: app.kubernetes.io/name", "jobLabel: app.kubernetes.io/instance")],
     "the processors' job, so their rules (HandoffDown"),
    ("inbox_without_job_label",
     [(INBOX_PODMONITOR, "  jobLabel: app.kubernetes.io/name\n", "")],
     "PodMonitor/handoff-inbox gives job='<namespace>/handoff-inbox'"),
    ("alert_on_the_inbox_metrics_selects_the_processors_job",
     [("deploy/prometheus/handoff.rules.yml", 'handoff_notifications_total{result=~"failed|rate_limited"}',
       'handoff_notifications_total{job="handoff",result=~"failed|rate_limited"}')],
     "rule HandoffNotificationsFailing selects job handoff, but the inbox's metrics come with job='handoff-inbox'"),

    # ---- the inbox: secrets -------------------------------------------------------------------
    ("inbox_secret_not_mounted",
     [(INBOX_DEP, "            - name: inbox-secrets\n              mountPath: /run/secrets/inbox\n              readOnly: true\n",
       "")],
     "Deployment/handoff-inbox: inbox.cookie_key = 'file:/run/secrets/inbox/cookie-key': no Secret is mounted at /run/secrets/inbox"),
    ("inbox_secret_item_missing",
     [(INBOX_DEP, "path: cookie-key", "path: cookie_key")],
     "Secret handoff-inbox is mounted at /run/secrets/inbox without a cookie-key item"),
    ("inbox_without_cookie_key",
     [(INBOX, 'cookie_key = "file:/run/secrets/inbox/cookie-key"\n', "")],
     "[inbox] cookie_key unset: each replica makes its own key"),
    ("inbox_env_reference_not_set",
     [(INBOX, '"file:/run/secrets/inbox/cookie-key"', '"env:INBOX_COOKIE_KEY"')],
     "inbox.cookie_key = 'env:INBOX_COOKIE_KEY': the container does not set INBOX_COOKIE_KEY"),

    # ---- the inbox: sign-in through a proxy ---------------------------------------------------
    ("inbox_proxy_auth_without_a_proxy",
     [(INBOX, 'auth = "token"', 'auth = "proxy"')],
     'auth = "proxy", but Deployment/handoff-inbox has no other container with a port'),
    ("inbox_proxy_auth_without_its_secret",
     [(INBOX, 'auth = "token"', 'auth = "proxy"'), (INBOX_DEP, "      volumes:\n", SIDECAR),
      (INBOX_SVC, "targetPort: http", "targetPort: proxy")],
     '[inbox] auth = "proxy" needs trusted_proxies'),
    ("inbox_proxy_auth_bypassed_by_the_service",
     [(INBOX, 'auth = "token"', PROXY_AUTH), (INBOX_DEP, "      volumes:\n", SIDECAR)],
     "straight to the inbox, every page answers 401"),
    ("inbox_proxy_trusted_by_pod_ip",
     [(INBOX, 'auth = "token"', 'auth = "proxy"\ntrusted_proxies = ["10.42.0.17"]\nproxy_secret = "file:/run/secrets/inbox/proxy-secret"'),
      (INBOX_DEP, "      volumes:\n", SIDECAR),
      (INBOX_SVC, "targetPort: http", "targetPort: proxy")],
     "[inbox] trusted_proxies ['10.42.0.17']: pod IPs change with every restart"),

    # ---- the inbox: how people reach it -------------------------------------------------------
    ("ingress_publishes_metrics_and_probes",
     [(INGRESS, "- path: /\n            pathType: Exact", "- path: /\n            pathType: Prefix")],
     "Ingress/handoff-inbox publishes /healthz, /metrics, /readyz"),
    ("ingress_misses_a_page",
     [(INGRESS, "          - path: /live\n            pathType: Exact\n",
       "          - path: /events\n            pathType: Exact\n")],
     "Ingress/handoff-inbox does not route /live",
     "Ingress/handoff-inbox path /events (Exact) leads to no route of the inbox"),
    ("ingress_to_a_port_the_service_lacks",
     [(INGRESS, "                  name: http\n", "                  name: web\n")],
     "Ingress/handoff-inbox /: Service/handoff-inbox has no port 'web'"),
    ("ingress_host_is_not_public_url",
     [(INGRESS, "- host: inbox.example.com", "- host: reviews.example.com")],
     "Ingress/handoff-inbox hosts ['reviews.example.com'] != [inbox] public_url's host 'inbox.example.com'"),
    ("ingress_schema",
     [(INGRESS, "pathType: Exact", "pathtype: Exact")],
     "inbox-ingress.example.yaml: Ingress/handoff-inbox: invalid against 1.37"),
    ("public_url_over_http",
     [(INBOX, 'public_url = "https://', 'public_url = "http://')],
     "is not https:// and secure_cookies is not true"),
    ("public_url_unset",
     [(INBOX, 'public_url = "https://inbox.example.com"\n', "")],
     "[inbox] public_url unset: links in notifications would point at http://0.0.0.0:9870"),

    # ---- the inbox: replicas, rollouts, disruptions, the pod ----------------------------------
    ("inbox_single_replica", [(INBOX_DEP, "  replicas: 2\n", "  replicas: 1\n")], "replicas 1: want 2 or more"),
    ("inbox_rollout_stops_a_replica_first",
     [(INBOX_DEP, "maxSurge: 1\n      maxUnavailable: 0", "maxSurge: 0\n      maxUnavailable: 1")],
     "want RollingUpdate with maxUnavailable 0 and a maxSurge"),
    ("inbox_image_differs",
     [(INBOX_DEP, "image: handoff\n", "image: handoff-inbox\n")],
     "Deployment/handoff-inbox: image 'handoff-inbox' != the processors' 'handoff'"),
    ("inbox_command_replaces_the_entrypoint",
     [(INBOX_DEP, "          args: [\"inbox\"", "          command: [\"/handoff\"]\n          args: [\"inbox\"")],
     "Deployment/handoff-inbox: command ['/handoff'] replaces the image's ENTRYPOINT"),
    ("inbox_writable_root",
     [(INBOX_DEP, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")],
     "Deployment/handoff-inbox: readOnlyRootFilesystem False"),

    # ---- the gateway ------------------------------------------------------------------------
    ("gateway_section_in_the_processors_settings", [(HANDOFF, "[log]\n", '[gateway]\nbind = "0.0.0.0:9880"\n\n[log]\n')],
     "handoff.toml has a [gateway] section: `handoff run` does not use it"),
    ("gateway_kafka_differs_from_the_processors",
     [(GATEWAY, '"sasl.mechanisms" = "SCRAM-SHA-512"', '"sasl.mechanisms" = "SCRAM-SHA-256"'),
      (GATEWAY, 'input = "agent.actions"', 'input = "agent.actions.v2"')],
     "[kafka] of gateway.toml differs from handoff.toml's at common.sasl.mechanisms",
     "[topics] of gateway.toml differs from handoff.toml's at input"),
    ("gateway_unknown_key", [(GATEWAY, '# look_back = "24h"', 'lookback = "24h"')],
     "gateway.toml: gateway.lookback: unknown key (handoff refuses the file"),
    ("gateway_agent_key_itself_instead_of_its_hash", [(GATEWAY, "key_sha256 = ", "key = ")],
     "gateway.toml: gateway.agents[0].key: unknown key", "gateway.agents[0].key_sha256: not 64 hex digits"),
    ("gateway_probe_path_it_does_not_serve",
     [(GATEWAY_DEP, "livenessProbe:\n            httpGet:\n              path: /healthz", "livenessProbe:\n            httpGet:\n              path: /livez")],
     "Deployment/handoff-gateway: livenessProbe path '/livez' is not a GET route the gateway serves"),
    ("gateway_readiness_on_a_post_route", [(GATEWAY_DEP, "path: /readyz", "path: /v1/actions")],
     "Deployment/handoff-gateway: readinessProbe path '/v1/actions' is not a GET route the gateway serves"),
    ("gateway_route_removed_from_its_router", [("src/gateway/web.rs", '.route("/readyz", get(readyz))', "")],
     "Deployment/handoff-gateway: readinessProbe path '/readyz' is not a GET route the gateway serves"),
    ("gateway_bind_port_differs", [(GATEWAY, 'bind = "0.0.0.0:9880"', 'bind = "0.0.0.0:9881"')],
     "Deployment/handoff-gateway: containerPort named http is 9880, [gateway] bind port is 9881",
     "Service/handoff-gateway port http: targetPort http -> 9880, the gateway listens on 9881",
     "PodMonitor/handoff-gateway port 'http' is not the gateway's port 9881"),
    ("gateway_bind_on_loopback", [(GATEWAY, 'bind = "0.0.0.0:9880"', 'bind = "127.0.0.1:9880"')],
     "[gateway] bind 127.0.0.1:9880: the kubelet probes"),
    ("gateway_grace_period_below_its_shutdown", [(GATEWAY, '# submit_timeout = "10s"', 'submit_timeout = "20s"')],
     "terminationGracePeriodSeconds 40 is not above 45s"),
    ("gateway_without_job_label", [("deploy/kubernetes/gateway-podmonitor.yaml", "  jobLabel: app.kubernetes.io/name\n", "")],
     "PodMonitor/handoff-gateway gives job='<namespace>/handoff-gateway'"),
    ("gateway_single_replica", [(GATEWAY_DEP, "  replicas: 2\n", "  replicas: 1\n")],
     "replicas 1: want 2 or more; with one, a node drain or a crash takes the gateway away"),
    ("gateway_without_disruption_budget",
     [("deploy/kubernetes/gateway-pdb.yaml", "      app.kubernetes.io/name: handoff-gateway", "      app.kubernetes.io/name: handoff-gatewy")],
     "PodDisruptionBudget for the gateway: want one with maxUnavailable 1, found []"),
    ("gateway_image_differs", [(GATEWAY_DEP, "image: handoff\n", "image: handoff-gateway\n")],
     "Deployment/handoff-gateway: image 'handoff-gateway' != the processors' 'handoff'"),
    ("gateway_writable_root", [(GATEWAY_DEP, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")],
     "Deployment/handoff-gateway: readOnlyRootFilesystem False"),
    ("gateway_kafka_secret_not_mounted",
     [(GATEWAY_DEP, "            - name: kafka-sasl\n              mountPath: /run/secrets/kafka\n              readOnly: true\n", "")],
     "Deployment/handoff-gateway: kafka.common.sasl.password = 'file:/run/secrets/kafka/password': no Secret is mounted at /run/secrets/kafka"),

    # ---- the Dockerfile ---------------------------------------------------------------------
    ("dockerfile_user_and_command",
     [("Dockerfile", "USER 65532:65532", "USER root"),
      ("Dockerfile", '"/etc/handoff/handoff.toml"]', '"/etc/handoff.toml"]')],
     "final stage USER root", "!= the Deployment's args"),
    ("dockerfile_built_otherwise",
     [("Dockerfile", "    cargo build --release --locked \\\n", "    cargo build \\\n")],
     "no RUN with cargo build --release --locked"),
    ("dockerignore_keeps_target",
     [(".dockerignore", "target/\n", "")],
     ".dockerignore missing or does not exclude target/"),
]


def _broken(edits: list[tuple[str, str, str]], expected: tuple[str, ...]):
    def test(self: CheckTest) -> None:
        for path, old, new in edits:
            self.tree.edit(path, old, new)
        self.assertFails(*expected)

    return test


for _name, _edits, *_expected in BROKEN:
    assert not hasattr(CheckTest, f"test_{_name}"), f"two tests named test_{_name}"
    setattr(CheckTest, f"test_{_name}", _broken(_edits, tuple(_expected)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
