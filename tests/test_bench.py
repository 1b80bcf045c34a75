"""`zoo bench`: one run measures training, sampling in each runtime, export and start-up."""

from __future__ import annotations

import json

import torch

import zoo.api as api
from zoo.evaluation.bench import bf16_peak, format_table


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
    assert model["train_tflop_per_s"] > 0 and model["train_mfu"] is None  # no peak on a CPU
    assert model["export_s"] > 0
    # an MLP's work: two FLOPs (multiply, add) per weight of each linear layer
    g = api.load("gan-mnist").model.generator
    linear = sum(m.weight.numel() for m in g.modules() if isinstance(m, torch.nn.Linear))
    assert model["sample_mflop_per_image"] == round(2 * linear / 1e6, 2)
    for runtime in ("eager", "onnx"):
        speed = model["sampling"][runtime]
        assert speed["images_per_s"] > 0 and speed["latency_ms"] > 0
    assert set(result["startup_s"]) == {"zoo --help", "zoo list", "zoo info gan-mnist"}
    table = format_table(result)
    assert "| gan-mnist (generator) |" in table and "onnx/eager @256" in table
    assert "MFU" not in table
    model["train_mfu"] = 0.123  # as on a GPU
    assert "| MFU |" in format_table(result) and "| 12.3% |" in format_table(result)


def test_bench_refuses_an_unknown_model(zoo):
    r = zoo("bench", "no-such-model")
    assert r.code == 2 and "no-such-model" in r.err


def test_bf16_peak_names_the_part():
    assert bf16_peak("NVIDIA H100 80GB HBM3") == 989e12
    assert bf16_peak("NVIDIA H100 PCIe") == 756e12
    assert bf16_peak("NVIDIA GeForce GTX 1080") is None


def test_reference_ratio_alternates_with_the_plain_loop(zoo, tmp_path):
    """--reference runs the plain loop once per round, with zoo's thread count, and divides
    the medians."""
    calls = tmp_path / "calls"
    ref = tmp_path / "ref.py"
    ref.write_text(
        "import json, sys\n"
        f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "print(json.dumps({'train_img_per_s': 100.0}))\n"
    )
    r = zoo("bench", "--reference", str(ref), "--rounds", "2", "--steps", "1", "--json",
            "--precision", "fp32")  # fmt: skip
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["reference_images_per_s"] == [100.0, 100.0]
    assert result["zoo_precision"] == "fp32"
    for fmt in ("contiguous", "channels_last"):
        rates = result["zoo_images_per_s"][fmt]
        assert len(rates) == 2 and min(rates) > 0
        assert result["ratio"][fmt] == round(sorted(rates)[1] / 2 / 100 + sorted(rates)[0] / 200, 3)
    lines = calls.read_text().splitlines()
    assert len(lines) == 2
    assert f"--threads {result['machine']['threads']}" in lines[0] and "--device cpu" in lines[0]


def test_set_measures_training_of_the_changed_model(zoo):
    r = zoo("bench", "dcgan", "--set", "image_size=16", "--set", "batch_size=8", "--steps", "1",
            "--json")  # fmt: skip
    assert r.code == 0, r.err
    (model,) = json.loads(r.out)["models"]
    assert model["train_images_per_s"] > 0 and model["train_tflop_per_s"] > 0
    assert model["export_s"] is None and model["sampling"] == {}  # not the published weights
    r = zoo("bench", "dcgan", "--set", "image_size=13")
    assert r.code == 2 and "image size" in r.err


def test_the_plain_loop_ships_with_zoo():
    """`zoo bench --reference` needs nothing outside the package: the plain loop is
    zoo.training.plain_dcgan, which trains the tutorials' DCGAN and prints its rate."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "zoo.training.plain_dcgan", "--steps", "12", "--batch", "8"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    assert result["reference"] == "zoo.training.plain_dcgan" and result["train_img_per_s"] > 0
    assert result["batch"] == 8 and result["steps"] == 12


def test_the_machines_limits_come_with_the_rows():
    from zoo.base import cpu
    from zoo.evaluation import limits

    text = "processor : 0\nflags : fpu avx2 avx512f avx512_vnni avx512_bf16 amx_int8\n"
    assert cpu.cpu_features(text) == ["AVX2", "AVX-512", "AVX-512 VNNI", "AVX-512 BF16",
                                         "AMX-INT8"]  # fmt: skip
    assert cpu.native_bf16(["AVX2", "AVX-512 BF16"]) and not cpu.native_bf16(["AVX2"])
    roofs = limits.measure(torch.device("cpu"), seconds=0.1)
    assert roofs["gflops"]["fp32"] > 1 and roofs["gflops"]["int8"] > 1
    assert ("bf16" in roofs["gflops"]) == cpu.native_bf16(roofs["features"])
    result = {
        "machine": {"date": "d", "cpu": "c", "cores": 2, "threads": 2, "device": "cpu",
                    "torch": "t", "onnxruntime": "o"},
        "limits": {**roofs, "gflops": {"fp32": 100.0, "bf16": 400.0}},
        "startup_s": {},
        "models": [{"name": "m", "graph": "generator", "train_images_per_s": 10.0,
                    "train_precision": "bf16", "train_tflop_per_s": 0.1, "train_mfu": None,
                    "train_peak_mb": 1.0, "export_s": 1.0, "sample_mflop_per_image": 10.0,
                    "sampling": {"eager-bf16": {"images_per_s": 8000.0, "latency_ms": 2.0},
                                 "onnx": {"images_per_s": 5000.0, "latency_ms": 1.0}}}],
    }  # fmt: skip
    table = format_table(result)
    assert "Limits at" in table and "fp32 100, bf16 400" in table
    # training: 100 GFLOP/s of a 400 GFLOP/s bf16 roof; sampling in bf16: 80 of the bf16
    # roof, in onnxruntime: 50 of a 100 fp32 roof
    assert "| m (generator) | 10 | bf16 | 0.100 | 25.0% |" in table
    assert "eager-bf16 % of bf16 peak" in table and "onnx % of fp32 peak" in table
    assert "| 8,000 | 20.0% | 2.00 | 5,000 | 50.0% | 1.00 |" in table


def test_a_multi_step_model_is_timed_per_call_and_per_image(zoo):
    r = zoo("bench", "ddpm-mnist", "--steps", "1", "--seconds", "0.1", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    (model,) = result["models"]
    assert model["graph"] == "denoiser"
    whole = model["sampler_ms_per_image"]
    assert set(whole) == {"eager", "onnx"}
    # the default sampler calls the network 50 times per image: at least about 50 times an
    # image's share of one batch-256 call (batch 16 uses the cores no better)
    share_ms = 1e3 / model["sampling"]["onnx"]["images_per_s"]
    assert whole["onnx"] > 0.5 * 50 * share_ms
    assert "onnx ms/img, all steps" in format_table(result)
