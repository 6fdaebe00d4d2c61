r"""``vae-course bench``: how fast :func:`vae_course.train.fit` trains the 784-400-20 MLP VAE.

Three numbers from one run, on the same machine at the same time:

(a) **engine**: samples per second of :func:`~vae_course.train.fit` (whole data set as one tensor
    on the device, index batches, fused Adam);
(b) **baseline**: the same network trained the way the pytorch/examples ``vae/main.py`` script
    does it: a ``torch.utils.data.DataLoader`` over a ``Dataset`` that builds one image at a time
    (uint8 array -> PIL image -> float tensor, the steps of torchvision's ``ToTensor``), Adam's default
    per-tensor update, a sigmoid output and ``binary_cross_entropy(..., reduction="sum")``. This
    baseline is written here (:class:`BaselineVAE`, :func:`baseline_epoch`) and is **only** a reference
    point; it uses the tanh layers of (a) (the example has ReLU) so that only the loop differs;
(c) **GEMM roofline**: the samples per second the model would reach if a training step cost only
    its matrix products. A linear layer :math:`Y = XW^\top` costs :math:`2\,n_{in}n_{out}` FLOPs per
    example forward and twice that backward (:math:`\partial X` and :math:`\partial W`), so a step
    costs about 3x the forward matmul FLOPs; the FLOP rate is measured on ``torch.mm`` at exactly
    these shapes.

The machine may be shared, so rounds alternate (a), (b), (c) and each figure is the best of its
rounds; the load average is reported next to them.
"""
from __future__ import annotations

import os
import time
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from .. import _validate as check
from .. import data as vc_data
from ..data import ImageData
from ..distributions import reparameterize
from ..models import VAE
from ..train import evaluate_loss, fit, make_optimizer
from ..utils import check_positive_int, get_device

__all__ = ["BaselineVAE", "PerItemImages", "baseline_loss", "baseline_epoch", "baseline_fit", "baseline_test_loss",
           "gemm_roofline", "forward_flops", "BenchResult", "run_bench", "QualityResult", "compare_at_equal_time",
           "TRAIN_STEPS", "OverheadResult", "train_overhead"]


# ---------------------------------------------------------------- (b) the baseline, pytorch/examples style
class PerItemImages(torch.utils.data.Dataset):
    """BASELINE ONLY. A Dataset that converts one image per ``__getitem__`` call, as torchvision's
    MNIST with ``transforms.ToTensor()`` does: uint8 array -> PIL image -> float tensor in [0, 1]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, binarize: bool = False):
        self.images, self.labels, self.binarize = images, labels, binarize

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.images[i], mode="L")
        # what torchvision's ToTensor does with a greyscale PIL image: HWC uint8 -> CHW float / 255
        x = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(img.size[1], img.size[0], 1)
        x = x.permute(2, 0, 1).contiguous().to(torch.float32).div(255)  # (1, H, W)
        if self.binarize:
            x = torch.bernoulli(x)
        return x, int(self.labels[i])


class BaselineVAE(nn.Module):
    """BASELINE ONLY: the pytorch/examples VAE, D-400-20 with a sigmoid output. The example uses ReLU;
    ``activation="tanh"`` gives the Kingma & Welling network of :class:`vae_course.models.VAE`, so that a
    comparison of the two loops compares loops only."""

    def __init__(self, x_dim: int = 784, hidden: int = 400, z_dim: int = 20, activation: str = "relu"):
        super().__init__()
        if activation not in ("relu", "tanh"):
            raise ValueError(f"activation: got {activation!r}; need 'relu' or 'tanh'")
        self.act = torch.relu if activation == "relu" else torch.tanh
        self.x_dim = x_dim
        self.enc = nn.Linear(x_dim, hidden)
        self.enc_mu, self.enc_logvar = nn.Linear(hidden, z_dim), nn.Linear(hidden, z_dim)
        self.dec, self.dec_out = nn.Linear(z_dim, hidden), nn.Linear(hidden, x_dim)

    def forward(self, x: Tensor):
        h = self.act(self.enc(x.view(-1, self.x_dim)))
        mu, logvar = self.enc_mu(h), self.enc_logvar(h)
        z = reparameterize(mu, logvar, validate=False)
        return torch.sigmoid(self.dec_out(self.act(self.dec(z)))), mu, logvar


def baseline_loss(x_prob: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Negative ELBO summed over the batch: Bernoulli cross-entropy plus KL(q || N(0, I)) (Kingma & Welling, app. B)."""
    bce = F.binary_cross_entropy(x_prob, x.view(-1, x_prob.shape[-1]), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def _uint8(x: Tensor) -> np.ndarray:
    return (x[:, 0] * 255).round().to(torch.uint8).cpu().numpy()  # (N, H, W), the raw pixels again


def baseline_epoch(model: BaselineVAE, loader, optimizer, *, time_limit: float | None = None,
                   device: torch.device | None = None) -> tuple[int, float]:
    """One pass over ``loader`` (stopping early after ``time_limit`` seconds); returns (samples, seconds)."""
    model.train()
    seen, t0 = 0, time.perf_counter()
    for x, _ in loader:
        x = x.to(device) if device is not None else x
        optimizer.zero_grad()
        x_prob, mu, logvar = model(x)
        loss = baseline_loss(x_prob, x, mu, logvar)
        loss.backward()
        optimizer.step()
        seen += len(x)
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            break
    return seen, time.perf_counter() - t0


@torch.no_grad()
def baseline_test_loss(model: BaselineVAE, x_test: Tensor) -> float:
    """Mean negative ELBO per test image (nats), one z per image, as the example's ``test()`` computes it."""
    model.eval()
    x_prob, mu, logvar = model(x_test)
    return float(baseline_loss(x_prob, x_test, mu, logvar)) / len(x_test)


def _loader(data: ImageData, batch_size: int, binarize: bool, seed: int):
    ds = PerItemImages(_uint8(data.x_train), data.y_train.numpy(), binarize=binarize)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True,
                                       generator=torch.Generator().manual_seed(seed))


def baseline_fit(data: ImageData, *, seconds: float, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                 binarize: bool | None = None, device: str | torch.device | None = None, z_dim: int = 20,
                 hidden: int = 400, activation: str = "tanh") -> tuple[BaselineVAE, float, int]:
    """Train the baseline loop for ``seconds`` of wall time; returns (model, test loss in nats, samples seen).

    The default network is the Kingma & Welling tanh MLP of :class:`vae_course.models.VAE`, so that a
    comparison with :func:`vae_course.train.fit` compares the two loops, not two networks.
    """
    device = get_device(device)
    torch.manual_seed(seed)
    binarize = data.binarize == "dynamic" if binarize is None else binarize
    model = BaselineVAE(data.x_dim, hidden, z_dim, activation).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = _loader(data, batch_size, binarize, seed)
    seen, spent = 0, 0.0
    while spent < seconds:
        n, t = baseline_epoch(model, loader, opt, time_limit=seconds - spent, device=device)
        seen, spent = seen + n, spent + t
    return model, baseline_test_loss(model, data.x_test.to(device)), seen


# ---------------------------------------------------------------- (c) the GEMM roofline
def forward_flops(layers: list[tuple[int, int]]) -> int:
    """Forward matmul FLOPs per example of linear layers ``(n_in, n_out)``: sum of 2 n_in n_out."""
    return sum(2 * a * b for a, b in layers)


def gemm_roofline(layers: list[tuple[int, int]], batch_size: int = 128, *, repeats: int = 20,
                  device: torch.device | None = None) -> tuple[float, float]:
    """(GFLOP/s, samples/s): the three products of each layer (Y = X W^T, dX = dY W, dW = dY^T X) timed
    with ``torch.mm`` at these shapes; samples/s = FLOP rate / (3 x forward FLOPs per example)."""
    device = device or torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    mats = [(torch.randn(batch_size, a, generator=g).to(device), torch.randn(b, a, generator=g).to(device),
             torch.randn(batch_size, b, generator=g).to(device)) for a, b in layers]

    def step():
        for x, w, dy in mats:
            torch.mm(x, w.t()), torch.mm(dy, w), torch.mm(dy.t(), x)

    for _ in range(3):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    _sync(device)
    dt = (time.perf_counter() - t0) / repeats
    flops = 3 * forward_flops(layers) * batch_size
    return flops / dt / 1e9, batch_size / dt


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


# ---------------------------------------------------------------- the whole benchmark
class BenchResult(NamedTuple):
    """Samples per second of (a) ``engine``, (b) ``baseline``, (c) ``roofline``; ``gflops`` measured;
    ``speedup`` = a / b; ``roofline_fraction`` = a / c; ``load`` = 1-minute load average before and after."""

    engine: float
    baseline: float
    roofline: float
    gflops: float
    speedup: float
    roofline_fraction: float
    load: tuple[float, float]
    device: str
    threads: int
    flops_per_sample: int

    def report(self) -> str:
        return "\n".join([
            f"device {self.device}, torch threads {self.threads}, load average {self.load[0]:.2f} -> {self.load[1]:.2f}",
            f"model 784-400-20 MLP VAE, batch 128; {self.flops_per_sample / 1e6:.2f} MFLOP per sample (3 x forward matmuls)",
            f"(a) fit engine              {self.engine:9.0f} samples/s",
            f"(b) baseline (DataLoader)   {self.baseline:9.0f} samples/s   (a)/(b) = {self.speedup:.2f}x",
            f"(c) GEMM roofline           {self.roofline:9.0f} samples/s   ({self.gflops:.1f} GFLOP/s; (a)/(c) = "
            f"{100 * self.roofline_fraction:.0f}%)",
        ])


def run_bench(*, rounds: int = 3, device: str | torch.device | None = None, batch_size: int = 128,
              data: ImageData | None = None) -> BenchResult:
    """Alternate (a), (b), (c) for ``rounds`` rounds (one epoch of mnist5k each) and keep the best of each.

    (a) and (b) train the same tanh network, so the difference is the loop alone.
    """
    rounds = check_positive_int("rounds", rounds)
    device = get_device(device)
    data = data or vc_data.mnist5k()
    layers = [(784, 400), (400, 40), (20, 400), (400, 784)]
    load0 = os.getloadavg()[0]
    best = {"a": 0.0, "b": 0.0, "c": 0.0, "gflops": 0.0}
    model = VAE(hidden=400, z_dim=20)
    baseline = BaselineVAE(activation="tanh").to(device)
    opt = torch.optim.Adam(baseline.parameters(), lr=1e-3)
    loader = _loader(data, batch_size, False, 0)
    for r in range(rounds):
        h = fit(model, data.x_train, epochs=1, batch_size=batch_size, seed=r, device=device, progress=False)
        best["a"] = max(best["a"], h.samples_per_second)
        n, t = baseline_epoch(baseline, loader, opt, device=device)
        _sync(device)
        best["b"] = max(best["b"], n / t)
        gf, sps = gemm_roofline(layers, batch_size, device=device)
        best["c"], best["gflops"] = max(best["c"], sps), max(best["gflops"], gf)
    flops = 3 * forward_flops(layers)
    return BenchResult(best["a"], best["b"], best["c"], best["gflops"], best["a"] / best["b"], best["a"] / best["c"],
                       (load0, os.getloadavg()[0]), str(device), torch.get_num_threads(), flops)


# ---------------------------------------------------------------- equal wall time: which loop gets further?
class QualityResult(NamedTuple):
    """Test loss (-ELBO, nats per image, one z per image) of each loop after ``seconds`` of training."""

    seconds: float
    engine_loss: float
    engine_samples: int
    baseline_loss: float
    baseline_samples: int
    lr: float

    def report(self) -> str:
        return (f"after {self.seconds:.0f} s of training on mnist5k (dynamic binarisation), test -ELBO per image:\n"
                f"  fit engine                                 {self.engine_loss:7.2f} nats ({self.engine_samples} samples)\n"
                f"  baseline loop (pytorch/examples style)     {self.baseline_loss:7.2f} nats ({self.baseline_samples} samples)\n"
                f"  (both: the Kingma & Welling tanh MLP 784-400-20, batch 128, Adam lr {self.lr:g})")


def compare_at_equal_time(seconds: float, *, lr: float = 3e-3, seed: int = 0, device: str | torch.device | None = None,
                          data: ImageData | None = None) -> QualityResult:
    """Train the 784-400-20 tanh VAE with :func:`~vae_course.train.fit` and with the baseline loop for the same
    wall time (as chapter 5 does, same step size ``lr``); report both test losses."""
    check.positive_float("seconds", seconds)
    device = get_device(device)
    data = data or vc_data.mnist5k(binarize="dynamic", seed=seed)
    torch.manual_seed(seed)
    model = VAE(x_shape=data.image_shape, z_dim=20, hidden=400).to(device)
    opt, history, t0, epoch = make_optimizer(model, lr), None, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        history = fit(model, data.x_train, epochs=1, seed=seed + epoch, device=device, progress=False,
                      optimizer=opt, history=history, binarize="dynamic")  # one epoch at a time, to watch the clock
        epoch += 1
    engine_loss = evaluate_loss(model, data.x_test.to(device))["loss"]
    baseline, baseline_loss, seen = baseline_fit(data, seconds=seconds, lr=lr, seed=seed, binarize=True, device=device)
    return QualityResult(seconds, engine_loss, sum(history.samples), baseline_loss, seen, lr)


# ---------------------------------------------------------------- where `vae-course train` spends its time
TRAIN_STEPS = ("engine (as (a))", "+ dynamic binarisation", "+ test set every epoch", "+ checkpoint every epoch",
               "+ progress bar")


class OverheadResult(NamedTuple):
    """Wall-clock samples per second of :func:`~vae_course.train.fit` as each extra of ``vae-course train`` is added
    (:data:`TRAIN_STEPS`, cumulative), best of the rounds; ``load``: 1-minute load average before and after."""

    rates: tuple[float, ...]
    epochs: int
    load: tuple[float, float]

    def report(self) -> str:
        base = self.rates[0]
        rows = [f"`vae-course train`'s loop, wall-clock samples/s over {self.epochs} epoch(s) of mnist5k, best of the "
                f"rounds (load {self.load[0]:.2f} -> {self.load[1]:.2f}):"]
        rows += [f"  {name:<28}{r:9.0f} samples/s   {100 * r / base:5.1f}% of the engine"
                 for name, r in zip(TRAIN_STEPS, self.rates)]
        return "\n".join(rows)


def train_overhead(*, rounds: int = 3, epochs: int = 3, device: str | torch.device | None = None,
                   data: ImageData | None = None, folder: str | os.PathLike | None = None) -> OverheadResult:
    """Time the 784-400-20 tanh VAE's :func:`~vae_course.train.fit` on mnist5k with the extras of ``vae-course train``
    switched on one after another (:data:`TRAIN_STEPS`); the configurations alternate within each round, so a shared
    machine's load falls on all of them alike. ``folder``: where the checkpoints go (a temporary folder if None)."""
    import tempfile

    rounds, epochs = check_positive_int("rounds", rounds), check_positive_int("epochs", epochs)
    device = get_device(device)
    grey = data or vc_data.mnist5k(binarize="dynamic")
    best = [0.0] * len(TRAIN_STEPS)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        configs = [dict(data=grey.x_train, binarize="none"), dict(data=grey.x_train, binarize="dynamic"),
                   dict(data=grey, binarize="dynamic"), dict(data=grey, binarize="dynamic", checkpoint=f"{tmp}/c.pt"),
                   dict(data=grey, binarize="dynamic", checkpoint=f"{tmp}/c.pt", progress=True)]
        for r in range(rounds):
            for i, cfg in enumerate(configs):
                torch.manual_seed(r)
                model = VAE(hidden=400, z_dim=20)
                cfg = {"progress": False, **cfg}
                t0 = time.perf_counter()
                fit(model, cfg.pop("data"), epochs=epochs, batch_size=128, seed=r, device=device, **cfg)
                _sync(device)
                best[i] = max(best[i], epochs * len(grey.x_train) / (time.perf_counter() - t0))
    return OverheadResult(tuple(best), epochs, (load0, os.getloadavg()[0]))
