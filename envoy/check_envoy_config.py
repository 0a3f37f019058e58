"""Strictly loads Envoy bootstrap YAML files through Envoy's v3 API types (PyPI envoy-data-plane):
unknown fields, misspelt enum values and unregistered @types fail. Prints the plugin configuration
(StringValue JSON) of every wasm filter to a file, for the filter's own validator.

usage: check_envoy_config.py OUT_DIR FILE.yaml [FILE.yaml ...]
       check_envoy_config.py --self-test FILE.yaml   (proves the check rejects what it must)
"""
import importlib
import json
import pathlib
import sys

import yaml

from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap
from envoy_data_plane.envoy.service.discovery.v3 import DiscoveryResponse


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


def plugin_configs(node, found):
    if isinstance(node, dict):
        if node.get("@type", "").endswith("envoy.extensions.filters.http.wasm.v3.Wasm"):
            conf = node["config"]["configuration"]
            found.append((node["config"]["name"], conf["value"]))
        for v in node.values():
            plugin_configs(v, found)
    elif isinstance(node, list):
        for v in node:
            plugin_configs(v, found)


def check(doc):
    """A bootstrap, or (with top-level `resources`) an xDS DiscoveryResponse such as an ECDS file."""
    register_types(doc)
    if "resources" in doc:
        DiscoveryResponse.from_dict(doc)
        # Each resource is an Any: load it through the class its @type names, so an unknown
        # type or field inside fails here too.
        for r in doc["resources"]:
            package, _, name = r["@type"].split("/", 1)[1].rpartition(".")
            cls = getattr(importlib.import_module("envoy_data_plane." + package), name)
            cls.from_dict({k: v for k, v in r.items() if k != "@type"})
    else:
        Bootstrap.from_dict(doc)


def self_test(path):
    """A misspelt field, a misspelt enum value and a wrong @type must each be rejected."""
    text = pathlib.Path(path).read_text()
    check(yaml.safe_load(text))
    for good, bad in [
        ("stat_prefix: edge", "stat_prefx: edge"),
        ("failure_policy: FAIL_CLOSED", "failure_policy: FAIL_CLOSD"),
        ("http.wasm.v3.Wasm", "http.wasm.v3.Wasmm"),
    ]:
        assert good in text, good
        try:
            check(yaml.safe_load(text.replace(good, bad, 1)))
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
        doc = yaml.safe_load(pathlib.Path(path).read_text())
        try:
            check(doc)
        except Exception as e:  # noqa: BLE001 - report every kind of rejection
            print(f"{path}: rejected by Envoy's v3 API: {type(e).__name__}: {e}")
            failed = True
            continue
        found = []
        plugin_configs(doc, found)
        for name, value in found:
            json.loads(value)
            (out / f"{pathlib.Path(path).stem}.{name}.json").write_text(value)
        kind = "xDS resource file" if "resources" in doc else "bootstrap"
        print(f"{path}: valid Envoy v3 {kind}, {len(found)} wasm plugin configuration(s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
