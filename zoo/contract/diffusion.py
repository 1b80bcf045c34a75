"""Multi-step samplers described as data: a diffusion or flow family's schedule and update
rule, run in NumPy around its network, so that the same loop samples in PyTorch and in
onnxruntime (without torch) and a third-party family reuses it with its own network.

A family that samples this way exports one graph, ``denoiser``: inputs ``x`` (N, C, H, W),
``t`` (N,) float32, the time in (0, 1], and, where conditional, ``labels`` (N,) int64, where
`Diffusion.null_label` means "no class" (classifier-free guidance); output ``prediction``.
The graph's metadata carries the `Diffusion` as JSON under ``diffusion``, so an exported file
alone is enough to sample it.

Objectives and samplers (with the papers' notation):

- ``epsilon`` (Ho et al. 2020, DDPM): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps over T
  discrete steps, t = i / T; the network predicts eps. Schedules: ``linear`` betas from
  ``beta_start`` to ``beta_end`` (Ho et al.), ``cosine`` abar (Nichol & Dhariwal 2021).
  Samplers on any number of steps K (an evenly spaced subsequence of the T): ``ddim`` (Song
  et al. 2021), with ``eta`` from 0 (deterministic) to 1, and ``ddpm``, ancestral sampling,
  which on a subsequence is DDIM with eta 1.
- ``velocity`` (Lipman et al. 2023, flow matching; Liu et al. 2023, rectified flow): x_t =
  (1 - t) x_0 + t eps for t in [0, 1]; the network predicts v = eps - x_0, and sampling
  integrates dx/dt = v from t = 1 to 0 with ``euler`` or ``heun`` (second order) on K steps.

The random numbers come from ``draws`` (`zoo.base.torch_random.Draws`): x_T first, then (a
conditional model without labels) the labels, then each ancestral step's noise, so torch's
generator and `zoo.base.torch_random` give the same images.

Where the default sampler is deterministic (DDIM with eta 0, Euler, Heun), x_T alone fixes
the image, so it is the model's latent: `denoise` samples from a given x_T (zoo's
interpolation, walks, truncation and latents files), `invert` runs the steps backwards from
an image, and `class_errors` says which class a conditional model holds an image to be.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from zoo.base.torch_random import Draws
from zoo.errors import UsageError

OBJECTIVES = ("epsilon", "velocity")
SCHEDULES = {"epsilon": ("linear", "cosine"), "velocity": ("flow",)}
SAMPLERS = {"epsilon": ("ddim", "ddpm"), "velocity": ("euler", "heun")}
MAX_T, MAX_STEPS = 10_000, 1_000
META_KEY = "diffusion"  # the graph metadata key that carries the description
# fixed-point refinements per inverted step (`invert`). Measured on 8 held-out digits, the
# pixel error of the inverted latents' images: flow-mnist (5 Euler steps) 0.017 / 0.010 /
# 0.009 / 0.008 for 0-3 refinements; ddpm-mnist (50 DDIM steps) 0.035 / 0.049 / 0.068 / 0.096,
# since its sampler clips each step's x0 estimate, which the inverse cannot undo
REFINE = {"velocity": 3, "epsilon": 0}
CLASS_TRIALS = 8  # noise levels `class_errors` compares the classes at


# (x, t, labels or None) -> prediction, all NumPy: the family's network in either runtime
Network = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]


@dataclass(frozen=True)
class Diffusion:
    """A diffusion or flow model's sampling, as data (JSON in its exported graph)."""

    objective: str = "epsilon"
    schedule: str = "linear"
    timesteps: int = 1000  # T, for epsilon
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sampler: str = "ddim"  # the default
    steps: int = 50  # the default number of network calls (twice, less one, for heun)
    eta: float = 0.0  # ddim's default
    guidance: float = 0.0  # the default scale; 1 is the conditional prediction alone
    num_classes: int = 0  # 0: unconditional; labels num_classes is the null label

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise UsageError(f"diffusion objective {self.objective!r}: use {OBJECTIVES}")
        if self.schedule not in SCHEDULES[self.objective]:
            raise UsageError(
                f"schedule {self.schedule!r} does not go with {self.objective}: use "
                f"{', '.join(SCHEDULES[self.objective])}"
            )
        self.check(self.sampler, self.steps, self.eta, self.guidance)
        if not 2 <= self.timesteps <= MAX_T or not 0 < self.beta_start < self.beta_end < 1:
            raise UsageError("diffusion timesteps must be 2..10,000, 0 < beta_start < beta_end < 1")
        if not 0 <= self.num_classes <= 100_000:
            raise UsageError(f"diffusion num_classes {self.num_classes} is out of range")

    @property
    def null_label(self) -> int:
        return self.num_classes

    def check(self, sampler: str, steps: int, eta: float, guidance: float) -> None:
        if sampler not in SAMPLERS[self.objective]:
            raise UsageError(
                f"--sampler {sampler} does not go with {self.objective} prediction: use "
                f"{' or '.join(SAMPLERS[self.objective])}"
            )
        limit = self.timesteps if self.objective == "epsilon" else MAX_STEPS
        if not 1 <= steps <= min(limit, MAX_STEPS):
            raise UsageError(f"--steps {steps}: use 1 to {min(limit, MAX_STEPS)}")
        if not (math.isfinite(eta) and 0 <= eta <= 1):
            raise UsageError(f"--eta {eta}: use a value from 0 to 1")
        if not (math.isfinite(guidance) and 0 <= guidance <= 50):
            raise UsageError(f"--guidance {guidance}: use a value from 0 to 50")
        if guidance and not self.num_classes:
            raise UsageError("--guidance needs a class-conditional model")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Diffusion:
        """The description in a file's metadata, checked (the file may come from anywhere)."""
        try:
            fields = json.loads(text)
            if not isinstance(fields, dict) or set(fields) - set(cls.__dataclass_fields__):
                raise ValueError("unknown keys")
            kinds = {"objective": str, "schedule": str, "sampler": str, "timesteps": int,
                     "steps": int, "num_classes": int}  # fmt: skip
            for key, value in fields.items():
                kind = kinds.get(key, float)
                if kind is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if type(value) is not kind:
                    raise ValueError(f"{key} is not a {kind.__name__}")
                fields[key] = value
            return cls(**fields)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"a file's diffusion description is not valid ({exc})") from None

    # -- the schedule ------------------------------------------------------------------------

    def alpha_bar(self) -> np.ndarray:
        """abar_1 .. abar_T (float64) for the epsilon objective."""
        t = self.timesteps
        if self.schedule == "linear":
            betas = np.linspace(self.beta_start, self.beta_end, t, dtype=np.float64)
            return np.cumprod(1.0 - betas)
        s = 0.008  # Nichol & Dhariwal's offset; betas clipped at 0.999 as theirs
        f = np.cos((np.arange(t + 1, dtype=np.float64) / t + s) / (1 + s) * math.pi / 2) ** 2
        betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
        return np.cumprod(1.0 - betas)

    def times(self, steps: int) -> np.ndarray:
        """The step indices a sampler visits, from T down: 1-based for epsilon (index i is
        time i / T), evenly spaced times from 1 to 0 for velocity."""
        if self.objective == "epsilon":
            return np.unique(np.linspace(1, self.timesteps, steps).round().astype(np.int64))[::-1]
        return np.linspace(1.0, 0.0, steps + 1)


def guided(
    network: Network, num_classes: int, guidance: float
) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]:
    """Classifier-free guidance (Ho & Salimans 2022): uncond + w (cond - uncond), one call of
    the network on both halves; w = 0 is the unconditional prediction, 1 the conditional."""

    def predict(x: np.ndarray, t: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        if labels is None or guidance == 1.0:
            return network(x, t, labels)
        null = np.full_like(labels, num_classes)
        if guidance == 0.0:
            return network(x, t, null)
        both = network(np.concatenate([x, x]), np.concatenate([t, t]),
                       np.concatenate([labels, null]))  # fmt: skip
        cond, uncond = both[: len(x)], both[len(x) :]
        return uncond + guidance * (cond - uncond)

    return predict


def sample(
    description: Diffusion,
    network: Network,
    draws: Draws,
    n: int,
    shape: tuple[int, int, int],
    *,
    steps: int | None = None,
    sampler: str | None = None,
    eta: float | None = None,
    guidance: float | None = None,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` images (float32 NCHW in [-1, 1]) and their labels: x_T from ``draws``, then the
    labels where the model is conditional and none are given, then the sampler's steps."""
    if labels is not None and not description.num_classes:
        raise UsageError("this model is not conditional: drop --label")
    x = draws.randn(n, *shape)
    if description.num_classes and labels is None:
        labels = draws.randint(description.num_classes, n)
    images = denoise(description, network, x, draws=draws, steps=steps, sampler=sampler,
                     eta=eta, guidance=guidance, labels=labels)  # fmt: skip
    return images, labels


def _options(
    d: Diffusion, steps: int | None, sampler: str | None, eta: float | None, guidance: float | None
) -> tuple[str, int, float, float]:
    """The sampler, steps, eta and guidance asked for, the description's where not."""
    sampler = d.sampler if sampler is None else sampler
    eta = (1.0 if sampler == "ddpm" else d.eta) if eta is None else eta
    return (sampler, d.steps if steps is None else steps, eta,
            d.guidance if guidance is None else guidance)  # fmt: skip


def deterministic(d: Diffusion) -> bool:
    """Whether the default sampler draws no noise after x_T, so that x_T alone fixes the
    image: what interpolation, walks, truncation and inversion need of a latent."""
    return d.objective == "velocity" or _options(d, None, None, None, None)[2] == 0


def denoise(
    description: Diffusion,
    network: Network,
    x: np.ndarray,
    *,
    draws: Draws | None = None,
    steps: int | None = None,
    sampler: str | None = None,
    eta: float | None = None,
    guidance: float | None = None,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """The sampler's steps from x_T = ``x`` (NCHW) to images (float32 in [-1, 1]);
    ``draws`` gives the noise of stochastic steps (ddpm, or ddim with eta > 0)."""
    d = description
    sampler, steps, eta, guidance = _options(d, steps, sampler, eta, guidance)
    d.check(sampler, steps, eta, guidance)
    n, shape = len(x), x.shape[1:]
    x = x.astype(np.float64)
    net = _prediction(d, network, guidance, labels)
    if d.objective == "velocity":
        for now, nxt in itertools.pairwise(d.times(steps)):
            x = _flow_step(net, sampler, x, now, nxt)
        return np.clip(x, -1, 1).astype(np.float32)
    abar = d.alpha_bar()
    ts = d.times(steps)
    for i, step in enumerate(ts):
        prev = ts[i + 1] if i + 1 < len(ts) else 0
        a_t = abar[step - 1]
        a_prev = abar[prev - 1] if prev > 0 else 1.0
        eps = net(x, step / d.timesteps)
        x0 = np.clip((x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t), -1, 1)
        eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)  # consistent with the clip
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0 and prev > 0:
            if draws is None:  # from a latent: nothing to draw the steps' noise from
                raise UsageError(
                    f"--sampler {sampler} with --eta {eta:g} adds noise at every step, so a "
                    "latent alone does not fix the images: use eta 0"
                )
            x = x + sigma * draws.randn(n, *shape).astype(np.float64)
    return np.clip(x, -1, 1).astype(np.float32)


def invert(
    description: Diffusion,
    network: Network,
    images: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    refine: int | None = None,
) -> np.ndarray:
    """The x_T from which the default deterministic sampler draws ``images`` (NCHW in
    [-1, 1]): its steps undone one by one from t = 0 (DDIM inversion, Song et al. 2021). Each
    step's input solves "step(input) = output" by fixed-point iteration, starting from the
    prediction at the output (the classic inversion) and ``refine`` times (default: REFINE)
    re-evaluated at the current estimate, so that few, large steps (a flow's 5) invert too,
    not only many small ones (fixed-point inversion: Pan et al. 2023, "Effective Real Image
    Editing with Accelerated Iterative Diffusion Inversion")."""
    d = description
    sampler, steps, _, guidance = _options(d, None, None, None, None)
    refine = REFINE[d.objective] if refine is None else refine
    if not deterministic(d):
        raise UsageError("this model's default sampler adds noise: its images have no latent")
    x = images.astype(np.float64)
    net = _prediction(d, network, guidance, labels)
    if d.objective == "velocity":
        for now, nxt in reversed(list(itertools.pairwise(d.times(steps)))):
            y = x  # x = y - (step(x) - x): the step's increment taken where it starts
            for _ in range(refine + 1):
                x = y - (_flow_step(net, sampler, x, now, nxt) - x)
        return x.astype(np.float32)
    abar, ts = d.alpha_bar(), d.times(steps)
    for i in reversed(range(len(ts))):
        step, prev = ts[i], (ts[i + 1] if i + 1 < len(ts) else 0)
        a_t, a_prev = abar[step - 1], (abar[prev - 1] if prev > 0 else 1.0)
        y = x  # x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps, with x0 from y and eps at x_t
        for _ in range(refine + 1):
            eps = net(x, step / d.timesteps)
            x0 = (y - math.sqrt(1 - a_prev) * eps) / math.sqrt(a_prev)
            x = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * eps
    return x.astype(np.float32)


def class_errors(
    description: Diffusion, network: Network, images: np.ndarray, trials: int = CLASS_TRIALS
) -> np.ndarray:
    """(images, classes): how badly the network predicts each image's noising under each
    class, averaged over ``trials`` noise levels spread over (0, 1), the same noise for every
    class; the lowest is the class the model holds the image to be (a diffusion classifier:
    Li et al. 2023, "Your Diffusion Model is Secretly a Zero-Shot Classifier")."""
    d, n = description, len(images)
    rng = np.random.default_rng(0)
    x0 = images.astype(np.float64)
    errors = np.zeros((n, d.num_classes))
    classes = np.repeat(np.arange(d.num_classes, dtype=np.int64), n)
    for k in range(trials):
        t, noise = (k + 0.5) / trials, rng.standard_normal(x0.shape)
        if d.objective == "velocity":
            x, target = (1 - t) * x0 + t * noise, noise - x0
        else:
            step = min(d.timesteps, max(1, round(t * d.timesteps)))
            a = d.alpha_bar()[step - 1]
            x, target, t = math.sqrt(a) * x0 + math.sqrt(1 - a) * noise, noise, step / d.timesteps
        batch = np.concatenate([x] * d.num_classes).astype(np.float32)
        pred = network(batch, np.full(len(batch), t, np.float32), classes)
        errors += ((pred.reshape(d.num_classes, n, -1) - target.reshape(1, n, -1)) ** 2).mean(2).T
    return errors / trials


def _flow_step(
    net: Callable[[np.ndarray, float], np.ndarray], sampler: str, x: np.ndarray, now: float,
    nxt: float,
) -> np.ndarray:  # fmt: skip
    """One Euler or Heun step of dx/dt = v from ``now`` to ``nxt``."""
    v = net(x, now)
    if sampler == "heun" and nxt > 0:  # the last step stays Euler (Karras et al. 2022)
        v = 0.5 * (v + net(x + (nxt - now) * v, nxt))
    return x + (nxt - now) * v


def _prediction(
    d: Diffusion, network: Network, guidance: float, labels: np.ndarray | None
) -> Callable[[np.ndarray, float], np.ndarray]:
    """The (guided) network at one time for the whole batch, in float64."""
    predict = guided(network, d.num_classes, guidance)

    def net(x: np.ndarray, t: float) -> np.ndarray:
        times = np.full(len(x), t, np.float32)
        return predict(x.astype(np.float32), times, labels).astype(np.float64)

    return net


def runner_network(run: Callable[..., dict[str, Any]], graph: str = "denoiser") -> Network:
    """The ``Network`` of a zoo runner (torch tensors in and out, `zoo.contract.model.Runner`)."""
    import torch

    def network(x: np.ndarray, t: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        inputs = {"x": torch.from_numpy(x), "t": torch.from_numpy(t)}
        if labels is not None:
            inputs["labels"] = torch.from_numpy(labels)
        return np.asarray(run(graph, **inputs)["prediction"].numpy())

    return network


def describe(graph_metadata: dict[str, Any]) -> Diffusion | None:
    """The description a graph's metadata carries, or None for a one-shot graph."""
    text = graph_metadata.get(META_KEY)
    return None if text is None else Diffusion.from_json(str(text))
