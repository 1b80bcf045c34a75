"""Image data: the bundled offline sets, torchvision downloads, folders of images, a data
source by name, training batches, and tensors written back to files.

Owns: `loading` (sources into uint8 tensors, with bounds on what a folder may take),
`sources` (a data source by name, through the registry), `batches` (shuffled mini-batches
on the training device) and `images` (samples to PNG and array files).

May import: `zoo.errors`, `zoo.base`, `zoo.contract`, `zoo.registry`, `zoo.store`.
The names below are the plugin API's (docs/plugins.md).
"""

from zoo.contract.imagesets import Dataset, ImageSet, held_out_split, to_float
from zoo.contract.metadata import ImageSpec
from zoo.data.loading import MAX_DATA_BYTES

__all__ = ["MAX_DATA_BYTES", "Dataset", "ImageSet", "ImageSpec", "held_out_split", "to_float"]
