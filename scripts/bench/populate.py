#!/usr/bin/env python3
"""Fills a kiln registry with N approved crates through its HTTP API, as Cargo and the workers
would (publish, audit and build results, approval), and reports publish latency.

    populate.py URL ADMIN_TOKEN N OUT_DIR

Writes OUT_DIR/paths.txt (one index path per crate) and prints publish p50/p99 in ms.
"""
import gzip
import io
import json
import struct
import sys
import tarfile
import time
import urllib.request


def completion(url, token, kind):
    """What the bench's stand-in worker reports: a passing audit or a library build, with a
    blob uploaded as its statement or log."""
    _, blob = call("POST", f"{url}/api/kiln/v1/blobs", token, kind.encode(), "application/octet-stream")
    if kind == "audit":
        return {"worker": "bench", "kind": "audit", "statement": {"digest": blob["digest"], "kind": "audit"},
                "report": {"schema": "https://kiln.dev/schemas/audit-report/v1", "subject": None,
                           "verdict": "pass", "summary": {"deny": 0, "review": 0, "info": 0},
                           "findings": [], "advisories": [], "packages": [],
                           "advisory_db": {"revision": "bench", "advisories": 0, "newest": "2026-01-01"},
                           "policy_digest": "sha256:" + "0" * 64, "rules": [], "checks": [], "tools": [],
                           "date": "2026-01-01"}}
    return {"worker": "bench", "kind": "build", "report": {"target": "wasm32-wasip1", "isolation": "none"},
            "artifacts": [{"digest": blob["digest"], "kind": "log"}]}


def call(method, url, token, body=None, content_type="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", token)
    if data is not None:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return response.status, (json.loads(text) if text else None)


def crate_file(name, version):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, content in [
            ("Cargo.toml", f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n'),
            ("src/lib.rs", f"pub fn id() -> &'static str {{ \"{name}\" }}\n"),
        ]:
            data = content.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{path}")
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def index_path(name):
    n = name.lower()
    if len(n) <= 2:
        return f"{len(n)}/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"


def main():
    url, admin, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    _, publisher = call("POST", f"{url}/api/kiln/v1/tokens", admin,
                        {"login": "bench", "name": "bench", "scopes": ["publish", "worker", "review"]})
    token = publisher["token"]
    latencies = []
    paths = []
    for i in range(count):
        name = f"bench-crate-{i:04d}"
        for version in ("0.1.0", "0.2.0"):
            meta = json.dumps({"name": name, "vers": version, "deps": [], "features": {},
                               "description": f"bench crate {i}", "license": "MIT"}).encode()
            tarball = crate_file(name, version)
            body = struct.pack("<I", len(meta)) + meta + struct.pack("<I", len(tarball)) + tarball
            started = time.perf_counter()
            call("PUT", f"{url}/api/v1/crates/new", token, body, "application/octet-stream")
            latencies.append(time.perf_counter() - started)
            for kind in ("audit", "build"):
                _, job = call("POST", f"{url}/api/kiln/v1/jobs/claim", token, {"kind": kind, "worker": "bench"})
                call("POST", f"{url}/api/kiln/v1/jobs/{job['id']}/complete", token,
                     completion(url, token, kind))
            call("POST", f"{url}/api/kiln/v1/submissions/{name}/{version}/approve", token, {})
        paths.append(index_path(name))
    with open(f"{out}/paths.txt", "w") as f:
        f.write("\n".join(paths) + "\n")
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"publish: {len(latencies)} publishes, p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
