"""The shape of every object, against its schema: the Kubernetes API's kinds (the manifests, the
*.example.yaml files, the ConfigMaps the kustomization generates) against kubernetes-validate's,
strictly (an unknown field fails), for each --kube-version; the custom resources it has no schema
for (KEDA's ScaledObject and TriggerAuthentication, the Prometheus Operator's PodMonitor) against
their CRDs' schemas vendored in schemas/, with jsonschema, as strictly. A group of check.py's checks.
"""

from __future__ import annotations

import json
import pathlib
from typing import TYPE_CHECKING

import jsonschema
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

if TYPE_CHECKING:
    from check import Check

SCHEMAS = pathlib.Path(__file__).resolve().parent / "schemas"
OBJECT_META = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def strict(schema):
    """The schema with `additionalProperties: false` wherever it lists properties and says nothing of
    others (as in kubernetes-validate's strict schemas), and with `nullable` honoured."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        if schema.get("nullable") and isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]
    for v in schema.values() if isinstance(schema, dict) else schema if isinstance(schema, list) else []:
        strict(v)
    return schema


def crd_validators(folder: pathlib.Path) -> dict:
    """{(apiVersion, kind): (validator, origin)} of the vendored CRD schemas. Their metadata is
    checked against kubernetes-validate's ObjectMeta, and must have a name."""
    latest = kv.latest_version()
    defs = kv.schema_contents(f"kubernetes-json-schema/v{latest}-local-strict/_definitions.json", latest)
    registry, out = Resource.from_contents(defs) @ Registry(), {}
    for f in sorted(folder.glob("*.json")):
        s = strict(json.loads(f.read_text()))
        s["properties"]["metadata"] = {"$ref": OBJECT_META, "required": ["name"]}
        s["required"] = sorted({*s.get("required", []), "metadata"})
        key = (s["properties"]["apiVersion"]["enum"][0], s["properties"]["kind"]["enum"][0])
        origin = f"{s['$comment'].split(' (')[0]}, {f.relative_to(folder.parent)}"
        out[key] = (jsonschema.Draft202012Validator(s, registry=registry), origin)
    return out


def schema_errors(validator, doc: dict) -> list[str]:
    """What the validator finds wrong with `doc`, each as `field.path: what`."""
    errs = []
    for e in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path).lstrip(".") or "(top)"
        if e.validator == "additionalProperties":
            errs += [f"{at}.{k}: unknown field (not in the CRD)"
                     for k in sorted(set(e.instance) - set(e.schema.get("properties", {})))]
        elif e.validator == "required":
            errs += [f"{at}.{k}: required by the CRD" for k in e.validator_value if k not in e.instance]
        elif e.validator == "type":
            errs.append(f"{at}: must be of type {e.validator_value}, is {e.instance!r}")
        else:
            errs.append(f"{at}: {e.message}")
    return errs


def check_schemas(c: Check) -> None:
    """Every object loaded (resources, generated ConfigMaps, examples) against its schema."""
    crds = crd_validators(SCHEMAS)
    c.section(f"schemas: kubernetes-validate {kv.__version__}, strict, Kubernetes "
              f"{', '.join(kv.major_minor(v) for v in c.versions)}; the CRDs' in schemas/, strict")
    for f, d in c.docs + c.examples:
        kind, api = d.get("kind", "?"), d.get("apiVersion", "?")
        what = f"{f}: {kind}/{(d.get('metadata') or {}).get('name', '?')}"
        if (api, kind) in crds:
            validator, origin = crds[(api, kind)]
            errs = schema_errors(validator, d)
            for e in errs:
                c.fail(f"{what}: invalid against the CRD's schema ({origin}): {e}")
            if not errs:
                c.ok(f"{what} ({api}) valid against the CRD's schema ({origin})")
            continue
        try:
            valid = [kv.validate(d, v, strict=True) for v in c.versions]
            c.ok(f"{what} ({api}) valid against {', '.join(valid)}")
        except kv.ValidationError as e:
            c.fail(f"{what}: invalid against {e.version}: {'.'.join(map(str, e.path)) or '(top)'}: {e.message}")
        except kv.SchemaNotFoundError:
            c.fail(f"{what}: no schema for {api} {kind}, in kubernetes-validate or schemas/")
