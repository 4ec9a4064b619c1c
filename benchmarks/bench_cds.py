"""Service time of `rxgate cds` for a typical order-sign call against a hello-world endpoint of
the same framework, served by uvicorn in the same run (one worker process pinned to one core).

Typical request: one isatuximab draft order with the patient's prefetch (Patient, 6
Observations, a Condition, an AllergyIntolerance, an active order), a signed RS384 token.
The hello-world endpoint is a POST route on the same FastAPI app behind the same middleware,
taking the same body and returning `{"cards": []}` without verifying the token or checking
anything. Client on another core, one keep-alive connection, the two interleaved request by request
(so both see the same machine noise). Prints p50,
p99 and max for both, and the difference (rxgate's own cost); no threshold is asserted here.

    python benchmarks/bench_cds.py [--requests 2000]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = r'''
import os, sys, uvicorn
from fastapi import Request
from rxgate.cds.app import create_app
from rxgate.cds.config import CdsSettings
app = create_app(CdsSettings.from_env())
@app.post("/hello")
async def hello(request: Request):
    await request.body()
    return {"cards": []}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()

    import httpx
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    from tests.cds.bundles import contract_example_resources
    from tests.cds.conftest import ISSUER, KID, make_token
    from tests.cds.test_cds_service import hook_request

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = Path(tempfile.mkdtemp(prefix="rxgate-bench-")) / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": KID}]}))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RXGATE_CDS_ISSUERS": json.dumps({ISSUER: jwks.as_uri()}),
           "RXGATE_CDS_AUDIENCE": base, "PYTHONPATH": os.pathsep.join(
               [str(ROOT / "services"), os.environ.get("PYTHONPATH", "")])}
    cpus = sorted(os.sched_getaffinity(0))
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env)
    try:
        if len(cpus) > 1:
            os.sched_setaffinity(server.pid, {cpus[0]})
            os.sched_setaffinity(0, set(cpus[1:]))
        body = hook_request(contract_example_resources("P-bench", "M-bench"), pid="P-bench")
        payload = json.dumps(body).encode()
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(200):
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            aud = f"{base}/cds-services/rxgate-order-sign"
            tokens = iter([make_token(key, aud=aud, expires_in=3600)  # one per call: jti is single-use
                           for _ in range(2 * (args.requests + 200) + 1)])

            def headers() -> dict:
                return {"Authorization": f"Bearer {next(tokens)}", "Content-Type": "application/json"}

            r = client.post("/cds-services/rxgate-order-sign", content=payload, headers=headers())
            assert r.status_code == 200, r.text
            print(f"typical request: {len(payload)} bytes, {len(r.json()['cards'])} card(s)")

            def once(path: str) -> float:
                h = headers()
                started = time.perf_counter()
                resp = client.post(path, content=payload, headers=h)
                elapsed = time.perf_counter() - started
                assert resp.status_code == 200
                return elapsed

            hello: list[float] = []
            cds: list[float] = []
            for i in range(args.requests + 200):  # interleaved, so both see the same noise
                h, c = once("/hello"), once("/cds-services/rxgate-order-sign")
                if i >= 200:  # the first 200 of each warm up
                    hello.append(h)
                    cds.append(c)
    finally:
        server.terminate()
        server.wait(timeout=10)

    def line(name, xs):
        return (f"{name:<28} p50 {percentile(xs, .5) * 1000:7.2f} ms   p99 {percentile(xs, .99) * 1000:7.2f} ms"
                f"   max {max(xs) * 1000:7.2f} ms   mean {statistics.mean(xs) * 1000:7.2f} ms")

    print(f"{args.requests} sequential requests each; server on one core ({'pinned' if len(cpus) > 1 else 'not pinned: 1 cpu'})")
    print(line("hello-world (same app)", hello))
    print(line("rxgate order-sign", cds))
    print(f"rxgate's own cost at p99: {(percentile(cds, .99) - percentile(hello, .99)) * 1000:.2f} ms; "
          f"p99 ratio {percentile(cds, .99) / percentile(hello, .99):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
