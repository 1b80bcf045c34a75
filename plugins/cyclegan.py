"""CycleGAN (Zhu et al. 2017), following junyanz/pytorch-CycleGAN-and-pix2pix.

Generators (A -> B and B -> A): ResNet with reflection padding and InstanceNorm (no affine, no
running statistics, so train and eval compute the same and the ONNX export is exact):
7x7 conv, two stride-2 3x3 downsamples, residual blocks, two ConvTranspose(3, 2, 1,
output_padding=1) upsamples, 7x7 conv, Tanh. Discriminators: PatchGAN, 4x4 convs with
LeakyReLU(0.2) and InstanceNorm (none on the first layer), one output per patch.
Losses: LSGAN (MSE to 1 for real, 0 for fake), L1 cycle loss weighted 10 each way, L1 identity
loss weighted 0.5 x 10; each discriminator's loss is halved and it sees fakes through a pool of
50 earlier ones. Adam 2e-4, betas (0.5, 0.999); constant lr for the first half of the run, then
linear decay to 0. Init N(0, 0.02) as in the reference.

Departures, for 32x32 digits on a CPU: ngf 16, ndf 32 and 3 residual blocks (the reference
uses 64, 64 and 6 blocks at 128 px, 9 at 256 px), and 2 strided discriminator layers instead of 3
(patches of 34 px rather than 70, here about the whole image); set ``ngf``, ``ndf``, ``blocks``
and ``d_layers`` for the reference networks. ``downsamples`` (2 in the reference) is how many
stride-2 convolutions precede the residual blocks, each undone by a 2x upsample after them;
fewer keep each output pixel's view of the input more local (inputs then need sides divisible
by 2 ** downsamples). cyclegan-digits uses none: its domains share MNIST's framing
(data source digits-framed), so translation changes strokes, not geometry (geometric change
is the limit the paper's discussion names), and a local generator seldom swaps classes (label
preservation A->B 0.955 with 0 downsamples, 0.89 with 1, 0.86 with 2 at 2,000 steps).
Batches of 8 rather than the reference's 1 make CPU steps cheaper per image; InstanceNorm
normalises each image on its own, so batching changes the gradient noise, not what the
networks compute.
"""

from __future__ import annotations

import functools
import operator

import torch
import torch.nn.functional as F
from torch import nn

from zoo.contract.blocks import adam, least_squares_loss, normal_init
from zoo.contract.model import Batch, GenerativeModel, Graph, Runner, SampleRequest
from zoo.data import ImageSet, to_float
from zoo.errors import UsageError


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            _norm(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Generator(nn.Module):
    def __init__(self, channels: int, ngf: int, blocks: int, downsamples: int = 2):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7),
            _norm(ngf),
            nn.ReLU(True),
        ]
        mults = [2**i for i in range(downsamples)]  # the reference: 1, 2
        for mult in mults:
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1), _norm(ngf * mult * 2)]
            layers.append(nn.ReLU(True))
        layers += [ResnetBlock(ngf * 2**downsamples) for _ in range(blocks)]
        for mult in (2 * m for m in reversed(mults)):
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1),
                _norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class PatchDiscriminator(nn.Module):
    """``layers`` stride-2 convs, one stride-1 conv, then a 1-channel map of patch logits."""

    def __init__(self, channels: int, ndf: int, layers: int):
        super().__init__()
        net: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < layers else 1
            net += [nn.Conv2d(width, out, 4, stride, 1), _norm(out), nn.LeakyReLU(0.2, True)]
            width = out
        net.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*net)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class ImagePool(nn.Module):
    """The history of generated images a discriminator sees (Shrivastava et al. 2017).

    Until ``size`` images are stored, each query image is stored and returned. After that each
    is, with probability 0.5, swapped for a random stored image (which is returned), or else
    returned as is. The images and fill count are buffers so checkpoints capture the pool; the
    draws come from the global RNG, which the trainer checkpoints too.
    """

    images: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, shape: tuple[int, int, int]):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        images = images.detach().to(self.images.dtype)  # bf16 under autocast
        swap = (torch.rand(len(images)) < 0.5).tolist()
        slots = torch.randint(self.size, (len(images),)).tolist()
        count = int(self.count)
        out = []
        for image, use_stored, slot in zip(images, swap, slots):
            if count < self.size:
                self.images[count] = image
                count += 1
                out.append(image)
            elif use_stored:
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        self.count.fill_(count)
        return torch.stack(out)


def lr_factor(step: int, total: int) -> float:
    """1 for the first half of ``total`` steps, then linearly down to 0 at ``total``."""
    if total <= 0:
        return 1.0
    return min(1.0, 2.0 * (total - step) / total)


class CycleGAN(GenerativeModel):
    """Settings: CycleGANConfig in zoo/plugins/__init__.py."""

    domains = 2
    takes_input = True
    inference = ("gen_a2b", "gen_b2a")

    def __init__(self, config, spec):
        super().__init__(config, spec)
        c, channels = config, spec.channels
        # each stride-2 downsample is undone by an exact 2x upsample
        self.size_multiple = 2 ** c["downsamples"]
        if spec.size % self.size_multiple:
            raise UsageError(
                f"this CycleGAN needs an image size divisible by {self.size_multiple} (got "
                f"{spec.size}); pass --set image_size=32"
            )
        args = (channels, c["ngf"], c["blocks"], c["downsamples"])
        self.gen_a2b, self.gen_b2a = Generator(*args), Generator(*args)
        self.disc_a = PatchDiscriminator(channels, c["ndf"], c["d_layers"])  # judges domain A
        self.disc_b = PatchDiscriminator(channels, c["ndf"], c["d_layers"])
        self.apply(normal_init)
        shape = (channels, spec.size, spec.size)
        self.pool_a = ImagePool(c["pool_size"], shape)  # generated A images, for disc_a
        self.pool_b = ImagePool(c["pool_size"], shape)

    def configure_optimizers(self):
        c = self.config
        betas = (c["beta1"], c["beta2"])
        gens = [*self.gen_a2b.parameters(), *self.gen_b2a.parameters()]
        discs = [*self.disc_a.parameters(), *self.disc_b.parameters()]
        return {
            "generators": adam(gens, c["lr"], betas),
            "discriminators": adam(discs, c["lr"], betas),
        }

    def generator_losses(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The generators' loss terms, and the fakes (A -> B, B -> A) for the discriminators."""
        c = self.config
        lam, lam_idt = c["lambda_cycle"], c["lambda_cycle"] * c["lambda_identity"]
        fake_b, fake_a = self.gen_a2b(real_a), self.gen_b2a(real_b)
        losses = {
            "g_adv_a2b": least_squares_loss(self.disc_b(fake_b), 1.0),
            "g_adv_b2a": least_squares_loss(self.disc_a(fake_a), 1.0),
            "cycle_a": F.l1_loss(self.gen_b2a(fake_b), real_a) * lam,
            "cycle_b": F.l1_loss(self.gen_a2b(fake_a), real_b) * lam,
        }
        if lam_idt > 0:
            losses["identity_a"] = F.l1_loss(self.gen_b2a(real_a), real_a) * lam_idt
            losses["identity_b"] = F.l1_loss(self.gen_a2b(real_b), real_b) * lam_idt
        return losses, fake_b, fake_a

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        real_a, real_b = batch.images, batch.images_b
        assert real_b is not None  # two domains: the trainer draws both
        opt = self.optimizers
        for o in opt.values():
            for group in o.param_groups:
                group["lr"] = self.config["lr"] * lr_factor(step, self.total_steps)

        discs = [*self.disc_a.parameters(), *self.disc_b.parameters()]
        for p in discs:  # the generators' step needs no discriminator gradients
            p.requires_grad_(False)
        losses, fake_b, fake_a = self.generator_losses(real_a, real_b)
        g_loss = functools.reduce(operator.add, losses.values())
        opt["generators"].zero_grad(set_to_none=True)
        g_loss.backward()
        opt["generators"].step()
        for p in discs:
            p.requires_grad_(True)

        fake_a, fake_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        d_a = 0.5 * (
            least_squares_loss(self.disc_a(real_a), 1.0)
            + least_squares_loss(self.disc_a(fake_a), 0.0)
        )
        d_b = 0.5 * (
            least_squares_loss(self.disc_b(real_b), 1.0)
            + least_squares_loss(self.disc_b(fake_b), 0.0)
        )
        opt["discriminators"].zero_grad(set_to_none=True)
        (d_a + d_b).backward()
        opt["discriminators"].step()
        return {
            "g_loss": g_loss.detach(),
            **{k: v.detach() for k, v in losses.items()},
            "d_a": d_a.detach(),
            "d_b": d_b.detach(),
        }

    def graphs(self) -> dict[str, Graph]:
        c, s = self.spec.channels, self.spec.size
        example = torch.rand(2, c, s, s, generator=torch.Generator().manual_seed(0)) * 2 - 1
        return {
            name: Graph(
                getattr(self, f"gen_{name}").eval(),
                {"image": example},
                ["translated"],  # ONNX names must differ from the input's
                {"direction": name, "input_size": f"any multiple of {self.size_multiple}"},
                dynamic_size=True,
                size_multiple=self.size_multiple,
            )
            for name in ("a2b", "b2a")
        }

    def check_request(self, request: SampleRequest) -> None:
        super().check_request(request)
        if request.inputs is None:
            raise UsageError("CycleGAN translates images: pass --input (domain A, or B with b2a)")
        h, w = request.inputs.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise UsageError(
                f"this CycleGAN's inputs need sides divisible by {self.size_multiple} (got {h}x{w})"
            )

    def sample(self, request: SampleRequest, run: Runner) -> torch.Tensor:
        direction = str(request.options.get("direction", "a2b"))
        assert request.inputs is not None  # check_request: a translation needs --input
        return run(direction, image=request.inputs)["translated"]

    def preview(
        self, held_out: ImageSet, held_out_b: ImageSet | None, seed: int
    ) -> tuple[torch.Tensor, int]:
        """Rows of 8 held-out inputs, each above a row of their translations: two pairs of
        rows A -> B, then two B -> A."""
        from zoo.contract.model import TorchRunner

        run = TorchRunner(self.graphs(), next(self.parameters()).device)
        rows = []
        for images, direction in ((held_out, "a2b"), (held_out_b, "b2a")):
            if images is None:
                continue
            inputs = to_float(images.images[:16])
            outputs = run(direction, image=inputs)["translated"]
            for i in range(0, len(inputs), 8):
                rows += [inputs[i : i + 8], outputs[i : i + 8]]
        return torch.cat(rows), 8
