"""Strictly loads the proxy configurations under envoy/ through the proxies' own API types, and
writes each embedded edgepack plugin configuration as JSON for the filter's own validator
(`cargo run -p edgepack-filter --example check_config`):

- Envoy bootstraps and xDS resource files (ECDS): Envoy's v3 types from PyPI envoy-data-plane;
  unknown fields, misspelt enum values and unregistered @types fail.
- Istio WasmPlugin resources: Istio's types from PyPI cloudcoil-models-istio. Pydantic ignores
  unknown fields, so the document is compared with its round trip: a misspelt field is reported.

usage: check_envoy_config.py OUT_DIR FILE.yaml [FILE.yaml ...]
       check_envoy_config.py --self-test FILE.yaml [...]   (proves each check rejects a mistake)
"""
import importlib
import json
import pathlib
import sys

import yaml
from cloudcoil.models.istio.extensions.v1alpha1 import WasmPlugin
from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap
from envoy_data_plane.envoy.service.discovery.v3 import DiscoveryResponse

# Mistakes each kind of document must be rejected for (the first occurrence is replaced).
MISTAKES = {
    "bootstrap": [
        ("stat_prefix: edge", "stat_prefx: edge"),
        ("failure_policy: FAIL_CLOSED", "failure_policy: FAIL_CLOSD"),
        ("http.wasm.v3.Wasm", "http.wasm.v3.Wasmm"),
    ],
    "xds": [
        ("  root_id: edgepack", "  rootid: edgepack"),
        ("core.v3.TypedExtensionConfig", "core.v3.TypedExtensionConfg"),
    ],
    "istio": [
        ("failStrategy: FAIL_CLOSE", "failStrategy: FAIL_CLOSED"),
        ("imagePullPolicy:", "imagePulPolicy:"),
        ("pluginName: edgepack", "pluginNam: edgepack"),
    ],
}


def kind_of(doc):
    if doc.get("kind") == "WasmPlugin":
        return "istio"
    return "xds" if "resources" in doc else "bootstrap"


def register_types(node):
    """Imports the package of every @type so Any fields can be unpacked."""
    if isinstance(node, dict):
        t = node.get("@type")
        if isinstance(t, str) and t.startswith("type.googleapis.com/"):
            package = t.split("/", 1)[1].rsplit(".", 1)[0]
            importlib.import_module("envoy_data_plane." + package)
        for v in node.values():
            register_types(v)
    elif isinstance(node, list):
        for v in node:
            register_types(v)


def envoy_plugin_configs(node, found):
    if isinstance(node, dict):
        if node.get("@type", "").endswith("envoy.extensions.filters.http.wasm.v3.Wasm"):
            found.append((node["config"]["name"], node["config"]["configuration"]["value"]))
        for v in node.values():
            envoy_plugin_configs(v, found)
    elif isinstance(node, list):
        for v in node:
            envoy_plugin_configs(v, found)


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
    """Loads one document strictly; returns its edgepack plugin configurations [(name, json)]."""
    kind = kind_of(doc)
    if kind == "istio":
        dumped = WasmPlugin.model_validate(doc).model_dump(
            by_alias=True, exclude_unset=True, mode="json"
        )
        # pluginConfig is a free-form Struct: the filter's own validator checks it.
        given = {**doc, "spec": {k: v for k, v in doc["spec"].items() if k != "pluginConfig"}}
        unknown = leftovers(given, dumped)
        if unknown:
            raise ValueError(f"unknown to Istio's WasmPlugin: {', '.join(unknown)}")
        return [(doc["metadata"]["name"], json.dumps(doc["spec"]["pluginConfig"]))]
    register_types(doc)
    if kind == "xds":
        DiscoveryResponse.from_dict(doc)
        # Each resource is an Any: load it through the class its @type names, so an unknown
        # type or field inside fails here too.
        for r in doc["resources"]:
            package, _, name = r["@type"].split("/", 1)[1].rpartition(".")
            cls = getattr(importlib.import_module("envoy_data_plane." + package), name)
            cls.from_dict({k: v for k, v in r.items() if k != "@type"})
    else:
        Bootstrap.from_dict(doc)
    found = []
    envoy_plugin_configs(doc, found)
    return found


def load_all(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def self_test(path):
    text = pathlib.Path(path).read_text()
    for doc in load_all(text):
        check(doc)
    for good, bad in MISTAKES[kind_of(load_all(text)[0])]:
        assert good in text, f"{path}: '{good}' not found for the self-test"
        try:
            for doc in load_all(text.replace(good, bad, 1)):
                check(doc)
        except Exception:  # noqa: BLE001 - any rejection is what we want
            print(f"self-test {path}: '{bad}' rejected")
            continue
        print(f"self-test {path}: '{bad}' was accepted; the check is not strict")
        sys.exit(1)


def main():
    if sys.argv[1] == "--self-test":
        for path in sys.argv[2:]:
            self_test(path)
        return
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    failed = False
    for path in sys.argv[2:]:
        for doc in load_all(pathlib.Path(path).read_text()):
            try:
                found = check(doc)
            except Exception as e:  # noqa: BLE001 - report every kind of rejection
                print(f"{path}: rejected by its API types: {type(e).__name__}: {e}")
                failed = True
                continue
            prefix = "istio" if kind_of(doc) == "istio" else pathlib.Path(path).stem
            for name, value in found:
                json.loads(value)
                (out / f"{prefix}.{name}.json").write_text(value)
            print(f"{path}: valid {kind_of(doc)} document, {len(found)} plugin configuration(s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
