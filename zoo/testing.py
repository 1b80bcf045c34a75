"""The contract test kit: one pytest suite that every model family must pass, built-in or not.

Subclass `FamilyContract` in your tests, name your family and a configuration small enough
to train in a second, and pytest runs the whole contract on it::

    from zoo.testing import FamilyContract, plugin_registry
    import zoo_lsgan.plugin


    class TestLSGAN(FamilyContract):
        family = "lsgan"
        config = {"nz": 8, "ngf": 8, "ndf": 8}
        plugin = zoo_lsgan.plugin  # test the plugin alone, without installing it

The suite builds the family from its schema, trains a few steps on a tiny offline data set,
saves and loads the run, samples deterministically, resumes bit-identically, samples the same
from its safetensors export, exports to ONNX and samples the same in onnxruntime as in PyTorch
(on weights perturbed until the samples vary, so the comparison can fail), checks that a
train step draws its randomness from ``batch.noise`` alone, and checks that bad settings and
sampling options are refused. zoo runs it on its built-in families, on examples/zoo-lsgan,
and on a family broken on purpose (tests/test_contract.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from zoo import api
from zoo.base.runs import latest_checkpoint
from zoo.base.settings import check_schema, within
from zoo.contract.specs import import_target
from zoo.errors import UsageError
from zoo.registry.discovery import (
    BUILTIN_DIST,
    PluginRecord,
    build_registry,
    get_registry,
    set_registry,
)
from zoo.registry.recipes import recipe_settings, resolve
from zoo.store.checkpoint import load_weights


@contextmanager
def plugin_registry(plugin: Any, name: str = "under-test") -> Iterator[None]:
    """zoo with its built-in plugins and ``plugin`` (no other installed ones), plugin errors
    fatal."""
    import os

    saved = {k: os.environ.get(k) for k in ("ZOO_PLUGINS", "ZOO_STRICT_PLUGINS")}
    os.environ.update(ZOO_PLUGINS=BUILTIN_DIST, ZOO_STRICT_PLUGINS="1")
    try:
        record = PluginRecord(name, name, "0", getattr(plugin, "__name__", name), False)
        set_registry(build_registry(extra=[(plugin, record)]))
        yield
    finally:
        set_registry(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _latest_weights(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = latest_checkpoint(run)
    assert checkpoint is not None, f"{run} has no checkpoint"
    return load_weights(checkpoint / "model.safetensors")


class FamilyContract:
    """Subclass with ``family`` and a tiny ``config``; see the module docstring."""

    family: ClassVar[str]
    config: ClassVar[dict[str, Any]] = {}
    data: ClassVar[str] = "digits"
    image_size: ClassVar[int] = 16
    batch_size: ClassVar[int] = 4
    plugin: ClassVar[Any] = None  # a plugin object or module to test alone
    takes_images: ClassVar[bool] = False  # sampling needs input images (translation)
    sample_options: ClassVar[list[dict[str, Any]]] = []  # valid option sets to try

    @pytest.fixture(autouse=True)
    def _registry(self) -> Iterator[None]:
        if self.plugin is None:
            yield
            return
        with plugin_registry(self.plugin, self.family):
            yield

    def train(self, out: Path, steps: int, resume: bool = False, **settings: Any) -> Path:
        """Train the tiny configuration (plus ``settings``) into ``out``, or resume it, for
        ``steps`` steps."""
        if resume:
            api.train(self.family, out=out, steps=steps, resume=True, progress=False)
            return out
        overrides = {"image_size": self.image_size, "log_every": 1, **self.config, **settings}
        api.train(
            self.family,
            data=self.data,
            out=out,
            steps=steps,
            batch_size=self.batch_size,
            overrides=overrides,
            progress=False,
        )
        return out

    def sample(self, source: Path, runtime: str = "torch", **kwargs: Any) -> torch.Tensor:
        loaded, inputs = api.load(source), None
        if self.takes_images:
            spec = loaded.model.spec
            gen = torch.Generator().manual_seed(1)
            inputs = torch.rand(3, spec.channels, spec.size, spec.size, generator=gen) * 2 - 1
        result = api.sample(
            source, 3, seed=0, inputs=inputs, runtime=runtime, loaded=loaded, **kwargs
        )
        return result.images

    def test_schema_describes_and_checks_every_setting(self) -> None:
        spec = get_registry().family(self.family)
        check_schema(spec.config, f"family {self.family!r}")
        fields = spec.config.fields()
        assert all(f.help for f in fields)
        ranged = next((f for f in fields if f.range and isinstance(f.default, int | float)), None)
        if ranged is not None:  # a value outside the declared range is refused
            bad = next(v for v in (-1, 0, 1e9) if not within(v, ranged.range))
            with pytest.raises(UsageError, match=ranged.name):
                recipe_settings(resolve(self.family), {ranged.name: bad})
        with pytest.raises(UsageError, match="unknown key"):
            recipe_settings(resolve(self.family), {"no_such_setting": 1})

    def test_trains_saves_loads_and_samples_deterministically(self, tmp_path: Path) -> None:
        run = self.train(tmp_path / "run", 2)
        checkpoint = latest_checkpoint(run)
        assert checkpoint is not None and checkpoint.name.endswith("00000002")
        loaded = api.load(run)
        saved = load_weights(checkpoint / "model.safetensors")
        state = loaded.model.state_dict()
        for key, tensor in saved.items():
            torch.testing.assert_close(state[key], tensor, rtol=0, atol=0)
        first, again = self.sample(run), self.sample(run)
        assert torch.equal(first, again)
        assert first.min() >= -1 and first.max() <= 1 and torch.isfinite(first).all()

    def test_resume_is_bit_identical(self, tmp_path: Path) -> None:
        straight = self.train(tmp_path / "straight", 4)
        self.train(tmp_path / "split", 2)
        split = self.train(tmp_path / "split", 4, resume=True)
        a, b = _latest_weights(straight), _latest_weights(split)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key

    def test_channels_last_trains_the_same_model(self, tmp_path: Path) -> None:
        """On CUDA zoo trains in channels_last by default (``memory_format``): a family must
        not depend on the memory layout, e.g. by ``.view`` of a convolution's output (use
        ``flatten`` or ``reshape``, or prefer ``memory_format = "contiguous"`` in its
        FamilySpec's train settings)."""
        plain = _latest_weights(self.train(tmp_path / "a", 2, memory_format="contiguous"))
        nhwc = _latest_weights(self.train(tmp_path / "b", 2, memory_format="channels_last"))
        assert plain.keys() == nhwc.keys()
        for key in plain:
            torch.testing.assert_close(nhwc[key], plain[key], rtol=1e-3, atol=1e-3, msg=key)

    def vivid(self, tmp_path: Path) -> Path:
        """A weights file of the tiny model whose samples vary: two steps leave its outputs
        nearly constant (every pixel within 0.002 of the others), where no comparison of two
        runtimes could fail, so the matrices of its layers get noise as large as they are."""
        run = self.train(tmp_path / "run", 2)
        (weights,) = api.export(run, "safetensors", tmp_path / "trained.safetensors")
        from safetensors.torch import load_file

        from zoo.store.checkpoint import read_info, write_safetensors

        tensors, (_, metadata) = load_file(str(weights)), read_info(weights)
        gen = torch.Generator().manual_seed(0)
        for key, value in tensors.items():
            if value.is_floating_point() and value.dim() >= 2:
                scale = value.float().std().clamp_min(0.05) * 2
                noise = torch.randn(value.shape, generator=gen) * scale
                tensors[key] = (value.float() + noise).to(value.dtype)
        vivid = tmp_path / "vivid.safetensors"
        write_safetensors(vivid, tensors, metadata)
        images = self.sample(vivid)
        spread = float(images.max() - images.min())
        assert spread > 0.2, f"samples of the perturbed model span only {spread:.3f}"
        return vivid

    def test_onnx_export_samples_like_torch(self, tmp_path: Path) -> None:
        """The same images from onnxruntime as from PyTorch, on a model whose samples vary
        (`vivid`), so a wrong export shows."""
        weights = self.vivid(tmp_path)
        files = api.export(weights, "onnx", tmp_path / "model.onnx")
        assert files and all(f.is_file() for f in files)
        for options in [{}, *self.sample_options]:
            torch_images = self.sample(weights, options=options)
            onnx_images = self.sample(files[0], "onnx", options=options)
            torch.testing.assert_close(onnx_images, torch_images, atol=1e-3, rtol=0)

    def test_training_draws_only_the_batchs_noise(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every random draw of a train step comes from ``batch.noise`` (seeded by the run's
        seed and step, the same on any number of processes), never from torch's global
        generator: here it is reseeded at random before every step, and the weights must
        not change. (Dropout draws from the global generator: test with it off.)"""
        plain = _latest_weights(self.train(tmp_path / "plain", 2))
        family = import_target(get_registry().family(self.family).target)
        step = family.train_step

        def scrambled(model: Any, batch: Any, at: int) -> Any:
            torch.manual_seed(torch.seed())
            return step(model, batch, at)

        monkeypatch.setattr(family, "train_step", scrambled)
        other = _latest_weights(self.train(tmp_path / "scrambled", 2))
        for key in plain:
            assert torch.equal(plain[key], other[key]), (
                f"{key} depends on torch's global generator: draw from batch.noise"
            )

    def test_weights_file_samples_like_the_run(self, tmp_path: Path) -> None:
        """The safetensors export (what pretrained weights ship as) holds every weight that
        sampling needs: ``inference`` must name each module the graphs use."""
        run = self.train(tmp_path / "run", 2)
        (weights,) = api.export(run, "safetensors", tmp_path / "model.safetensors")
        for options in [{}, *self.sample_options]:
            expected = self.sample(run, options=options)
            torch.testing.assert_close(self.sample(weights, options=options), expected)

    def test_prior_samples_without_torch_match_torch(self, tmp_path: Path) -> None:
        """A family that declares its ``prior`` graph samples ONNX files without torch
        (zoo/runtime/onnx_sampling.py): same seed, same images as through torch."""
        from zoo.runtime.onnx_sampling import PriorSampler

        prior = get_registry().family(self.family, load=False).prior
        if not prior:
            pytest.skip(f"{self.family} declares no prior graph")
        files = api.export(self.train(tmp_path / "run", 1), "onnx", tmp_path / "model.onnx")
        sampler = PriorSampler.open(files[0])
        assert sampler is not None, (
            f"the {prior!r} graph must take z (N, latent) alone or with labels"
        )
        drawn = sampler.sample(8, seed=3)
        assert drawn is not None
        expected = api.sample(files[0], 8, seed=3, runtime="onnx").images
        torch.testing.assert_close(torch.from_numpy(drawn[0]), expected, atol=1e-4, rtol=0)

    def test_multistep_description_samples_like_torch(self, tmp_path: Path) -> None:
        """A family that declares a ``multistep`` graph is sampled without torch from the
        description its exported graph carries (zoo.contract.diffusion): that description
        must give what the family's torch sampler gives, for every declared option set."""
        from zoo.runtime.onnx_sampling import StepSampler

        if not get_registry().family(self.family, load=False).multistep:
            pytest.skip(f"{self.family} declares no multi-step graph")
        weights = self.vivid(tmp_path)
        files = api.export(weights, "onnx", tmp_path / "model.onnx")
        sampler = StepSampler.open(files[0])
        assert sampler is not None
        for options in [{}, *self.sample_options]:
            drawn = sampler.sample(4, seed=3, options=options)
            assert drawn is not None
            expected = api.sample(weights, 4, seed=3, options=options, runtime="torch").images
            torch.testing.assert_close(torch.from_numpy(drawn[0]), expected, atol=1e-3, rtol=0)

    def test_unknown_sampling_options_are_refused(self, tmp_path: Path) -> None:
        run = self.train(tmp_path / "run", 1)
        with pytest.raises(UsageError, match="no_such_option"):
            self.sample(run, options={"no_such_option": 1})
