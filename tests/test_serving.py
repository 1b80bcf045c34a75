"""`zoo serve`: a real uvicorn server on 127.0.0.1, spoken to by the real tritonclient.http
client, plain HTTP and a browser's requests; the batcher on its own."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

MODELS = ("dcgan-mnist", "cgan-mnist", "vae-mnist", "cyclegan-digits")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """A `zoo serve` process and its address."""

    def __init__(self, cache: Path, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "ZOO_CACHE": str(cache), "OMP_NUM_THREADS": "1", **(env or {})}
        command = [sys.executable, "-m", "zoo", "serve", *args, "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        end = time.monotonic() + 240
        while True:
            assert self.process.poll() is None, self.process.communicate()[1][-3000:]
            try:
                if httpx.get(self.base + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, "the server did not start"
            time.sleep(0.1)

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def served(cache):
    server = Served(cache, *MODELS, "--max-delay-ms", "20", "--max-images", "256")
    yield server
    server.stop()


def direct(cache: Path, name: str, graph: str, feeds: dict[str, np.ndarray]) -> dict:
    """What onnxruntime gives when called on the served file itself."""
    from zoo.store.exports import ExportSlot, graph_files
    from zoo.store.sources import resolve

    os.environ["ZOO_CACHE"] = str(cache)
    path = ExportSlot.of(resolve(name).path).cached()
    session = ort.InferenceSession(str(graph_files(path)[graph]))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def test_the_serving_process_never_imports_torch(served):
    returncode = served.process.poll()
    assert returncode is None
    # the server says so itself once ready; check the live process's modules too
    maps = Path(f"/proc/{served.process.pid}/maps").read_text()
    assert "libtorch" not in maps


def test_tritonclient_with_its_defaults_gets_onnxruntimes_outputs(served, cache):
    import tritonclient.http as http

    client = http.InferenceServerClient(f"127.0.0.1:{served.port}")
    assert client.is_server_live() and client.is_server_ready()
    rng = np.random.default_rng(0)
    z, labels = rng.standard_normal((5, 100), np.float32), np.arange(5, dtype=np.int64)
    image = rng.uniform(-1, 1, (3, 1, 32, 32)).astype(np.float32)
    cases = [
        ("cgan-mnist", "cgan-mnist", "generator", {"z": z, "labels": labels}),
        ("vae-mnist-encoder", "vae-mnist", "encoder", {"image": image[:, :, 2:30, 2:30]}),
        ("cyclegan-digits-a2b", "cyclegan-digits", "a2b", {"image": image}),
        ("cyclegan-digits-b2a", "cyclegan-digits", "b2a", {"image": image}),
    ]
    for served_name, model, graph, feeds in cases:
        meta = client.get_model_metadata(served_name)
        assert [i["name"] for i in meta["inputs"]] == list(feeds)
        inputs = []
        for name, array in feeds.items():
            tensor = http.InferInput(
                name, list(array.shape), "FP32" if array.dtype == np.float32 else "INT64"
            )
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        result = client.infer(served_name, inputs)
        expected = direct(cache, model, graph, feeds)
        for name, value in expected.items():
            np.testing.assert_array_equal(result.as_numpy(name), value)


def test_json_tensors_and_the_decoder(served, cache):
    z = np.random.default_rng(1).standard_normal((2, 21), np.float32)  # the mog prior's width
    body = {
        "inputs": [{"name": "z", "datatype": "FP32", "shape": [2, 21], "data": z.ravel().tolist()}]
    }
    r = httpx.post(served.base + "/v2/models/vae-mnist-decoder/infer", json=body)
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    got = np.asarray(out["data"], np.float32).reshape(out["shape"])
    np.testing.assert_array_equal(got, direct(cache, "vae-mnist", "decoder", {"z": z})["image"])


def test_sample_gives_zoo_samples_bytes(served, cache, tmp_path):
    cases = [
        ("n=16&seed=3", ["-n", "16", "--seed", "3"]),
        ("n=4&seed=5&label=7", ["-n", "4", "--seed", "5", "--label", "7"]),
    ]
    for query, args in cases:
        model = "dcgan-mnist" if "label" not in query else "cgan-mnist"
        r = httpx.get(f"{served.base}/v1/models/{model}/sample?{query}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        out = tmp_path / "cli.png"
        subprocess.run([sys.executable, "-m", "zoo", "sample", model, *args, "--out", str(out)],
                       env=served.env, check=True, capture_output=True)  # fmt: skip
        assert r.content == out.read_bytes()
    r = httpx.get(served.base + "/v1/models/dcgan-mnist/sample?n=8&seed=3&format=npy")
    assert np.load(io.BytesIO(r.content)).shape == (8, 1, 28, 28)


def test_v1_models_lists_cards(served):
    listed = {m["name"]: m for m in httpx.get(served.base + "/v1/models").json()["models"]}
    assert set(listed) == set(MODELS)
    assert listed["cgan-mnist"]["conditional"] and listed["cgan-mnist"]["card"]["num_classes"] == 10
    assert "fld" in listed["dcgan-mnist"]["card"]["metrics"]
    assert set(listed["vae-mnist"]["graphs"]) >= {"decoder", "encoder"}


def test_interpolation_ends_are_the_seeds_samples(served):
    def image(url: str) -> np.ndarray:
        return np.load(io.BytesIO(httpx.get(served.base + url).content))

    path = image("/v1/models/dcgan-mnist/interpolate?seeds=3,4&steps=5&format=npy")
    assert path.shape[0] == 5
    np.testing.assert_array_equal(
        path[0], image("/v1/models/dcgan-mnist/sample?n=1&seed=3&format=npy")[0]
    )
    np.testing.assert_array_equal(
        path[-1], image("/v1/models/dcgan-mnist/sample?n=1&seed=4&format=npy")[0]
    )


def test_an_upload_is_inverted_in_a_child_process(served):
    """The server imports no torch: `zoo invert` runs in a child, then the prior graph
    renders the latent found; what cannot be done is a 4xx with zoo invert's own words."""
    from PIL import Image

    own = httpx.get(served.base + "/v1/models/dcgan-mnist/sample?n=1&seed=5&format=npy")
    digit = np.load(io.BytesIO(own.content))[0, 0]
    upload = io.BytesIO()
    Image.fromarray(digit).save(upload, format="PNG")
    url = served.base + "/v1/models/dcgan-mnist/invert"
    r = httpx.post(url, content=upload.getvalue(), timeout=120)  # 100 steps, 2 starts
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    found = np.asarray(Image.open(io.BytesIO(r.content)).convert("L"), dtype=float)
    # the model's own digit, found again: 14 of 255 on average, other samples 32-52 away
    assert np.abs(found - digit).mean() < 25
    r = httpx.post(url + "?steps=0", content=upload.getvalue(), timeout=120)
    assert r.status_code == 400 and "needs a family that encodes" in r.json()["error"]
    r = httpx.post(served.base + "/v1/models/cyclegan-digits/invert", content=upload.getvalue())
    assert r.status_code == 400 and "no prior graph" in r.json()["error"]
    r = httpx.post(url, content=b"not an image")
    assert r.status_code == 400


def test_truncation_and_per_end_classes_over_http(served):
    def image(url: str) -> np.ndarray:
        return np.load(io.BytesIO(httpx.get(served.base + url).content))

    truncated = image("/v1/models/dcgan-mnist/sample?n=16&seed=2&truncation=0.7&format=npy")
    plain = image("/v1/models/dcgan-mnist/sample?n=16&seed=2&format=npy")
    assert truncated.shape == plain.shape and not np.array_equal(truncated, plain)
    for bad in ("0.01", "nan", "x"):
        r = httpx.get(served.base + f"/v1/models/dcgan-mnist/sample?truncation={bad}")
        assert r.status_code == 400 and "truncation must be a number" in r.text


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("post", "/v2/models/cgan-mnist/infer", b"{not json", 400, "not valid JSON"),
        (
            "post",
            "/v2/models/cgan-mnist/infer",
            {"inputs": [{"name": "z", "datatype": "INT64", "shape": [1, 100], "data": [0] * 100}]},
            400,
            "is FP32, not INT64",
        ),
        (
            "post",
            "/v2/models/cgan-mnist/infer",
            {"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 7], "data": [0] * 7}]},
            400,
            "has shape [1, 7]",
        ),
        (
            "post",
            "/v2/models/cgan-mnist/infer",
            {"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 100], "data": [0] * 100}]},
            400,
            "needs input(s) labels",
        ),
        ("post", "/v2/models/nope/infer", {"inputs": []}, 404, "unknown model 'nope'"),
        ("get", "/v1/models/cgan-mnist/sample?label=12", None, 400, "label 12 is out of range"),
        (
            "get",
            "/v1/models/dcgan-mnist/sample?n=100000",
            None,
            400,
            "n must be an integer from 1 to 256",
        ),
        ("get", "/v1/models/dcgan-mnist/sample?seed=-1", None, 400, "seed must be"),
        ("post", "/v1/models/cyclegan-digits/transform", b"not an image", 400, "not an image"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_the_server_goes_on(
    served, method, path, body, status, message
):
    send = getattr(httpx, method)
    kwargs = (
        {} if body is None else ({"content": body} if isinstance(body, bytes) else {"json": body})
    )
    r = send(served.base + path, **kwargs)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert httpx.get(served.base + "/v1/models/dcgan-mnist/sample?n=1").status_code == 200


def test_a_body_over_the_limit_is_413_and_a_slow_request_504(cache):
    server = Served(cache, "dcgan-mnist", "--max-body-mb", "0.01", "--timeout", "0.001")
    try:
        r = httpx.post(server.base + "/v2/models/dcgan-mnist/infer", content=b"x" * 20000)
        assert r.status_code == 413 and "bytes allowed" in r.json()["error"]
        r = httpx.get(server.base + "/v1/models/dcgan-mnist/sample?n=1024")
        assert r.status_code == 504 and "did not answer within 0.001 s" in r.json()["error"]
        assert httpx.get(server.base + "/v2/health/ready").status_code == 200
    finally:
        server.stop()


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(served):
    rng = np.random.default_rng(2)
    batches = [rng.standard_normal((n, 100), np.float32) for n in (1, 3, 2, 5, 1, 4, 2, 3)]

    def infer(z: np.ndarray) -> np.ndarray:
        body = {
            "inputs": [
                {
                    "name": "z",
                    "datatype": "FP32",
                    "shape": list(z.shape),
                    "data": z.ravel().tolist(),
                }
            ]
        }
        r = httpx.post(served.base + "/v2/models/dcgan-mnist/infer", json=body, timeout=30)
        out = r.json()["outputs"][0]
        return np.asarray(out["data"], np.float32).reshape(out["shape"])

    def calls() -> tuple[float, float]:
        """onnxruntime calls of dcgan-mnist so far: all of them, and those of one image."""
        found = {}
        for line in httpx.get(served.base + "/metrics").text.splitlines():
            for key, head in (
                ("one", "zoo_batch_images_bucket"),
                ("all", "zoo_batch_images_count"),
            ):
                if (
                    line.startswith(head)
                    and 'model="dcgan-mnist"' in line
                    and (key == "all" or 'le="1.0"' in line)
                ):
                    found[key] = float(line.split()[-1])
        return found["all"], found["one"]

    alone = [infer(z) for z in batches]
    before = calls()
    results: list = [None] * len(batches)
    start = threading.Barrier(len(batches))
    rounds = 3

    def client(i: int) -> None:
        start.wait()
        for _ in range(rounds):  # the rounds after the first find the others about
            results[i] = infer(batches[i])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, alone):
        np.testing.assert_allclose(got, want, atol=1e-5)  # a batch's rows, as a call alone
    after = calls()
    assert after[0] - before[0] < rounds * len(batches)  # fewer onnxruntime calls than requests
    metrics = httpx.get(served.base + "/metrics").text
    assert 'zoo_requests_total{graph="generator",model="dcgan-mnist",status="200"}' in metrics
    assert "zoo_request_seconds_bucket" in metrics and "zoo_queue_images" in metrics


def test_a_token_guards_all_but_health_and_the_page(cache):
    server = Served(cache, "dcgan-mnist", env={"ZOO_SERVE_TOKEN": "s3cret"})
    try:
        assert httpx.get(server.base + "/v2/health/live").status_code == 200
        assert httpx.get(server.base + "/").status_code == 200
        assert httpx.get(server.base + "/v2/models/dcgan-mnist").status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        assert httpx.get(server.base + "/v2/models/dcgan-mnist", headers=auth).status_code == 200
        assert (
            httpx.get(server.base + "/metrics", headers={"Authorization": "Bearer no"}).status_code
            == 401
        )
    finally:
        server.stop()


def test_sigterm_finishes_the_requests_in_flight_and_exits_0(cache):
    server = Served(cache, "dcgan-mnist")
    results = []
    worker = threading.Thread(
        target=lambda: results.append(
            httpx.get(server.base + "/v1/models/dcgan-mnist/sample?n=1024&format=npy", timeout=60)
        )
    )
    worker.start()
    time.sleep(0.3)
    code, err = server.stop()
    worker.join()
    assert code == 0, err
    assert results and results[0].status_code == 200
    assert np.load(io.BytesIO(results[0].content)).shape == (1024, 1, 28, 28)


def test_serving_beyond_loopback_without_a_token_warns(tmp_path):
    command = [sys.executable, "-m", "zoo", "serve", "--host", "0.0.0.0", "--port", "1", "nope"]
    r = subprocess.run(command, capture_output=True, text=True)
    assert "without --token: anyone who reaches it can use it" in r.stderr


# the batcher alone


def run_apart(scenario):
    """asyncio.run(scenario()) in a thread of its own: playwright's sync API (the page's
    tests) keeps an event loop running in this one."""
    outcome: list = []

    def target():
        try:
            outcome.append((True, asyncio.run(scenario())))
        except BaseException as exc:
            outcome.append((False, exc))

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def test_batcher_merges_splits_refuses_when_full_and_drops_the_abandoned():
    from concurrent.futures import ThreadPoolExecutor

    from zoo.serving.batching import Batcher, QueueFull

    calls: list[int] = []

    def run(feeds):
        calls.append(len(feeds["x"]))
        time.sleep(0.05)
        return {"y": feeds["x"] * 2}

    async def scenario():
        batcher = Batcher(run, ThreadPoolExecutor(1), max_batch=8, max_delay=0.02, max_queue=10)
        batcher.start()
        xs = [np.full((n, 2), i, np.float32) for i, n in enumerate((2, 3, 1))]
        outs = await asyncio.gather(*(batcher.submit({"x": x}) for x in xs))
        for x, out in zip(xs, outs):
            np.testing.assert_array_equal(out["y"], x * 2)
        assert calls == [6]  # one call for the three requests
        first = asyncio.ensure_future(batcher.submit({"x": np.zeros((8, 2), np.float32)}))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit({"x": np.zeros((4, 2), np.float32)})
        await first
        abandoned = asyncio.ensure_future(batcher.submit({"x": np.zeros((1, 2), np.float32)}))
        await asyncio.sleep(0)
        abandoned.cancel()
        await asyncio.sleep(0.1)
        assert calls == [6, 8]  # the abandoned request never ran
        await batcher.stop()

    run_apart(scenario)


def test_the_v2_client_example_runs_against_zoo_serve(served, tmp_path):
    from PIL import Image

    example = Path(__file__).resolve().parents[1] / "examples" / "v2_client.py"
    for model in ("dcgan-mnist", "cgan-mnist"):
        out = tmp_path / f"{model}.png"
        r = subprocess.run(
            [sys.executable, str(example), "--url", f"127.0.0.1:{served.port}", "--model", model,
             "-n", "9", "--out", str(out)], capture_output=True, text=True,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert Image.open(out).size == (84, 84)


# a Triton model repository


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("triton")
    for model in ("cgan-mnist", "cyclegan-digits"):
        command = [sys.executable, "-m", "zoo", "export", model, "--format", "triton",
                   "--out", str(root / model)]  # fmt: skip
        env = {**os.environ, "ZOO_CACHE": str(root / "cache")}
        r = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root)
        assert r.returncode == 0, r.stderr
    return root


def test_triton_configs_parse_and_match_their_graphs(repository):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    types = {"tensor(float)": "TYPE_FP32", "tensor(int64)": "TYPE_INT64"}
    found = sorted(p.parent.name for p in repository.glob("*/*/config.pbtxt"))
    assert found == ["cgan-mnist", "cyclegan-digits-a2b", "cyclegan-digits-b2a"]
    for config_path in repository.glob("*/*/config.pbtxt"):
        config = text_format.Parse(config_path.read_text(), model_config_pb2.ModelConfig())
        folder = config_path.parent
        assert config.name == folder.name and config.max_batch_size > 0
        assert config.HasField("dynamic_batching") and len(config.instance_group) == 1
        versions = [p.name for p in folder.iterdir() if p.is_dir()]
        assert versions == ["1"] and (folder / "1" / "model.onnx").is_file()
        session = ort.InferenceSession(str(folder / "1" / "model.onnx"))
        for declared, graph in (
            (config.input, session.get_inputs()),
            (config.output, session.get_outputs()),
        ):
            assert [t.name for t in declared] == [g.name for g in graph]
            for tensor, value in zip(declared, graph):
                assert model_config_pb2.DataType.Name(tensor.data_type) == types[value.type]
                assert not isinstance(value.shape[0], int)  # axis 0 is the batch
                want = [d if isinstance(d, int) else -1 for d in value.shape[1:]] or [1]
                assert list(tensor.dims) == want
                if len(value.shape) == 1:  # labels: one per image, reshaped to a scalar
                    assert tensor.HasField("reshape") and list(tensor.reshape.shape) == []


# the page, in a real headless browser (Debian's chromium; CI installs it)

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists() and not os.environ.get("CI"):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield browser
        browser.close()


def _shown_bytes(page, selector: str) -> bytes:
    """The bytes behind an <img> the page filled from a blob, once the latest request's
    image is the one shown and has loaded."""
    page.wait_for_function(
        f"(img => img.dataset.shown === img.dataset.asked && img.complete && img.naturalWidth > 0)"
        f"(document.querySelector('{selector}'))"
    )
    data = page.evaluate(
        """async (selector) => {
            const response = await fetch(document.querySelector(selector).src);
            return Array.from(new Uint8Array(await response.arrayBuffer()));
        }""",
        selector,
    )
    return bytes(data)


def _cli_png(served, tmp_path: Path, *args: str) -> bytes:
    out = tmp_path / "cli.png"
    subprocess.run([sys.executable, "-m", "zoo", "sample", *args, "--out", str(out)],
                   env=served.env, check=True, capture_output=True)  # fmt: skip
    return out.read_bytes()


def test_the_page_samples_picks_classes_and_translates_uploads(served, browser, tmp_path):
    from PIL import Image

    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append(f"left loopback: {r.url}")
            if not r.url.startswith((served.base, "blob:", "data:")) else None)  # fmt: skip
    page.goto(served.base + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length === 4")

    page.select_option("#model", "dcgan-mnist")
    page.fill("#n", "64")
    page.fill("#seed", "3")
    with page.expect_response(lambda r: "seed=3" in r.url and "n=64" in r.url):
        page.click("#sample")
    assert _shown_bytes(page, "#grid") == _cli_png(served, tmp_path, "dcgan-mnist", "--seed", "3")

    def slide(psi: str, *events: str) -> str:
        fired = "".join(f"e.dispatchEvent(new Event('{name}'));" for name in events)
        return f"e => {{ e.value = '{psi}'; {fired} }}"

    with page.expect_response(lambda r: "truncation=0.50" in r.url):
        page.eval_on_selector("#truncation", slide("0.5", "input", "change"))
    assert page.text_content("#psi") == "0.50"
    expected = _cli_png(served, tmp_path, "dcgan-mnist", "--seed", "3", "--truncation", "0.5")
    assert _shown_bytes(page, "#grid") == expected
    page.eval_on_selector(
        "#truncation", "e => { e.value = '0'; e.dispatchEvent(new Event('input')); }"
    )

    page.select_option("#model", "cgan-mnist")
    assert page.is_visible("#class-box")
    page.fill("#n", "8")
    with page.expect_response(lambda r: "label=7" in r.url and "n=8" in r.url):
        page.select_option("#label", "7")
    expected = _cli_png(served, tmp_path, "cgan-mnist", "-n", "8", "--seed", "3", "--label", "7")
    assert _shown_bytes(page, "#grid") == expected

    page.select_option("#model", "cyclegan-digits")
    assert page.is_visible("#upload-box") and page.is_visible("#direction-box")
    upload = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(upload)
    with page.expect_response(lambda r: "/transform" in r.url):
        page.set_input_files("#upload", str(upload))
    shown = _shown_bytes(page, "#transformed")
    direct_bytes = httpx.post(served.base + "/v1/models/cyclegan-digits/transform?direction=a2b",
                              content=upload.read_bytes()).content  # fmt: skip
    assert shown == direct_bytes

    page.select_option("#model", "dcgan-mnist")  # a GAN: uploads are inverted on request
    assert page.is_visible("#invert") and not page.is_visible("#direction-box")
    with page.expect_response(lambda r: "/invert" in r.url, timeout=120_000) as answer:
        page.click("#invert")
    assert answer.value.status == 200
    assert _shown_bytes(page, "#transformed").startswith(b"\x89PNG")
    assert errors == []
    page.close()


def test_the_page_offers_a_diffusion_models_latent_tools(cache, browser, tmp_path):
    """For a diffusion model the page shows the steps box and, its sampler being
    deterministic, the truncation slider, the interpolation strip and the invert button."""
    from PIL import Image

    server = Served(cache, "flow-mnist")
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.base + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length === 1")
        assert page.is_visible("#denoise-box") and page.is_visible("#truncation-box")
        assert page.is_visible("#path-box") and page.is_visible("#invert")
        page.fill("#n", "16")
        page.fill("#seed", "3")
        with page.expect_response(lambda r: "truncation=0.50" in r.url and "n=16" in r.url):
            page.eval_on_selector(
                "#truncation", "e => { e.value = '0.5'; e.dispatchEvent(new Event('change')); }"
            )
        shown = np.asarray(Image.open(io.BytesIO(_shown_bytes(page, "#grid"))).convert("L"))
        cli = _cli_png(server, tmp_path, "flow-mnist", "-n", "16", "--seed", "3",
                       "--truncation", "0.5")  # fmt: skip
        expected = np.asarray(Image.open(io.BytesIO(cli)).convert("L"))
        assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 1
        assert errors == []
        page.close()
    finally:
        server.stop()


def test_a_lone_client_is_never_kept_waiting_for_a_batch():
    from concurrent.futures import ThreadPoolExecutor

    from zoo.serving.batching import Batcher

    async def scenario() -> float:
        batcher = Batcher(lambda f: {"y": f["x"]}, ThreadPoolExecutor(1), 64, 0.5, 100)
        batcher.start()
        x = {"x": np.zeros((1, 2), np.float32)}
        await batcher.submit(x)
        began = time.perf_counter()
        for _ in range(5):  # each after the last one's answer, as one client sends them
            await batcher.submit(x)
        await batcher.stop()
        return time.perf_counter() - began

    assert run_apart(scenario) < 0.5  # 5 requests, not 5 waits of 0.5 s


def test_a_diffusion_model_samples_over_http_as_zoo_sample_does(cache, tmp_path):
    """The sampling loop runs in the server (in NumPy, each network call through the
    batcher), with the family's options from the query."""
    from PIL import Image

    server = Served(cache, "flow-mnist")
    try:
        (listed,) = httpx.get(server.base + "/v1/models").json()["models"]
        assert listed["multistep"] == "denoiser" and listed["conditional"]
        assert listed["sampler"]["objective"] == "velocity" and listed["sampler"]["steps"] >= 1
        query = "n=4&seed=2&label=3&steps=3&guidance=2&format=npy"
        r = httpx.get(f"{server.base}/v1/models/flow-mnist/sample?{query}")
        assert r.status_code == 200, r.text
        served_images = np.load(io.BytesIO(r.content)).astype(int)
        out = tmp_path / "cli.npz"
        args = ["-n", "4", "--seed", "2", "--label", "3", "--steps", "3", "--guidance", "2"]
        subprocess.run([sys.executable, "-m", "zoo", "sample", "flow-mnist", *args, "--out",
                        str(out)], env=server.env, check=True, capture_output=True)  # fmt: skip
        assert np.abs(served_images - np.load(out)["images"].astype(int)).max() <= 1
        for bad, message in [
            ("steps=0", "steps"),
            ("sampler=ddim", "does not go with velocity"),
            ("steps=x", "steps must be an integer"),
            ("guidance=99", "guidance 99.0: use a value from 0 to 50"),
        ]:
            r = httpx.get(f"{server.base}/v1/models/flow-mnist/sample?n=4&{bad}")
            assert r.status_code == 400 and message in r.json()["error"], (bad, r.text)
        r = httpx.get(f"{server.base}/v1/models/flow-mnist/sample?n=2&steps=2")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        # its latent is x_T: truncation, interpolation and inversion, as zoo sample does them
        assert listed["latent"]
        base = f"{server.base}/v1/models/flow-mnist"
        r = httpx.get(f"{base}/sample?n=4&seed=2&label=3&truncation=0.8&format=npy")
        assert r.status_code == 200, r.text
        cli = tmp_path / "truncated.npz"
        args = ["-n", "4", "--seed", "2", "--label", "3", "--truncation", "0.8"]
        subprocess.run([sys.executable, "-m", "zoo", "sample", "flow-mnist", *args, "--out",
                        str(cli)], env=server.env, check=True, capture_output=True)  # fmt: skip
        truncated = np.load(io.BytesIO(r.content)).astype(int)
        assert np.abs(truncated - np.load(cli)["images"].astype(int)).max() <= 1
        r = httpx.get(f"{base}/interpolate?seeds=5,6&steps=4&label=7&format=npy")
        assert r.status_code == 200, r.text
        path = np.load(io.BytesIO(r.content)).astype(int)
        one = np.load(io.BytesIO(httpx.get(f"{base}/sample?n=1&seed=5&label=7&format=npy").content))
        assert path.shape[0] == 4 and np.abs(path[0] - one[0].astype(int)).max() <= 1
        upload = io.BytesIO()
        Image.fromarray(path[0, 0].astype(np.uint8)).save(upload, format="PNG")
        r = httpx.post(f"{base}/invert?steps=5", content=upload.getvalue())
        assert r.status_code == 400 and "drop steps and restarts" in r.json()["error"]
        r = httpx.post(f"{base}/invert?format=npy", content=upload.getvalue(), timeout=120)
        assert r.status_code == 200, r.text
        back = np.load(io.BytesIO(r.content)).astype(int)
        assert np.abs(back[0] - path[0]).mean() < 8  # of 255: the sampler run backwards
    finally:
        server.stop()
