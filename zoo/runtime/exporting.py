"""A loaded model through an exporter plugin into files, and the ONNX graphs the torch-free
path samples, exported once per weights file and cached (`zoo.store.exports.ExportSlot`)."""

from __future__ import annotations

import os
from pathlib import Path

from zoo.base.files import replace_dir, staging_dir, write_text
from zoo.contract.specs import import_target
from zoo.errors import UsageError, ZooError
from zoo.registry.discovery import PLUGIN_FAULTS, PluginError, get_registry
from zoo.runtime.loading import Loaded
from zoo.store.exports import MANIFEST, ExportSlot, graph_files


def onnx_files(loaded: Loaded) -> dict[str, Path]:
    """The model's graphs as ONNX files: given, or exported once and cached (keyed by the
    weights' sha256, inside the checkpoint for runs; `zoo.store.exports.ExportSlot`)."""
    if loaded.path.suffix == ".onnx":
        return graph_files(loaded.path)
    slot = ExportSlot.of(loaded.path)  # hashes the weights once
    cached = slot.cached()
    if cached is None:
        with staging_dir(slot.folder) as stage:
            made = stage / slot.folder.name
            made.mkdir()
            files = export_model(loaded, "onnx", made / slot.target.name)
            write_text(made / MANIFEST, slot.manifest(files))
            replace_dir(made, slot.folder)  # the set appears (or is replaced) whole
        cached = slot.cached()
        if cached is None:
            raise ZooError(f"the export cached in {slot.folder} changed while zoo wrote it")
    return graph_files(cached)


def export_model(loaded: Loaded, fmt: str, out: str | Path) -> list[Path]:
    """Run exporter ``fmt`` into a staging folder beside ``out`` and move what it reports
    into place: a failed exporter leaves nothing behind and replaces nothing."""
    registry = get_registry()
    spec = registry.exporter(fmt)
    exporter = import_target(spec.target)
    out = Path(out)
    if loaded.path.suffix == ".onnx":
        raise UsageError(f"{loaded.path} is already an export; export from its run or weights")
    if spec.suffix and out.suffix != spec.suffix:
        raise UsageError(f"--out {out} should end in {spec.suffix} for --format {fmt}")
    record = registry.plugin_of("exporter", fmt)
    who = f"exporter {fmt!r} of {record.origin() if record else 'an unknown plugin'}"
    loaded.model.to("cpu").eval()
    with staging_dir(out) as stage:
        try:
            written = [Path(p) for p in exporter(loaded.model, stage / out.name, loaded.info)]
        except ZooError:
            raise
        except PLUGIN_FAULTS as exc:
            raise PluginError(
                f"{who} failed: {type(exc).__name__}: {exc}; nothing was written"
            ) from exc
        if not written:
            raise PluginError(f"{who} reported no files; nothing was written")
        for path in written:
            if path.resolve().parent != stage.resolve() or not path.exists():
                raise PluginError(
                    f"{who} reported {path.name} but did not write it beside --out; "
                    "nothing was written"
                )
        final = [out.parent / path.name for path in written]
        for path, target in zip(written, final):
            os.replace(path, target)
    return final
