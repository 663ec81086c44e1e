"""The inbox (`handoff inbox`): inbox.toml as mounted, its [kafka], [topics], [input] and matrix
the processors', its people and roles, its probes and ports against the routes of its router
(src/inbox/web.rs) and [inbox] bind, the startup window, sign-in through an SSO proxy, who reaches
it (Service, PodMonitor, public_url, an Ingress), its secrets by reference, its image, replicas,
rollouts and disruptions. A group of check.py's checks.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from checks_workload import (
    Workload,
    matrix_file,
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


def ingress_reaches(path: str, path_type: str, route: str) -> bool:
    """Whether an Ingress path (Exact, or Prefix: whole segments; ImplementationSpecific counts as
    Prefix) takes the requests for `route`, where `{id}` stands for any segment."""
    p, r = [s for s in path.split("/") if s], [s for s in route.split("/") if s]
    fits = all(b.startswith(("{", ":", "*")) or a == b for a, b in zip(p, r))
    return fits and (len(p) == len(r) if path_type == "Exact" else len(p) <= len(r))


def is_loopback(address: str) -> bool:
    """Whether `address` is an IP address of the loopback interface."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_inbox(c: Check, w: Workload, proc: Workload, proc_settings: dict, proc_matrix) -> None:
    """`handoff inbox`: its settings against the processors', its probes, ports and Ingress against
    the routes it serves, its sign-in and secrets, its replicas and disruptions."""
    c.section(f"the inbox: {w.config_path}, as mounted ({w.kind_name}, `handoff inbox`)")
    s, key = settings_file(c, w, "a settings change rolls the inbox pods (it reads them once, at start-up)",
                           "inbox pod")
    if s is None:
        return
    inbox = s.get("inbox") or {}
    same_sections(c, key, s, proc, proc_settings, "the inbox reads what the processors write (changelog, role "
                  "topics) on the same cluster with the same credentials")
    inbox_matrix(c, w, s, key, proc_matrix)
    inbox_people(c, inbox, key)
    inbox_served(c, w, s)
    inbox_reached(c, w, inbox)

    c.section("the inbox: sign-in, secrets, security, image")
    reps = w.spec.get("replicas", 1)
    c.check("cookie_key" in inbox, f"[inbox] cookie_key set: the {reps} replicas share sessions and form tokens",
            "[inbox] cookie_key unset: each replica makes its own key at start-up, so a person signed in on one "
            "is signed out by the next request that reaches another (or by any restart), and a form served by "
            "one fails the form-token check on another (403)")
    secret_references(c, w, s)
    security(c, w)
    same_image(c, w, proc, "the inbox must be the version of the processors whose records it reads")

    c.section("the inbox: replicas, rollouts, disruptions")
    replicated(c, w, "the inbox", "caught up with the changelog", "PodDisruptionBudget for the inbox")


def inbox_matrix(c: Check, w: Workload, s: dict, key: str, proc_matrix) -> None:
    """The inbox's matrix is the processors', from a hash-suffixed ConfigMap, and has every role
    its people and receivers name."""
    mine = matrix_file(c, w, s, f"[matrix] path unset in {key}: the inbox would use the built-in matrix, not "
                                "the processors' (other roles, views and redaction)")
    if mine is None:
        return
    g, data = mine[0], c.generators[mine[0]]["data"][mine[1]]
    c.check(c.generators[g]["hashed"],
            f"ConfigMap {g} keeps its hash suffix: a matrix edit rolls the inbox pods, which read the matrix "
            "once",
            f"ConfigMap {g} has disableNameSuffixHash: the inbox reads the matrix once at start-up, so an edit "
            "would reach no inbox pod until it restarts (stale roles, views and redaction); give the inbox a "
            "hash-suffixed ConfigMap of the same matrix.toml")
    if proc_matrix:
        c.check(data == c.generators[proc_matrix[0]]["data"][proc_matrix[1]],
                f"ConfigMap {g} holds the processors' matrix (ConfigMap {proc_matrix[0]})",
                f"ConfigMap {g} holds another matrix than the processors' ConfigMap {proc_matrix[0]}: the inbox "
                "would show other roles and views than the processors route to")
    try:
        roles = set((tomllib.loads(data).get("roles") or {}).keys())
    except tomllib.TOMLDecodeError as e:
        return c.fail(f"ConfigMap {g} {mine[1]}: not TOML: {e}")
    named = [(f"inbox.people[{i}].roles", p.get("roles") or [])
             for i, p in enumerate((s.get("inbox") or {}).get("people") or []) if isinstance(p, dict)]
    named += [(f"notify.receivers[{i}].roles", rc.get("roles") or [])
              for i, rc in enumerate((s.get("notify") or {}).get("receivers") or []) if isinstance(rc, dict)]
    bad = [(f, x) for f, xs in named for x in xs if x not in roles]
    c.check(not bad, f"the roles of {len(named)} people and receivers are roles of the matrix",
            "; ".join(f"{f}: {x!r} is not a role of the matrix" for f, x in bad)
            + f" (roles: {', '.join(sorted(roles))}): the inbox refuses to start (exit 2)")


def inbox_people(c: Check, inbox: dict, key: str) -> None:
    """[[inbox.people]]: each with roles, a name of their own, and (auth = "token") a token's SHA-256."""
    people = [p for p in inbox.get("people") or [] if isinstance(p, dict)]
    token = inbox.get("auth", "token") == "token"
    if not people:
        return c.note(f"[[inbox.people]] is empty in {key}: nobody can sign in until people are added")
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
    c.check(not bad, f"{len(people)} people, each with roles" + (" and a token's SHA-256" if token else ""),
            "; ".join(bad) + ": the inbox refuses to start (exit 2)")


def inbox_served(c: Check, w: Workload, s: dict) -> None:
    """The inbox's probes and ports against the routes of its router and [inbox] bind; the startup
    probe's window against connect_timeout."""
    router, srcs = c.rel(c.inbox_routes_src), ", ".join(map(c.rel, c.routes_src))
    c.section(f"the inbox: probes and ports against its routes ({router}, paths from {srcs}) and [inbox] bind")
    if not c.inbox_routes_src.is_file():
        c.fail(f"the inbox's router is missing: {c.inbox_routes_src}")
    else:
        consts = rust_str_consts(c.const_src + [x for x in c.routes_src if x.is_file()] + [c.inbox_routes_src])
        w.routes, unresolved = router_routes(c.inbox_routes_src, consts)
        for u in unresolved:
            c.fail(f"{router}: .route({u}, ...) names a path const found in none of {srcs}, {router}")
    c.note("inbox routes found: " + (", ".join(f"{'/'.join(sorted(m.upper() for m in v['methods']))} {p}"
                                                   for p, v in sorted(w.routes.items())) or "none"))
    served(c, w, (s.get("inbox") or {}).get("bind", "127.0.0.1:9870"), "[inbox] bind", "the inbox",
           (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")),
           {"/readyz": " (on /readyz it would restart the inbox while it catches up with the changelog)",
            "startupProbe": " (the inbox answers no request until it has reached Kafka: without one, the "
                            "liveness probe restarts it while it connects)"})
    startup_window(c, w, s, "the inbox", "the changelog")


def inbox_reached(c: Check, w: Workload, inbox: dict) -> None:
    """Who reaches the inbox: the SSO proxy (auth = "proxy"), its Service and PodMonitor, an Ingress."""
    front, proxy = {w.bport}, inbox.get("auth", "token") == "proxy"
    if proxy:
        c.check(bool(inbox.get("trusted_proxies")) and "proxy_secret" in inbox,
                'auth = "proxy": trusted_proxies and proxy_secret are set',
                '[inbox] auth = "proxy" needs trusted_proxies (the proxy\'s addresses) and proxy_secret (a '
                "secret the proxy sends with every request): the inbox refuses to start without them")
        remote = [a for a in inbox.get("trusted_proxies", []) if not is_loopback(a)]
        c.check(not remote, 'auth = "proxy": trusted_proxies are loopback only (the SSO proxy runs in the pod)',
                f"[inbox] trusted_proxies {remote}: pod IPs change with every restart, and trusted_proxies "
                "takes addresses, not ranges; run the SSO proxy as a container of the inbox pod and trust "
                "127.0.0.1 and ::1 only")
        ports = {p.get("containerPort") for ct in w.containers if ct is not w.ctr for p in ct.get("ports") or []}
        if c.check(bool(ports), f'auth = "proxy": a proxy container beside the inbox serves {sorted(ports)}',
                   f'auth = "proxy", but {w.kind_name} has no other container with a port: the inbox '
                   "believes the header only from 127.0.0.1/::1, so nobody could sign in; add the SSO proxy as "
                   "a container of the pod (README.md)"):
            front = ports
    svcs = reached(c, w, "the inbox", "[inbox] bind", front, proxy and (
        f'but with auth = "proxy" people must come through the proxy ({sorted(front)}): straight to the inbox, '
        "every page answers 401"))
    c.check(bool(svcs), f"Service {', '.join(d['metadata']['name'] for d in svcs)} takes the inbox's pods",
            "no Service selects the inbox's pods: nothing can put the inbox before people")

    c.section("the inbox: how people reach it (public_url, Ingress)")
    pub, host = inbox.get("public_url"), None
    if c.check(bool(pub), f"[inbox] public_url {pub}",
               "[inbox] public_url unset: links in notifications would point at http://"
               f"{inbox.get('bind', '127.0.0.1:9870')}, answers' Origin would not match it, and cookies would "
               "not be Secure"):
        host = urlparse(pub).hostname
        c.check(inbox.get("secure_cookies", pub.startswith("https://")) is True,
                "session cookies are Secure (public_url https://)",
                f"[inbox] public_url {pub} is not https:// and secure_cookies is not true: session cookies "
                "would travel unencrypted")
    svc_ports = {d["metadata"]["name"]: {x.get(k) for x in (d.get("spec") or {}).get("ports") or []
                                         for k in ("name", "port")} for d in svcs}
    ingresses = c.find("Ingress") + c.find("Ingress", c.examples)
    if not [ing for ing in ingresses if ingress(c, ing, w, svc_ports, proxy, pub, host)]:
        c.note("no Ingress routes to the inbox's Service (inbox-ingress.example.yaml shows one): whatever you "
               "put before it, publish the pages only, not /metrics, /healthz, /readyz")


def ingress(c: Check, ing: dict, w: Workload, svc_ports: dict, proxy: bool, pub, host) -> bool:
    """An Ingress to the inbox's Service routes every page and none of the ops routes, for
    public_url's host, with TLS. False when it leads nowhere near the inbox."""
    n, spec, paths = (ing.get("metadata") or {}).get("name", "?"), ing.get("spec") or {}, []
    for rule in spec.get("rules") or []:
        for hp in (rule.get("http") or {}).get("paths") or []:
            be = (hp.get("backend") or {}).get("service") or {}
            if be.get("name") in svc_ports:
                port = (be.get("port") or {}).get("name", (be.get("port") or {}).get("number"))
                at = f"Ingress/{n} {hp.get('path')}: Service/{be['name']}"
                c.check(port in svc_ports[be["name"]], f"{at} port {port}", f"{at} has no port {port!r}")
                paths.append((hp.get("path", "/"), hp.get("pathType", "Prefix"), rule.get("host")))
    if not paths:
        return False

    def routed(route: str) -> bool:
        return any(ingress_reaches(p, t, route) for p, t, _ in paths)

    ops = sorted(p for p, v in w.routes.items() if v["ops"])
    exposed = [x for x in ops if routed(x)]
    missing = sorted(x for x in w.routes if x not in ops and not routed(x))
    c.checks([
        (not exposed, f"Ingress/{n} routes none of {', '.join(ops)}: they stay inside the cluster",
         (f"Ingress/{n} publishes {', '.join(exposed)}: anyone could read the inbox's metrics (receivers, "
          "people's answer counts) and probes; route the pages path by path instead of a prefix / "
          "(inbox-ingress.example.yaml)")),
        (not missing, f"Ingress/{n} routes every page of the inbox ({len(w.routes) - len(ops)} routes)",
         f"Ingress/{n} does not route {', '.join(missing)}: from outside, those would be 404")])
    for p, t, _ in paths:
        if any(ingress_reaches(p, t, x) for x in w.routes):
            c.ok(f"Ingress/{n} path {p} ({t}) leads to routes of the inbox")
        elif proxy:
            c.note(f"Ingress/{n} path {p} ({t}) leads to no route of the inbox: the SSO proxy's own (its "
                   "sign-in callback)")
        else:
            c.fail(f"Ingress/{n} path {p} ({t}) leads to no route of the inbox")
    hosts, tls = {h for _, _, h in paths}, {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
    if host:
        c.check(hosts == {host}, f"Ingress/{n} host {host} = [inbox] public_url's",
                f"Ingress/{n} hosts {sorted(map(str, hosts))} != [inbox] public_url's host {host!r}: links in "
                "notifications would lead elsewhere, and answers would fail the Origin check")
    if host and pub.startswith("https://"):
        c.check(host in tls, f"Ingress/{n} terminates TLS for {host}",
                f"Ingress/{n} has no tls entry for {host}, yet public_url is https://")
    return True
