"""Checks the Istio examples under envoy/istio/: each WasmPlugin loads through Istio's API types
(PyPI cloudcoil-models-istio) with nothing left over (pydantic ignores unknown fields, so the
document is compared with its round trip: a misspelt field is reported), and its pluginConfig is
written as JSON for the filter's own validator (`check_config`).

usage: check_istio.py OUT_DIR FILE.yaml [FILE.yaml ...]
       check_istio.py --self-test FILE.yaml
"""
import json
import pathlib
import sys

import yaml
from cloudcoil.models.istio.extensions.v1alpha1 import WasmPlugin


def leftovers(given, parsed, where=""):
    """Paths present in `given` but not in `parsed` (what the types did not know)."""
    out = []
    if isinstance(given, dict):
        for k, v in given.items():
            if not isinstance(parsed, dict) or k not in parsed:
                out.append(f"{where}.{k}")
            else:
                out += leftovers(v, parsed[k], f"{where}.{k}")
    elif isinstance(given, list) and isinstance(parsed, list):
        for i, (g, p) in enumerate(zip(given, parsed)):
            out += leftovers(g, p, f"{where}[{i}]")
    return out


def check(doc):
    plugin = WasmPlugin.model_validate(doc)
    dumped = plugin.model_dump(by_alias=True, exclude_unset=True, mode="json")
    # pluginConfig is a free-form Struct: the filter's own validator checks it.
    given = {**doc, "spec": {k: v for k, v in doc["spec"].items() if k != "pluginConfig"}}
    unknown = leftovers(given, dumped)
    if unknown:
        raise ValueError(f"unknown to Istio's WasmPlugin: {', '.join(unknown)}")
    return doc["spec"].get("pluginConfig")


def self_test(path):
    text = pathlib.Path(path).read_text()
    for good, bad in [("failStrategy: FAIL_CLOSE", "failStrategy: FAIL_CLOSED"),
                      ("imagePullPolicy:", "imagePulPolicy:"),
                      ("  - mode: SERVER", "  - mod: SERVER")]:
        assert good in text, good
        try:
            for doc in yaml.safe_load_all(text.replace(good, bad, 1)):
                check(doc)
        except Exception:  # noqa: BLE001 - any rejection is what we want
            print(f"self-test: '{bad}' rejected")
            continue
        print(f"self-test: '{bad}' was accepted; the check is not strict")
        sys.exit(1)


def main():
    if sys.argv[1] == "--self-test":
        self_test(sys.argv[2])
        return
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    failed = False
    for path in sys.argv[2:]:
        for doc in yaml.safe_load_all(pathlib.Path(path).read_text()):
            name = doc.get("metadata", {}).get("name", "unnamed")
            try:
                config = check(doc)
            except Exception as e:  # noqa: BLE001 - report every kind of rejection
                print(f"{path}: {doc.get('kind')} {name}: rejected: {e}")
                failed = True
                continue
            (out / f"istio.{name}.json").write_text(json.dumps(config))
            print(f"{path}: WasmPlugin {name} valid for Istio's API types")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
