"""Sample a zoo generator through the open inference protocol (v2), with tritonclient.

The same script works unchanged against `zoo serve` and against Triton serving a repository
from `zoo export NAME --format triton` (and so against KServe): it asks the server for the
model's inputs, draws the latent vectors (and labels) itself and writes a PNG grid.

    pip install 'tritonclient[http]' numpy pillow
    python examples/v2_client.py --url localhost:8000 --model dcgan-mnist -n 16 --out grid.png
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import tritonclient.http as http
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="localhost:8000", help="host:port of the server")
    parser.add_argument("--model", default="dcgan-mnist")
    parser.add_argument("-n", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="grid.png")
    args = parser.parse_args()

    client = http.InferenceServerClient(args.url)
    meta = client.get_model_metadata(args.model)
    shapes = {i["name"]: i["shape"] for i in meta["inputs"]}
    rng = np.random.default_rng(args.seed)
    z = rng.standard_normal((args.n, shapes["z"][1]), dtype=np.float32)
    inputs = [http.InferInput("z", list(z.shape), "FP32")]
    inputs[0].set_data_from_numpy(z)
    if "labels" in shapes:  # a class-conditional generator: the classes in turn
        labels = np.arange(args.n, dtype=np.int64) % 10
        inputs.append(http.InferInput("labels", [args.n], "INT64"))
        inputs[1].set_data_from_numpy(labels)
    images = client.infer(args.model, inputs).as_numpy("image")  # (n, C, H, W) in [-1, 1]

    pixels = np.clip(np.round((images + 1) * 127.5), 0, 255).astype(np.uint8)
    n, c, h, w = pixels.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * h, cols * w, c), np.uint8)
    for i, image in enumerate(pixels):
        y, x = (i // cols) * h, (i % cols) * w
        grid[y : y + h, x : x + w] = image.transpose(1, 2, 0)
    Image.fromarray(grid[..., 0] if c == 1 else grid).save(args.out)
    print(f"wrote {n} images from {args.model} at {args.url} to {args.out}")


if __name__ == "__main__":
    main()
