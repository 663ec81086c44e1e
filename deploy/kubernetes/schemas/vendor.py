#!/usr/bin/env python3
"""Re-creates the vendored CRD schemas here from their npm packages (needs npm; run by hand when
a pin below changes, never by the check). Each package ships, in a model's .js file, the
openAPIV3Schema of the upstream CRD as a JSON object (`const schema = {...}`): this copies that
object out, with a "$comment" saying where it came from.

    python3 deploy/kubernetes/schemas/vendor.py
"""

import json
import pathlib
import subprocess
import tarfile
import tempfile

HERE = pathlib.Path(__file__).resolve().parent

# (npm package@version, file in it, upstream CRD it was generated from, output file)
PINS = [
    ("@kubernetes-models/keda@0.3.2", "keda.sh/v1alpha1/ScaledObject.js",
     "KEDA v2.10.1 (keda-2.10.1.yaml), CRD scaledobjects.keda.sh",
     "keda.sh_v1alpha1_scaledobject.json"),
    ("@kubernetes-models/keda@0.3.2", "keda.sh/v1alpha1/TriggerAuthentication.js",
     "KEDA v2.10.1 (keda-2.10.1.yaml), CRD triggerauthentications.keda.sh",
     "keda.sh_v1alpha1_triggerauthentication.json"),
    ("@kubernetes-models/prometheus-operator@4.0.0", "monitoring.coreos.com/v1/PodMonitor.js",
     ("Prometheus Operator v0.57.0 (example/prometheus-operator-crd-full/"
      "monitoring.coreos.com_podmonitors.yaml), CRD podmonitors.monitoring.coreos.com"),
     "monitoring.coreos.com_v1_podmonitor.json"),
]


def schema_of(js: str) -> dict:
    start = js.index("const schema = ") + len("const schema = ")
    return json.JSONDecoder().raw_decode(js[start:])[0]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for pkg, member, upstream, out in PINS:
            tgz = subprocess.run(["npm", "pack", "--silent", pkg], cwd=tmp, check=True,
                                 capture_output=True, text=True).stdout.split()[-1]
            with tarfile.open(pathlib.Path(tmp) / tgz) as tar:
                js = tar.extractfile(f"package/{member}").read().decode()
            schema = {"$comment": f"{upstream}, Apache-2.0; the openAPIV3Schema as npm package "
                                  f"{pkg} (MIT) ships it in {member}. See README.md.",
                      **schema_of(js)}
            (HERE / out).write_text(json.dumps(schema, indent=1) + "\n")
            print(f"{out}: from {pkg} {member}")


if __name__ == "__main__":
    main()
