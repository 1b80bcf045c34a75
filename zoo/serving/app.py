"""The server: a starlette application over the served models (zoo/serving/repository.py).

Routes:
  GET  /v2/health/live, /v2/health/ready, /v2          the open inference protocol, version 2
  GET  /v2/models/{name}[/versions/1], .../ready       a graph's inputs and outputs
  POST /v2/models/{name}[/versions/1]/infer            JSON or binary tensors
  GET  /v1/models                                      what is served, with card fields
  GET  /v1/models/{model}/sample?n=&seed=&label=&truncation=&format=png|npy
                                                       `zoo sample MODEL -n N --seed S`
  GET  /v1/models/{model}/interpolate?seeds=A,B&steps=K&label=&truncation=
                                                       K images from seed A's to seed B's
  POST /v1/models/{model}/invert?steps=100&restarts=2  an upload's closest image through the
                                                       prior (`zoo invert`, in a child process)
  POST /v1/models/{model}/transform?direction=a2b      an uploaded image through CycleGAN or
                                                       the VAE (a PNG back)
  GET  /v1/models/{model}/grid.png                     the grid shipped with the weights
  GET  /metrics                                        Prometheus
  GET  /                                               the page (static/index.html)

Every error is a JSON ``{"error": ...}`` with a 4xx (or 503 / 504 when the server is busy),
and never touches other requests. With a token, every route but the health checks and the
page itself asks for ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from zoo import __version__
from zoo.base.grids import encode_png, fit_square, grid, to_uint8
from zoo.base.torch_random import MIN_NORMALS, TorchGenerator
from zoo.contract.diffusion import Network
from zoo.contract.diffusion import sample as run_sampler
from zoo.errors import UsageError
from zoo.runtime.latents import (
    MIN_TRUNCATION,
    Feed,
    Prior,
    check_truncation,
    from_start,
    interpolation,
    read_latents,
    sampler_prior,
    seeded,
)
from zoo.runtime.onnx_sampling import parse_labels
from zoo.serving import protocol
from zoo.serving.batching import Batcher, QueueFull
from zoo.serving.repository import ServedGraph, ServedModel
from zoo.store.exports import check_finite_outputs

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Limits:
    """What one request may ask; each is a `zoo serve` option."""

    max_batch: int = 64  # images merged into one onnxruntime call
    max_delay: float = 0.005  # seconds the oldest request waits for others
    max_queue: int = 1024  # images waiting per graph before 503
    max_images: int = 1024  # images in one request
    max_body: int = 64 << 20  # bytes of one request body
    timeout: float = 30.0  # seconds a request may take, queueing included


INVERT_STEPS, INVERT_SECONDS = 100, 120  # an upload's inversion: steps, and the most it may take


class Problem(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("model", "graph")
        self.requests = Counter(
            "zoo_requests", "Requests by model, graph and status.", (*labels, "status"),
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "zoo_request_seconds", "Request latency, queueing included.", labels,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )  # fmt: skip
        self.batch = Histogram(
            "zoo_batch_images", "Images per onnxruntime call.", labels,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=self.registry,
        )  # fmt: skip
        self.queue = Gauge(
            "zoo_queue_images", "Images waiting per graph.", labels, registry=self.registry
        )


def _queued(batcher: Batcher) -> float:
    return float(batcher.queued)


class Server:
    """The served graphs, their batchers and the routes' logic."""

    def __init__(self, models: list[ServedModel], limits: Limits, token: str = ""):
        self.models = {m.name: m for m in models}
        self.graphs = {g.name: g for m in models for g in m.graphs.values()}
        self.limits, self.token = limits, token
        self.metrics = Metrics()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="zoo-onnxruntime")
        self.batchers: dict[str, Batcher] = {}
        self.ready = False
        self.inverting = asyncio.Semaphore(1)  # one `zoo invert` child at a time

    # lifecycle: the batchers' tasks live in the server's event loop

    async def start(self) -> None:
        for name, graph in self.graphs.items():
            labels = (graph.model.name, graph.graph)

            def observe(images: int, labels: tuple[str, str] = labels) -> None:
                self.metrics.batch.labels(*labels).observe(images)

            batcher = Batcher(
                self._runner(graph),
                self.executor,
                self.limits.max_batch,
                self.limits.max_delay,
                self.limits.max_queue,
                observe,
            )
            batcher.start()
            self.batchers[name] = batcher
            self.metrics.queue.labels(*labels).set_function(partial(_queued, batcher))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for batcher in self.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=True)

    @staticmethod
    def _runner(graph: ServedGraph) -> Any:
        names = [spec.name for spec in graph.outputs]

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            outputs = dict(zip(names, graph.session.run(names, feeds)))
            check_finite_outputs(outputs, graph.graph)
            return outputs

        return run

    async def infer(self, graph: ServedGraph, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(
                self.batchers[graph.name].submit(feeds), self.limits.timeout
            )
        except QueueFull:
            raise Problem(
                503, f"{graph.name} is busy; retry shortly", {"retry-after": "1"}
            ) from None
        except TimeoutError:
            raise Problem(
                504, f"{graph.name} did not answer within {self.limits.timeout:g} s"
            ) from None

    def graph(self, name: str) -> ServedGraph:
        found = self.graphs.get(name)
        if found is None:
            raise Problem(404, f"unknown model {name[:80]!r}; served: {', '.join(self.graphs)}")
        return found

    def model(self, name: str) -> ServedModel:
        found = self.models.get(name)
        if found is None:
            raise Problem(404, f"unknown model {name[:80]!r}; served: {', '.join(self.models)}")
        return found


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Problem(413, f"the body is over the {limit:,} bytes allowed")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the body is over the {limit:,} bytes allowed")
        chunks.append(chunk)
    return b"".join(chunks)


def _int(request: Request, key: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(key)
    if text is None:
        return default
    if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
        raise Problem(400, f"{key} must be an integer from {low} to {high:,}")
    return int(text)


def _labels(request: Request, model: ServedModel, per_label: int) -> tuple[list[int] | None, int]:
    """`--label` as the CLI reads it: ``per_label`` images for each label given, a row each."""
    text = request.query_params.get("label")
    if not text:
        return None, 0
    if not model.conditional:
        raise Problem(400, f"{model.name} is not conditional: drop label")
    try:
        labels = parse_labels((text,), model.info.spec.num_classes)
    except UsageError as exc:
        raise Problem(400, str(exc).replace("--label", "label")) from None
    return [label for label in labels for _ in range(per_label)], per_label


def _prior(model: ServedModel) -> ServedGraph:
    graph = model.graphs.get(model.prior)
    if graph is None:
        raise Problem(400, f"{model.name} has no prior graph to sample; use /v2 to run it")
    return graph


def _latents(model: ServedModel) -> tuple[ServedGraph, Prior]:
    """The graph and the latent that truncation, interpolation and inversion go through: the
    prior graph's z, or x_T of a multi-step model whose default sampler is deterministic."""
    if model.multistep:
        latent = _start(model)
        if latent is None:
            raise Problem(400, f"{model.name}'s default sampler adds noise: it has no latent")
        return model.graphs[model.multistep], latent
    graph = _prior(model)
    z = next((spec for spec in graph.inputs if spec.name == "z"), None)
    if z is None or len(z.shape) != 2 or z.shape[1] < 1:
        raise Problem(400, f"{graph.name} does not take a latent z of a fixed width")
    classes = model.info.spec.num_classes if model.conditional else 0
    return graph, Prior(graph.graph, z.shape[1], classes)


def _start(model: ServedModel) -> Prior | None:
    """A multi-step model's latent, x_T, where its default sampler is deterministic."""
    spec = model.info.spec
    if model.description is None:
        return None
    return sampler_prior(model.multistep, model.description, (spec.channels, spec.size, spec.size))


def has_latents(model: ServedModel) -> bool:
    """Whether the page may offer truncation, paths and inversion for ``model``."""
    return _start(model) is not None if model.multistep else bool(model.prior)


STEP_OPTIONS = {"steps": (int, "an integer"), "sampler": (str, "a name"),
                "eta": (float, "a number"), "guidance": (float, "a number")}  # fmt: skip


def _step_options(request: Request) -> dict[str, Any]:
    """A multi-step sampler's options from the query (the ranges are the sampler's to check)."""
    options: dict[str, Any] = {}
    for key, (kind, words) in STEP_OPTIONS.items():
        text = request.query_params.get(key)
        if text:
            try:
                options[key] = kind(text)
            except ValueError:
                raise Problem(400, f"{key} must be {words} (got {text[:20]!r})") from None
    return options


def _truncation(request: Request) -> float | None:
    text = request.query_params.get("truncation")
    if not text:
        return None
    try:
        psi = float(text)
        check_truncation(psi)
    except (ValueError, UsageError):
        raise Problem(
            400, f"truncation must be a number of at least {MIN_TRUNCATION} (got {text[:20]!r})"
        ) from None
    return psi


def _images_response(request: Request, images: np.ndarray, nrow: int) -> Response:
    fmt = request.query_params.get("format", "png")
    pixels = to_uint8(images)
    if fmt == "png":
        return Response(encode_png(grid(pixels, nrow)), media_type="image/png")
    if fmt == "npy":
        out = io.BytesIO()
        np.save(out, pixels)
        return Response(out.getvalue(), media_type="application/octet-stream")
    raise Problem(400, "format must be png or npy")


def _decode_image(body: bytes, channels: int, size: int) -> np.ndarray:
    """An uploaded image as the model's input, (1, C, size, size) floats in [-1, 1]: centre
    cropped and resized as `zoo sample --input` prepares files."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(body)) as file:
            if file.width * file.height > 50_000_000:
                raise Problem(413, "the image is over 50 megapixels")
            im = file.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise Problem(400, "the body is not an image PIL can read (PNG, JPEG, ...)") from None
    im = fit_square(im, size)
    array = np.asarray(im, np.float32).reshape(size, size, channels).transpose(2, 0, 1)
    return (array / np.float32(127.5) - np.float32(1.0))[None]


def create_app(server: Server) -> Starlette:
    limits = server.limits

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": server.ready}, status_code=200 if server.ready else 503)

    async def about(request: Request) -> Response:
        return JSONResponse(
            {"name": "zoo", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(request: Request) -> Response:
        return JSONResponse(protocol.metadata(server.graph(request.path_params["name"])))

    async def model_ready(request: Request) -> Response:
        server.graph(request.path_params["name"])
        return JSONResponse({"name": request.path_params["name"], "ready": server.ready})

    async def infer(request: Request) -> Response:
        graph = server.graph(request.path_params["name"])
        body = await _body(request, limits.max_body)
        try:
            parsed, binary = protocol.split_body(body, request.headers.get(protocol.HEADER))
            feeds = protocol.decode_inputs(parsed, binary, graph, limits.max_images)
            wanted = protocol.wanted_outputs(parsed, graph)
        except protocol.BadRequest as exc:
            raise Problem(400, str(exc)) from None
        outputs = await server.infer(graph, feeds)
        content, headers = protocol.encode_response(graph, parsed, outputs, wanted)
        media = headers.pop("content-type")
        return Response(content, media_type=media, headers=headers)

    async def models(request: Request) -> Response:
        listed = []
        for m in server.models.values():
            graphs = {g.graph: protocol.metadata(g) for g in m.graphs.values()}
            listed.append(
                {"name": m.name, "origin": m.origin, "prior": m.prior,
                 "multistep": m.multistep, "latent": has_latents(m),
                 "conditional": m.conditional, "card": m.card,
                 "graphs": graphs,
                 **({"sampler": asdict(m.description)} if m.description else {})}
            )  # fmt: skip
        return JSONResponse({"models": listed})

    async def sample(request: Request) -> Response:
        model = server.model(request.path_params["model"])
        n = _int(request, "n", 64, 1, limits.max_images)
        seed = _int(request, "seed", 0, 0, 2**63 - 1)
        labels, nrow = _labels(request, model, n)
        total = len(labels) if labels else n
        if total > limits.max_images:
            raise Problem(400, f"{total:,} images is over the {limits.max_images:,} allowed")
        psi = _truncation(request)
        if model.multistep and psi is None:  # the sampler draws x_T, labels and its noise
            assert model.description is not None
            spec = model.info.spec
            shape = (spec.channels, spec.size, spec.size)
            if total * spec.channels * spec.size**2 < MIN_NORMALS:
                raise Problem(400, f"{model.name}: ask for more images")
            given = None if labels is None else np.asarray(labels, np.int64)
            options = _step_options(request)
            draw = partial(run_sampler, model.description, draws=TorchGenerator(seed), n=total,
                           shape=shape, labels=given, **options)  # fmt: skip
            images = await stepping(model, lambda network: draw(network=network)[0])
            return _images_response(request, images, nrow)
        graph, latent = _latents(model)
        try:
            feed = seeded(latent, seed, total, labels, psi)
        except UsageError as exc:
            raise Problem(400, str(exc)) from None
        if feed is None:
            raise Problem(
                400,
                f"{model.name}: ask for more images (torch draws fewer than 16 values otherwise)",
            )
        options = _step_options(request) if model.multistep else {}
        images = await render(model, graph, latent, feed, **options)
        return _images_response(request, images, nrow)

    async def render(
        model: ServedModel, graph: ServedGraph, latent: Prior, feed: Feed, **options: Any
    ) -> np.ndarray:
        """The images of latents: through the prior graph, or a multi-step model's sampler
        from x_T (with the sampler's ``options``: steps, sampler, eta, guidance)."""
        if latent.sampler is None:
            return np.asarray((await server.infer(graph, feed))["image"])
        return await stepping(model, lambda network: from_start(latent, network, feed, **options))

    async def stepping(model: ServedModel, work: Callable[[Network], np.ndarray]) -> np.ndarray:
        """Runs ``work`` (zoo's sampling loop, zoo.contract.diffusion) in a worker thread,
        each call of the network it is given going through the graph's batcher like any
        request's, the whole within the request timeout."""
        graph = model.graphs[model.multistep]
        loop, late = asyncio.get_running_loop(), asyncio.Event()
        too_late = Problem(504, f"{model.name} did not answer within {limits.timeout:g} s")

        def network(x: np.ndarray, t: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
            if late.is_set():  # the request timed out: stop calling the network
                raise too_late
            feed = {"x": x, "t": t, **({"labels": classes} if classes is not None else {})}
            done = asyncio.run_coroutine_threadsafe(server.infer(graph, feed), loop)
            return np.asarray(done.result()["prediction"])

        try:
            return await asyncio.wait_for(asyncio.to_thread(work, network), limits.timeout)
        except UsageError as exc:
            raise Problem(400, str(exc).replace("--", "")) from None
        except TimeoutError:
            late.set()
            raise too_late from None

    async def interpolate(request: Request) -> Response:
        model = server.model(request.path_params["model"])
        graph, prior = _latents(model)
        seeds = request.query_params.get("seeds", "0,1").split(",")
        if len(seeds) != 2 or not all(s.isdigit() and int(s) < 2**63 for s in seeds):
            raise Problem(400, "seeds must be two seeds, A,B")
        steps = _int(request, "steps", 8, 2, 256)
        labels, _ = _labels(request, model, 1)
        psi = _truncation(request)
        ends = [seeded(prior, int(seed), 1, labels, psi) for seed in seeds]
        if any(end is None for end in ends):
            raise Problem(400, f"{model.name}'s latent is too small to interpolate")
        feed = interpolation([end for end in ends if end is not None], steps)
        return _images_response(request, await render(model, graph, prior, feed), steps)

    async def transform(request: Request) -> Response:
        model = server.model(request.path_params["model"])
        spec = model.info.spec
        image = _decode_image(await _body(request, limits.max_body), spec.channels, spec.size)
        direction = request.query_params.get("direction", "a2b")
        if {"a2b", "b2a"} <= set(model.graphs):  # CycleGAN: one way or the other
            if direction not in ("a2b", "b2a"):
                raise Problem(400, "direction must be a2b or b2a")
            out = await server.infer(model.graphs[direction], {"image": image})
            result = out["translated"]
        elif "encoder" in model.graphs:  # the VAE: its reconstruction, through the means
            mu = (await server.infer(model.graphs["encoder"], {"image": image}))["mu"]
            decode = model.graphs.get("latent_decoder") or model.graphs["decoder"]
            result = (await server.infer(decode, {"z": mu}))["image"]
        else:
            raise Problem(400, f"{model.name} does not transform images")
        return _images_response(request, result, 1)

    async def invert(request: Request) -> Response:
        """An upload's closest image through the model's prior: `zoo invert` in a child
        process (it needs torch, which the server never imports), then the prior graph here."""
        model = server.model(request.path_params["model"])
        graph, prior = _latents(model)
        if model.source.endswith(".onnx"):
            raise Problem(400, f"{model.name} is served from an ONNX file: inversion needs its "
                               "weights (serve the weights, or run zoo invert)")  # fmt: skip
        spec = model.info.spec
        image = _decode_image(await _body(request, limits.max_body), spec.channels, spec.size)
        search: list[str] = []  # a multi-step model runs its sampler backwards: no search
        if prior.sampler is not None and {"steps", "restarts"} & set(request.query_params):
            raise Problem(400, f"{model.name} inverts with no search: drop steps and restarts")
        if prior.sampler is None:
            steps = _int(request, "steps", INVERT_STEPS, 0, 1000)
            search = ["--steps", str(steps), "--restarts", str(_int(request, "restarts", 2, 1, 8))]
        if server.inverting.locked():
            raise Problem(503, "an inversion is running; try again", {"Retry-After": "5"})
        async with server.inverting:
            with tempfile.TemporaryDirectory() as tmp:
                target, found = Path(tmp) / "upload.png", Path(tmp) / "found.npz"
                target.write_bytes(encode_png(grid(to_uint8(image), 1)))
                command = [sys.executable, "-m", "zoo", "invert", model.source, "--input",
                           str(target), "--out", str(found), *search, "--device", "cpu",
                           "--offline"]  # fmt: skip
                child = await asyncio.create_subprocess_exec(
                    *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
                )
                try:
                    _, err = await asyncio.wait_for(child.communicate(), INVERT_SECONDS)
                except TimeoutError:
                    child.kill()
                    await child.wait()
                    raise Problem(504, f"the inversion took over {INVERT_SECONDS} s") from None
                if child.returncode:  # 2: what was asked cannot be done (zoo's usage errors)
                    line = err.decode(errors="replace").strip().splitlines()[-1:] or ["failed"]
                    status = 400 if child.returncode == 2 else 500
                    raise Problem(status, f"zoo invert: {line[0].removeprefix('Error: ')[:300]}")
                feed = read_latents(found, prior)
        return _images_response(request, await render(model, graph, prior, feed), 1)

    async def shipped_grid(request: Request) -> Response:
        model = server.model(request.path_params["model"])
        path = model.grid
        if path is None or not path.is_file():
            raise Problem(404, f"{model.name} ships no grid")
        return FileResponse(path, media_type="image/png")

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    def routed(endpoint: Any, graph_of: str = "") -> Any:
        """Errors as JSON, and each request counted and timed by model and graph."""

        async def handle(request: Request) -> Response:
            start = time.perf_counter()
            status, graph = 500, None
            try:
                if graph_of:
                    graph = server.graphs.get(request.path_params.get(graph_of, ""))
                response = await endpoint(request)
                status = response.status_code
                return response
            except Problem as problem:
                status = problem.status
                return JSONResponse(
                    {"error": str(problem)}, status_code=problem.status, headers=problem.headers
                )
            finally:
                model, name = (graph.model.name, graph.graph) if graph else _model_of(request)
                if model:
                    server.metrics.requests.labels(model, name, str(status)).inc()
                    server.metrics.latency.labels(model, name).observe(time.perf_counter() - start)

        return handle

    def _model_of(request: Request) -> tuple[str, str]:
        name = request.path_params.get("model", "")
        model = server.models.get(name)
        return (name, model.prior) if model else ("", "")

    v2 = "/v2/models/{name}"
    routes = [
        Route("/v2/health/live", routed(live)),
        Route("/v2/health/ready", routed(ready)),
        Route("/v2", routed(about)),
        Route(v2, routed(model_metadata)),
        Route(v2 + "/versions/1", routed(model_metadata)),
        Route(v2 + "/ready", routed(model_ready)),
        Route(v2 + "/versions/1/ready", routed(model_ready)),
        Route(v2 + "/infer", routed(infer, "name"), methods=["POST"]),
        Route(v2 + "/versions/1/infer", routed(infer, "name"), methods=["POST"]),
        Route("/v1/models", routed(models)),
        Route("/v1/models/{model}/sample", routed(sample)),
        Route("/v1/models/{model}/interpolate", routed(interpolate)),
        Route("/v1/models/{model}/transform", routed(transform), methods=["POST"]),
        Route("/v1/models/{model}/invert", routed(invert), methods=["POST"]),
        Route("/v1/models/{model}/grid.png", routed(shipped_grid)),
        Route("/metrics", routed(metrics)),
        Route("/", page),
    ]
    guard = Middleware(_Authorise, server=server)
    return Starlette(routes=routes, lifespan=_lifespan(server), middleware=[guard])


class _Authorise:
    """With a token, every route but the health checks and the page asks for it."""

    def __init__(self, app: Any, server: Server):
        self.app, self.server = app, server

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and self.server.token
            and not (path == "/" or path.startswith("/v2/health/"))
        ):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, f"Bearer {self.server.token}".encode()):
                response = JSONResponse(
                    {"error": "this server needs Authorization: Bearer TOKEN"},
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _lifespan(server: Server) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    return lifespan


def run(server: Server, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C, which stop accepting, answer the requests in flight
    (for at most 30 s) and return, so the process exits 0."""
    import uvicorn

    class Graceful(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # uvicorn raises the signal again after shutting down, which would end the
            # process with it (-15) instead of the clean exit a finished shutdown is
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    config = uvicorn.Config(
        create_app(server), host=host, port=port, log_level="warning", timeout_graceful_shutdown=30
    )
    Graceful(config).run()
