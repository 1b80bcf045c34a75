"""`zoo bench`: one run measures training, sampling in each runtime, export and start-up."""

from __future__ import annotations

import json

from zoo.bench import format_table


def test_bench_measures_every_part(zoo):
    r = zoo("bench", "gan-mnist", "--steps", "2", "--seconds", "0.1", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert {"cpu", "cores", "threads", "torch", "onnxruntime", "device", "date"} <= set(
        result["machine"]
    )
    (model,) = result["models"]
    assert model["name"] == "gan-mnist" and model["graph"] == "generator"
    assert model["train_images_per_s"] > 0 and model["train_peak_mb"] > 0
    assert model["export_s"] > 0
    for runtime in ("eager", "onnx"):
        speed = model["sampling"][runtime]
        assert speed["images_per_s"] > 0 and speed["latency_ms"] > 0
    assert set(result["startup_s"]) == {"zoo --help", "zoo list", "zoo info gan-mnist"}
    table = format_table(result)
    assert "| gan-mnist (generator) |" in table and "onnx/eager @256" in table


def test_bench_refuses_an_unknown_model(zoo):
    r = zoo("bench", "no-such-model")
    assert r.code == 2 and "no-such-model" in r.err
