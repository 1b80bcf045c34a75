"""Load on `zoo serve` over loopback, against onnxruntime called directly (the limit).

Starts `zoo serve MODEL` with dynamic batching on and then off (--max-batch 1), and for each
number of concurrent clients sends requests of --images latent vectors in the binary tensor
format (as tritonclient does) for --seconds; prints images/s, p50/p99 latency and the ratio
to onnxruntime on the same graph at the same total batch, measured in the same run. Then a
load with malformed requests mixed in (every good answer checked), the start-up time and the
server's peak RSS.

    python scripts/serve_bench.py [--wrk] [--model dcgan-mnist] [--clients 1,8,64] [--seconds 5]

--wrk generates the load with Debian's wrk (C) instead of Python's httpx, which needs much
of the cores the server shares with it (docs/serving.md: the tail it adds is its own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(model: str, *args: str) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "serve", model, "--port", str(port), *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(base + "/v2/health/ready", timeout=1).status_code == 200:
                return process, base, time.perf_counter() - began
        except httpx.HTTPError:
            if process.poll() is not None:
                raise SystemExit(process.communicate()[1]) from None
            time.sleep(0.02)


def stop(process: subprocess.Popen) -> int:
    """The server's peak RSS in MB (VmHWM), then SIGTERM."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    return peak // 1024


def body(z: np.ndarray) -> tuple[bytes, dict[str, str]]:
    head = {
        "inputs": [{"name": "z", "datatype": "FP32", "shape": list(z.shape),
                    "parameters": {"binary_data_size": z.nbytes}}],
        "parameters": {"binary_data_output": True},
    }  # fmt: skip
    text = json.dumps(head).encode()
    return text + z.tobytes(), {"Inference-Header-Content-Length": str(len(text))}


async def load(
    base: str,
    model: str,
    clients: int,
    images: int,
    latent: int,
    seconds: float,
    bad: int = 0,
    warmup: float = 0.0,
) -> dict[str, float]:
    """``clients`` loops of requests for ``seconds``; every ``bad``-th request malformed.
    The first ``warmup`` seconds, on the same connections, are not counted."""
    url = f"{base}/v2/models/{model}/infer"
    latencies: list[float] = []
    counts = {"images": 0, "bad_answered": 0, "failed": 0}
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        if warmup:
            await load_with(client, url, clients, images, latent, warmup, 0, [], dict(counts))
        began = time.perf_counter()
        await load_with(client, url, clients, images, latent, seconds, bad, latencies, counts)
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "images_per_s": counts["images"] / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "requests": len(latencies),
        "failed": counts["failed"],
        "bad_answered_400": counts["bad_answered"],
    }


async def load_with(
    client: httpx.AsyncClient,
    url: str,
    clients: int,
    images: int,
    latent: int,
    seconds: float,
    bad: int,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    end = time.perf_counter() + seconds

    async def one(worker: int) -> None:
        rng = np.random.default_rng(worker)
        i = 0
        while time.perf_counter() < end:
            i += 1
            if bad and i % bad == 0:
                r = await client.post(url, content=b'{"inputs": [{"name": "z", "datat')
                counts["bad_answered"] += r.status_code == 400
                continue
            z = rng.standard_normal((images, latent), dtype=np.float32)
            content, headers = body(z)
            began = time.perf_counter()
            r = await client.post(url, content=content, headers=headers)
            latencies.append(time.perf_counter() - began)
            size = int(r.headers.get("inference-header-content-length", 0))
            if r.status_code != 200 or len(r.content) - size != images * 784 * 4:
                counts["failed"] += 1
            else:
                counts["images"] += images

    await asyncio.gather(*(one(w) for w in range(clients)))


def load_wrk(
    base: str, model: str, clients: int, images: int, latent: int, seconds: float, warmup: float
) -> dict[str, float]:
    """The same load from wrk (Debian's wrk: C, one thread), which needs far less of the
    cores the server shares with it than a Python client does."""
    import re
    import shutil
    import tempfile

    if shutil.which("wrk") is None:
        raise SystemExit("--wrk needs wrk (apt-get install wrk)")
    z = np.random.default_rng(0).standard_normal((images, latent), dtype=np.float32)
    content, headers = body(z)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "body.bin").write_bytes(content)
        script = Path(folder) / "post.lua"
        script.write_text(
            f'local f = io.open("{folder}/body.bin", "rb")\n'
            "wrk.body = f:read('*all')\nf:close()\nwrk.method = 'POST'\n"
            + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
        )
        url = f"{base}/v2/models/{model}/infer"
        common = ["wrk", "-t1", f"-c{clients}", "-s", str(script), url]
        subprocess.run([*common[:3], f"-d{max(warmup, 1):g}s", *common[3:]], capture_output=True)
        out = subprocess.run(
            [*common[:3], f"-d{seconds:g}s", "--latency", *common[3:]],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "images_per_s": rate * images,
        "p50_ms": millis("50%"),
        "p99_ms": millis("99%"),
        "requests": rate * seconds,
        "failed": int(failed.group(1)) if failed else 0,
        "bad_answered_400": 0,
    }


def direct(path: Path, batch: int, latent: int, seconds: float) -> float:
    """onnxruntime on the served file itself, the same batch size: images/s. Measured in a
    process of its own before the server starts: a session left in this process would
    keep its threads beside the load generator."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((batch, latent), dtype=np.float32)
    for _ in range(3):  # warm up, as the server's load is
        session.run(None, {"z": z})
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        session.run(None, {"z": z})
        done += batch
    return done / (time.perf_counter() - began)


def _direct_in_child(path: Path, batch: int, latent: int, seconds: float) -> float:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from serve_bench import direct; "
        "from pathlib import Path; "
        "print(direct(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))"
    )
    here = str(Path(__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", code, here, str(path), str(batch), str(latent), str(seconds)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dcgan-mnist")
    parser.add_argument("--clients", default="1,8,64")
    parser.add_argument("--images", type=int, default=16, help="images per request")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--max-batch", default="64", help="zoo serve --max-batch with batching on")
    parser.add_argument("--max-delay-ms", default="2")
    parser.add_argument("--threads", default="0", help="zoo serve --threads (onnxruntime)")
    parser.add_argument("--wrk", action="store_true", help="generate the load with wrk")
    args = parser.parse_args()
    from zoo.serving.repository import export_files

    files, _ = export_files(args.model)
    (path,) = files.values()
    latent = ort.InferenceSession(str(path)).get_inputs()[0].shape[1]
    counts = [int(c) for c in args.clients.split(",")]
    limits = {c: _direct_in_child(path, c * args.images, latent, args.seconds) for c in counts}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"onnxruntime {ort.__version__}, {time.strftime('%Y-%m-%d')}")  # fmt: skip
    print("| clients | batching | images/s | p50 ms | p99 ms | onnxruntime direct | ratio |")
    print("|---|---|---|---|---|---|---|")
    for batching in ("on", "off"):
        extra = (
            ["--max-batch", args.max_batch, "--max-delay-ms", args.max_delay_ms]
            if batching == "on"
            else ["--max-batch", "1"]
        )
        extra += ["--threads", args.threads, "--max-queue", "100000"]
        process, base, startup = start(args.model, *extra)
        for clients in counts:
            if args.wrk:
                result = load_wrk(
                    base, args.model, clients, args.images, latent, args.seconds, args.warmup
                )
            else:
                result = asyncio.run(
                    load(
                        base, args.model, clients, args.images, latent, args.seconds, 0, args.warmup
                    )
                )
            limit = limits[clients]
            rate, failed = result["images_per_s"], result["failed"]
            print(f"| {clients} | {batching} | {rate:.0f} | {result['p50_ms']:.1f} | "
                  f"{result['p99_ms']:.1f} | {limit:.0f} | {rate / limit:.2f} |"
                  + (f" ({failed} failed)" if failed else ""))  # fmt: skip
        if batching == "on":
            mixed = asyncio.run(load(base, args.model, 8, args.images, latent, args.seconds, bad=3))
            ready = httpx.get(base + "/v2/health/ready").status_code == 200
            print(f"\nmalformed requests mixed in (every 3rd, 8 clients): {mixed['requests']} "
                  f"good requests, {mixed['failed']} failed, {mixed['bad_answered_400']} "
                  f"malformed answered 400, {mixed['images_per_s']:.0f} images/s; server still "
                  f"ready: {ready}\n")  # fmt: skip
        peak = stop(process)
        print(f"(batching {batching}: ready {startup:.2f} s after start, peak RSS {peak} MB)\n")


if __name__ == "__main__":
    main()
