"""`zoo export --int8`: an int8 graph is kept only if its samples score like the float32 graph's.

Quantisation moves pixels by amounts no per-pixel tolerance judges well (a sample can shift
a stroke's edge and stay a good digit), so the check is the one every model is judged by:
`zoo eval --runtime onnx` (N = 1,000, seed 0) of the int8 export against the float32 export
of the same weights. The int8 files are written beside ``--out`` in a staging folder and
moved into place only after they pass, so a failed check leaves what was there untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zoo import api
from zoo.base.files import staging_dir
from zoo.errors import ZooError
from zoo.evaluation.scores import evaluate

# the int8 graph's FLD may exceed the float32 graph's by 10%, or by 1.0 where that is more
# (FLD's seed-to-seed spread at N = 1,000 is about 0.5 for the catalogue's models)
RELATIVE_TOLERANCE = 0.10
ABSOLUTE_TOLERANCE = 1.0


@dataclass
class Int8Export:
    files: list[Path]
    float_fld: float
    int8_fld: float

    @property
    def limit(self) -> float:
        return fld_limit(self.float_fld)


def fld_limit(float_fld: float) -> float:
    """The highest FLD an int8 graph may score, given the float32 graph's."""
    return max(float_fld * (1 + RELATIVE_TOLERANCE), float_fld + ABSOLUTE_TOLERANCE)


def export_int8(source: str | Path, out: str | Path) -> Int8Export:
    """Export ``source`` with its sampling graph in int8 to ``out``, if it scores within the
    tolerance of the float32 export; otherwise raise, writing nothing."""
    loaded = api.load(source, "cpu")
    out = Path(out)
    with staging_dir(out) as stage:
        files = api.export_model(loaded, "onnx-int8", stage / out.name)
        float_fld = evaluate(source, runtime="onnx", with_anchors=False).metrics["fld"]
        int8_fld = evaluate(files[0], runtime="onnx", with_anchors=False).metrics["fld"]
        result = Int8Export([out.parent / f.name for f in files], float_fld, int8_fld)
        if not int8_fld <= result.limit:
            raise ZooError(
                f"the int8 graph scores FLD {int8_fld:.2f} against {float_fld:.2f} in float32 "
                f"(at most {result.limit:.2f} is kept): nothing was written; export in float32 "
                "(--format onnx)"
            )
        for made, final in zip(files, result.files):
            os.replace(made, final)
    return result
