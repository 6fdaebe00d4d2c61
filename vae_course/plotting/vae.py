r"""Figures for chapter 5 (the VAE): latent spaces, decoded grids, blur, learned variances, bounds, scores.

Every function takes a trained :class:`~vae_course.models.VAE` (or the numbers computed from one) and
an ``ax`` (or ``axes``), and returns what it drew on. The 2-D latent manifold follows Kingma &
Welling (2014, fig. 4): a grid of latents at the prior's quantiles :math:`\Phi^{-1}(u)`, decoded to
the means :math:`\mathbb E[x\mid z]`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import LogNorm
from torch import Tensor

from .common import image_grid, new_axes

__all__ = ["latent_scatter", "latent_grid_images", "latent_manifold", "latent_point", "interpolation", "reconstructions",
           "means_vs_samples", "decoder_std_map", "latent_study", "iwae_curve_plot"]


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _codes(model, x: Tensor) -> Tensor:
    model.eval()
    return model.encode(x.to(_device(model))).mu.cpu()  # (N, m)


def latent_scatter(model, x: Tensor, y: Tensor, *, ax=None, title: str | None = None, s: float = 6, legend: bool = True):
    r"""Encoder means :math:`\mu(x)` coloured by digit label. 2-D latents are drawn as they are; larger ones
    are projected on their first two principal components (the axes say which)."""
    ax = new_axes(ax, (5, 4.5))
    z = _codes(model, x)
    if z.shape[1] > 2:
        zc = z - z.mean(0)
        _, _, v = torch.linalg.svd(zc, full_matrices=False)
        z, names = zc @ v[:2].T, ("PC 1 of mu(x)", "PC 2 of mu(x)")
    elif z.shape[1] == 1:
        z, names = torch.cat([z, torch.zeros_like(z)], 1), ("z", "")
    else:
        names = ("$z_1$", "$z_2$")
    y = y.cpu()
    for c in range(int(y.max()) + 1):
        m = y == c
        ax.scatter(z[m, 0], z[m, 1], s=s, color=plt.cm.tab10(c % 10), label=str(c), alpha=0.7, linewidths=0)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    if legend:
        ax.legend(markerscale=2.5, fontsize=7, ncol=2, loc="best", title="digit", title_fontsize=7)
    if title:
        ax.set_title(title)
    return ax


@torch.no_grad()
def latent_grid_images(model, *, n: int = 15, lim: float = 0.95, dims=(0, 1)) -> Tensor:
    r"""The images :func:`latent_manifold` draws: decoder means ``(n*n, C, H, W)`` on the grid of latents
    :math:`z = \Phi^{-1}(u)`, :math:`u\in[1-\text{lim}, \text{lim}]^2` (other coordinates 0), row by row from high
    :math:`z_2` to low, each row from low :math:`z_1` to high (e.g. to classify every cell of the map)."""
    model.eval()
    u = torch.linspace(1 - lim, lim, n)
    q = torch.distributions.Normal(0.0, 1.0).icdf(u)
    z = torch.zeros(n * n, model.config.z_dim)
    z1, z2 = torch.meshgrid(q, q.flip(0), indexing="xy")
    z[:, dims[0]], z[:, dims[1]] = z1.reshape(-1), z2.reshape(-1)
    return model.decode(z.to(_device(model))).mean.clamp(0, 1).cpu()


@torch.no_grad()
def latent_manifold(model, *, n: int = 15, lim: float = 0.95, ax=None, title: str | None = None, dims=(0, 1)):
    r"""Decoder means on an ``n x n`` grid of latents :math:`z = \Phi^{-1}(u)`, :math:`u\in[1-\text{lim}, \text{lim}]^2`
    (other latent coordinates 0). Rows run from high :math:`z_2` (top) to low, columns from low :math:`z_1` to high."""
    images = latent_grid_images(model, n=n, lim=lim, dims=dims)
    ax = new_axes(ax, (6, 6))
    image_grid(images, nrow=n, ax=ax, title=title)
    return ax


@torch.no_grad()
def latent_point(model, z: Tensor | tuple[float, float], x: Tensor, y: Tensor, *, axes=None, codes: Tensor | None = None):
    """Left: the latent scatter with a cross at ``z``; right: the decoder mean at ``z``. ``axes`` = two axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
    z = torch.as_tensor(z, dtype=torch.float32).reshape(1, -1)
    latent_scatter(model, x, y, ax=axes[0], s=4, legend=False)
    axes[0].plot(z[0, 0], z[0, 1], "kx", ms=14, mew=3)
    img = model.decode(z.to(_device(model))).mean.clamp(0, 1).cpu()
    image_grid(img, nrow=1, ax=axes[1], title=f"decoder mean at z = ({z[0, 0]:.2f}, {z[0, 1]:.2f})")
    return axes


@torch.no_grad()
def interpolation(model, x_a: Tensor, x_b: Tensor, *, steps: int = 10, ax=None):
    r"""Top row: decoder means along :math:`z_t = (1-t)\mu(x_a) + t\mu(x_b)`; bottom row: the pixel-space blend
    :math:`(1-t)x_a + t x_b` for comparison."""
    model.eval()
    za, zb = _codes(model, x_a[None]), _codes(model, x_b[None])
    t = torch.linspace(0, 1, steps)[:, None]
    latent = model.decode(((1 - t) * za + t * zb).to(_device(model))).mean.clamp(0, 1).cpu()
    pixel = (1 - t)[:, :, None, None] * x_a.cpu() + t[:, :, None, None] * x_b.cpu()
    ax = new_axes(ax, (10, 2.4))
    image_grid(torch.cat([latent, pixel]), nrow=steps, ax=ax)
    ax.set_ylabel("pixels      latent", fontsize=9)
    return ax


@torch.no_grad()
def reconstructions(model, x: Tensor, *, ax=None, title: str | None = None):
    """Top row: the images ``x``; bottom row: decoder means at :math:`z = \\mu(x)`."""
    model.eval()
    rec = model.reconstruct(x.to(_device(model))).clamp(0, 1).cpu()
    ax = new_axes(ax, (10, 2.4))
    image_grid(torch.cat([x.cpu(), rec]), nrow=len(x), ax=ax, title=title)
    return ax


@torch.no_grad()
def means_vs_samples(model, n: int = 8, *, generator: torch.Generator | None = None, axes=None, z: Tensor | None = None):
    r"""For the same latents :math:`z\sim p(z)` (the model's prior): the decoder means :math:`\mathbb E[x\mid z]` (top) and
    draws :math:`x\sim p(x\mid z)` (bottom), the two things "a sample" of a VAE can mean."""
    model.eval()
    if z is None:
        z = model.prior.sample(n, generator=generator)
    p = model.decode(z.to(_device(model)))
    ax = new_axes(axes, (10, 2.4))
    draws = p.sample(generator) if generator is not None and generator.device == p.mean.device else p.sample()
    image_grid(torch.cat([p.mean.clamp(0, 1).cpu(), draws.clamp(0, 1).cpu()]), nrow=len(z), ax=ax)
    ax.set_ylabel("sample     mean", fontsize=9)
    return ax


@torch.no_grad()
def decoder_std_map(model, x: Tensor, *, ax=None, title: str | None = None, vmin: float = 1e-3, vmax: float = 1.0):
    r"""The decoder's standard deviation :math:`\sigma_j(\mu(x))` averaged over the images ``x``, per pixel, on a log
    colour scale (Gaussian likelihood only)."""
    model.eval()
    p = model.decode(model.encode(x.to(_device(model))).mu)
    if not hasattr(p, "std"):
        raise ValueError("model: decoder_std_map needs a Gaussian likelihood (likelihood='gaussian')")
    std = p.std.mean(0)[0].cpu().clamp(min=vmin)  # (H, W)
    ax = new_axes(ax, (4, 3.6))
    im = ax.imshow(std.numpy(), norm=LogNorm(vmin=vmin, vmax=vmax), cmap="magma")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, label=r"decoder $\sigma$")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def latent_study(results: dict[int, dict[str, float]], *, ax=None):
    """Test -ELBO, reconstruction error and KL (nats per image) against the latent size, from
    ``{z_dim: {"loss": ..., "recon": ..., "kl": ...}}`` (e.g. ``history.test`` last values)."""
    ax = new_axes(ax, (5, 3.6))
    zs = sorted(results)
    ax.plot(zs, [results[z]["loss"] for z in zs], "o-", label=r"$-$ELBO (total)")
    ax.plot(zs, [-results[z]["recon"] for z in zs], "s--", label=r"reconstruction $-\mathbb{E}\log p(x|z)$")
    ax.plot(zs, [results[z]["kl"] for z in zs], "^--", label="KL(q || prior)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(zs)
    ax.set_xticklabels([str(z) for z in zs])
    ax.set_xlabel("latent size m")
    ax.set_ylabel("nats per test image")
    ax.legend(fontsize=8)
    return ax


def iwae_curve_plot(curve: dict[int, float], *, exact: float | None = None, ax=None, label: str = "IWAE bound $L_k$"):
    """Mean IWAE bound against k (log axis); ``exact`` draws the true log-likelihood if known."""
    ax = new_axes(ax, (5, 3.6))
    ks = sorted(curve)
    ax.plot(ks, [curve[k] for k in ks], "o-", label=label)
    if exact is not None:
        ax.axhline(exact, color="k", ls="--", lw=1, label=r"exact $\log p(x)$")
    ax.set_xscale("log")
    ax.set_xlabel("k (importance samples)")
    ax.set_ylabel("nats per image")
    ax.legend(fontsize=8)
    return ax
