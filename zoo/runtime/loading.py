"""A model from saved weights: its family's class through the registry, built from the file's
metadata on the meta device, compared with the file's tensors before anything is allocated,
then loaded in eval mode. The one place a source becomes a runnable model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.base.settings import merge
from zoo.contract.model import GenerativeModel, ModelInfo, check_family_class
from zoo.contract.specs import import_target
from zoo.errors import UsageError, ZooError
from zoo.registry.discovery import get_registry
from zoo.runtime.devices import resolve_device
from zoo.store.checkpoint import load_weights, non_finite, read_info
from zoo.store.sources import resolve as resolve_source


def family_class(name: str) -> type[GenerativeModel]:
    """The family's model class, imported on first use and checked against the contract."""
    spec = get_registry().family(name)
    return check_family_class(import_target(spec.target), name)


def build(info: ModelInfo) -> GenerativeModel:
    """A model from saved metadata: its config over the family's current defaults (a key
    added since the file was written keeps its default), checked against the schema."""
    cls = family_class(info.family)
    schema = get_registry().family(info.family).config
    config = merge(schema.defaults(), info.config, f"the config of {info.family}", schema)
    return cls(config, info.spec)


@dataclass
class Loaded:
    """A model rebuilt from a run, a checkpoint, an export or a catalogue name."""

    model: GenerativeModel
    info: ModelInfo
    path: Path  # the weights file, or the .onnx file for ONNX-only sources
    origin: str = ""  # where the weights came from (zoo.store.sources)


class _SkipInit(torch.overrides.TorchFunctionMode):
    """Skips parameter initialisation (torch.nn.init's functions and the random fills they
    call): on the meta device it fills nothing, and torch runs a meta ``normal_`` through its
    Python reference kernels, whose first call imports torch._dynamo (about 2 s that every
    load of a model paid)."""

    FILLS = frozenset({torch.Tensor.normal_, torch.Tensor.uniform_})

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        initialiser = getattr(func, "__module__", None) == "torch.nn.init"
        if func in self.FILLS or (initialiser and func.__name__.endswith("_")):
            return args[0] if args else kwargs["tensor"]  # in place: the tensor itself
        return func(*args, **kwargs)


def skeleton(info: ModelInfo) -> GenerativeModel:
    """The model ``info`` describes, built on the meta device: shapes without memory."""
    try:
        with torch.device("meta"), _SkipInit():
            return build(info)
    except (ValueError, TypeError, OverflowError, RuntimeError) as exc:
        raise UsageError(f"cannot build a {info.family} from this file's config ({exc})") from None


# A file's metadata must not make zoo allocate more than its own tensors account for: the
# networks it does not carry (a GAN's discriminator) may be this much larger, plus this margin.
SKELETON_RATIO, SKELETON_MARGIN = 8, 20_000_000


def _check_shapes(
    model: GenerativeModel, weights: dict[str, torch.Tensor], path: Path, family: str
) -> None:
    """Compare the meta-device model with the file before anything is allocated."""
    for key, expected in model.inference_state().items():
        if key not in weights:
            raise ZooError(f"{path} lacks weights the {family} model needs: {key}, ...")
        if tuple(weights[key].shape) != tuple(expected.shape):
            raise ZooError(
                f"weights in {path} do not match a {family} built from its config: {key} is "
                f"{tuple(weights[key].shape)} in the file, {tuple(expected.shape)} in the model"
            )
    carried = sum(t.numel() for t in weights.values())
    total = sum(t.numel() for t in model.state_dict().values())
    if total > SKELETON_RATIO * carried + SKELETON_MARGIN:
        raise ZooError(
            f"{path}: its config describes a model of {total:,} values but the file carries "
            f"{carried:,}; refusing to allocate it"
        )


def load(source: str | Path, device: str = "cpu") -> Loaded:
    """Rebuild the model from ``source`` (see `zoo.store.sources.resolve`: a catalogue name means
    its pretrained weights) with its inference weights, in eval mode."""
    resolved = resolve_source(source)
    path = resolved.path
    if path.suffix == ".onnx":
        from zoo.store.exports import read_onnx_info

        # the graphs hold the weights: the model object only serves its sampling logic, so it
        # is never allocated (its metadata may describe anything)
        info = read_onnx_info(path)
        return Loaded(skeleton(info), info, path, resolved.origin)
    info, _ = read_info(path)
    weights = load_weights(path)
    _check_shapes(skeleton(info), weights, path, info.family)
    model = build(info)
    try:
        model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ZooError(
            f"weights in {path} do not match a {info.family} built from its config: "
            f"{first[1].strip() if len(first) > 1 else first[0]}"
        ) from None
    bad = non_finite(model.inference_state())
    if bad:
        raise ZooError(f"{path} holds non-finite weights ({bad}): it cannot produce images")
    model.on_load(info.step)
    model.to(resolve_device(device)).eval()
    return Loaded(model, info, path, resolved.origin)
