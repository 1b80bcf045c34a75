"""`zoo serve`."""

from __future__ import annotations

import ipaddress
import sys
import time

import click

from zoo.cli.common import offline_option


@click.command("serve")
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option(
    "--max-batch",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="Images merged into one onnxruntime call (1: no batching).",
)
@click.option(
    "--max-delay-ms",
    type=click.FloatRange(0, 1000),
    default=5.0,
    show_default=True,
    help="How long the oldest request waits for others to batch with, when others are about.",
)
@click.option(
    "--max-queue",
    type=click.IntRange(1),
    default=1024,
    show_default=True,
    help="Images waiting per graph before requests get 503.",
)
@click.option(
    "--max-images",
    type=click.IntRange(1),
    default=1024,
    show_default=True,
    help="Images in one request (n, or the batch axis).",
)
@click.option(
    "--max-body-mb", type=click.FloatRange(0, min_open=True), default=64.0, show_default=True
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a request may take, queueing included (then 504).",
)
@click.option(
    "--threads", type=click.IntRange(min=0), default=0, help="onnxruntime intra-op threads."
)
@click.option(
    "--token",
    envvar="ZOO_SERVE_TOKEN",
    default="",
    help="Require Authorization: Bearer TOKEN on every route but the health checks and the "
    "page [ZOO_SERVE_TOKEN].",
)
@offline_option
def serve_cmd(
    sources, host, port, device, max_batch, max_delay_ms, max_queue, max_images, max_body_mb,
    timeout, threads, token,
) -> None:  # fmt: skip
    """Serve SOURCEs (default: every catalogue model with weights) from their ONNX exports
    in onnxruntime: the KServe / Triton open inference protocol (v2) at /v2, sampling at
    /v1/models/NAME/sample, metrics at /metrics and a page at /. Ctrl-C or SIGTERM finishes
    the requests in flight and exits 0. See docs/serving.md."""
    from zoo.serving.app import Limits, Server, run
    from zoo.serving.repository import default_sources, load_model

    start = time.perf_counter()
    if device != "cpu" and not device.startswith("cuda"):
        raise click.BadParameter("use cpu, cuda or cuda:N", param_hint="--device")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        click.echo(
            f"zoo: warning: serving on {host} without --token: anyone who reaches it can use it",
            err=True,
        )
    models = [load_model(s, device, threads) for s in (sources or default_sources())]
    names = [g.name for m in models for g in m.graphs.values()]
    if len(set(names)) != len(names):
        raise click.UsageError("two sources give models of the same name; serve them apart")
    limits = Limits(
        max_batch, max_delay_ms / 1000, max_queue, max_images, int(max_body_mb * 2**20), timeout
    )
    server = Server(models, limits, token)
    shown = "localhost" if host == "127.0.0.1" else host
    click.echo(
        f"serving {len(names)} graph(s) of {len(models)} model(s) at http://{shown}:{port} "
        f"(ready in {time.perf_counter() - start:.1f} s; torch "
        f"{'loaded' if 'torch' in sys.modules else 'not loaded'})",
        err=True,
    )
    run(server, host, port)
