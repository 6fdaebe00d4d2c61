"""The build tasks (chapters 2-8), trained for real: the official solution passes inside its band, correct
variants (another architecture, another optimiser, another remedy) pass, and the classic broken versions fail
with the diagnosis that names their mistake. Each training run takes 1-5 s of CPU; the reference runs are computed
once per process. The fast part of the contract (stubs, crashes, None): tests/test_checks_contract.py."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vae_course as vc
from vae_course.checks import EXERCISES, FAIL, PASS, ch02, ch03, ch04, ch05, ch06, ch07, ch08

from _solutions import solution

BUILDS = [e for e in EXERCISES if e.kind == "build"]


def _passes(result):
    assert result.status == PASS, result.message
    assert result.measured is not None and result.band
    return result


def _fails(result, *phrases):
    assert result.status == FAIL, result.message
    for phrase in phrases:
        assert phrase in result.message, result.message
    return result


@pytest.mark.parametrize("exercise", BUILDS, ids=lambda e: e.id)
def test_the_official_solution_passes_inside_its_band(exercise):
    result = _passes(exercise.check(solution(exercise)))
    assert result.exercise == exercise.name and "inside the band" in result.message


# ---------------------------------------------------------------- chapter 2: a generator
def _generator(net, sigma):
    def build_generator():
        return vc.generators.ProbabilisticGenerator(1, 1, covariance="isotropic", sigma=sigma, net=net())
    return build_generator


def test_ch02_the_books_mlp_passes_and_a_linear_g_or_a_wide_noise_fails():
    _passes(ch02.check_generator_build(lambda: vc.generators.ProbabilisticGenerator(
        1, 1, covariance="isotropic", sigma=0.15, hidden=(32, 32))))
    _fails(ch02.check_generator_build(_generator(lambda: nn.Sequential(nn.Linear(1, 32), nn.Linear(32, 1)), 0.15)),
           "no better than one Gaussian", "nonlinearity")
    _fails(ch02.check_generator_build(_generator(lambda: nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1)), 1.0)),
           "noise s = 1")


def test_ch02_a_generator_of_the_wrong_shape_fails_before_training():
    _fails(ch02.check_generator_build(lambda: vc.generators.ProbabilisticGenerator(2, 1)), "z_dim=2", "1-D latent")


# ---------------------------------------------------------------- chapter 3: the per-sample loop
def _elbo_mc(x, W, b, sigma, mu_q, logvar_q, eps):
    z = mu_q + torch.exp(0.5 * logvar_q) * eps
    mean = z @ W.T + b
    ll = -0.5 * x.shape[-1] * math.log(2 * math.pi * sigma**2) - ((x - mean) ** 2).sum(-1) / (2 * sigma**2)
    return ll.mean(0) - 0.5 * (torch.exp(logvar_q) + mu_q**2 - 1 - logvar_q).sum(-1)


def _loop(optimiser="adam", lr=0.1, steps=400, samples=16, train_logvar=True, with_kl=True):
    def fit_local_q(x, W, b, sigma):
        n, m = x.shape[0], W.shape[1]
        mu = torch.zeros(n, m, dtype=x.dtype, requires_grad=True)
        logvar = torch.zeros(n, m, dtype=x.dtype, requires_grad=train_logvar)
        params = [mu, logvar] if train_logvar else [mu]
        opt = torch.optim.Adam(params, lr=lr) if optimiser == "adam" else torch.optim.SGD(params, lr=lr, momentum=0.9)
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * (1 - step / steps)
            elbo = _elbo_mc(x, W, b, sigma, mu, logvar, torch.randn(samples, n, m, dtype=x.dtype))
            if not with_kl:
                elbo = elbo + 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(-1)
            opt.zero_grad()
            (-elbo.sum()).backward()
            opt.step()
        return mu.detach(), logvar.detach()
    return fit_local_q


def test_ch03_sgd_with_momentum_passes_and_a_frozen_variance_or_a_missing_kl_fails():
    _passes(ch03.check_local_q_build(_loop("sgd", lr=0.01, steps=600, samples=8)))
    _fails(ch03.check_local_q_build(_loop(train_logvar=False)), "variances are far too large", "optimised at all")
    _fails(ch03.check_local_q_build(_loop(with_kl=False)), "variances are far too small", "KL term")


# ---------------------------------------------------------------- chapter 4: a baseline
def _with_baseline(baseline):
    def score_gradient_baseline(f, z, mu, logvar):
        return ((f - baseline(f))[:, None] * (z - mu) * torch.exp(-logvar)).mean(0)
    return score_gradient_baseline


def test_ch04_the_rescaled_batch_mean_passes_and_the_plain_batch_mean_or_no_baseline_fails():
    mean = _with_baseline(lambda f: f.mean())
    _passes(ch04.check_baseline_build(lambda f, z, mu, lv: mean(f, z, mu, lv) * len(f) / (len(f) - 1)))
    _fails(ch04.check_baseline_build(mean), "biased", "(n - 1)/n")
    _fails(ch04.check_baseline_build(_with_baseline(lambda f: 0 * f)), "outside the band", "removes little")
    _fails(ch04.check_baseline_build(_with_baseline(lambda f: f)), "always 0")


# ---------------------------------------------------------------- chapter 5: a VAE of your own
def _vae(hidden=128, z_dim=4, act=nn.Tanh, with_kl=True, pixel_mean=False):
    class TinyVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), act(), nn.Linear(hidden, 2 * z_dim))
            self.dec = nn.Sequential(nn.Linear(z_dim, hidden), act(), nn.Linear(hidden, 64))

        def encode(self, x):
            return self.enc(x).chunk(2, -1)

        def decode(self, z):
            return self.dec(z)

        def loss(self, x):
            mu, lv = self.encode(x)
            logits = self.decode(mu + torch.exp(0.5 * lv) * torch.randn_like(mu))
            recon = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none")
            recon = recon.mean(-1) if pixel_mean else recon.sum(-1)
            kl = 0.5 * (lv.exp() + mu**2 - 1 - lv).sum(-1) if with_kl else 0.0
            loss = (recon + kl).mean()
            return vc.models.LossTerms(loss, {"loss": loss})
    return TinyVAE


def test_ch05_another_architecture_passes_and_a_missing_kl_or_a_pixel_mean_fails():
    _passes(ch05.check_vae_build(_vae(hidden=256, z_dim=8, act=nn.ReLU)))
    _fails(ch05.check_vae_build(_vae(with_kl=False)), "not the negative ELBO", "KL missing")
    _fails(ch05.check_vae_build(_vae(pixel_mean=True)), "ignores z", "SUM over the 64 pixels")


def test_ch05_the_packages_vae_is_refused_and_a_wrong_decoder_shape_fails_before_training():
    _fails(ch05.check_vae_build(lambda: vc.models.VAE(x_shape=(1, 8, 8), z_dim=4)), "one of the package's VAEs")
    bad = _vae()

    class WrongDecoder(bad):
        def decode(self, z):
            return super().decode(z)[:, :63]

    _fails(ch05.check_vae_build(WrongDecoder), "need logits (8, 64)")


# ---------------------------------------------------------------- chapter 6: capacity control
def test_ch06_a_squared_penalty_passes_and_a_rate_term_without_abs_or_without_c_fails():
    _passes(ch06.check_capacity_build(lambda recon, kl, c, gamma: -recon.mean() + gamma * (kl.mean() - c) ** 2))
    _fails(ch06.check_capacity_build(lambda recon, kl, c, gamma: -recon.mean() + gamma * (kl.mean() - c)),
           "ignores z", "absolute value")
    _fails(ch06.check_capacity_build(lambda recon, kl, c, gamma: -recon.mean() + (kl.mean() - c).abs()),
           "stays above the capacity")


# ---------------------------------------------------------------- chapter 7: cure the collapse
def test_ch07_beta_below_one_passes_and_the_plain_elbo_or_beta_zero_fails():
    _passes(ch07.check_remedy_build(lambda recon, kl, progress: -recon.mean() + 0.2 * kl.sum(-1).mean()))
    _fails(ch07.check_remedy_build(lambda recon, kl, progress: -recon.mean() + kl.sum(-1).mean()),
           "ignores z", "posterior collapse")
    _fails(ch07.check_remedy_build(lambda recon, kl, progress: -recon.mean() + 0.0 * kl.sum()),
           "below the collapsed reference run", "price of the bound")


def test_ch07_a_warm_up_ending_at_beta_one_collapses_again():
    warm = lambda recon, kl, progress: -recon.mean() + min(1.0, progress / 0.66) * kl.sum(-1).mean()  # noqa: E731
    _fails(ch07.check_remedy_build(warm), "ignores z", "warm-up")


# ---------------------------------------------------------------- chapter 8: the EMA codebook
def _ema(normalise=True, restart=True):
    def ema_codebook_update(codebook, cluster_size, embed_sum, z, indices, decay, dead):
        one_hot = F.one_hot(indices, codebook.shape[0]).to(z.dtype)
        cluster_size = decay * cluster_size + (1 - decay) * one_hot.sum(0)
        embed_sum = decay * embed_sum + (1 - decay) * one_hot.T @ z
        new = embed_sum / cluster_size.clamp_min(1e-12)[:, None] if normalise else embed_sum
        codebook = torch.where((cluster_size > 0)[:, None], new, codebook)
        if restart and bool(dead.any()):
            rows = z[torch.randint(len(z), (int(dead.sum()),))]
            codebook, cluster_size, embed_sum = codebook.clone(), cluster_size.clone(), embed_sum.clone()
            codebook[dead], cluster_size[dead], embed_sum[dead] = rows, 1.0, rows
        return codebook, cluster_size, embed_sum
    return ema_codebook_update


def test_ch08_a_codebook_of_running_sums_fails_and_so_does_a_missing_restart():
    _fails(ch08.check_ema_build(_ema(normalise=False)), "running SUMS", "m_k / N_k")
    _fails(ch08.check_ema_build(_ema(restart=False)), "flagged dead", "randomly chosen encoder output")


# ---------------------------------------------------------------- NaN and errors during training
def test_a_loss_that_turns_nan_during_training_is_diagnosed():
    def capacity_loss(recon, kl, c, gamma):  # finite on the probe's 6 images, NaN on a training batch of 128
        bad = torch.sqrt(torch.tensor(-1.0)) if len(recon) == 128 else 0.0
        return -recon.mean() + gamma * (kl.mean() - c).abs() + bad

    _fails(ch06.check_capacity_build(capacity_loss), "NaN", "a variance reached 0", "log of 0")


def test_an_error_at_a_later_training_step_says_where():
    calls = []

    def capacity_loss(recon, kl, c, gamma):
        calls.append(1)
        if len(calls) == 5:
            raise ZeroDivisionError("division by zero")
        return -recon.mean() + gamma * (kl.mean() - c).abs()

    _fails(ch06.check_capacity_build(capacity_loss), "at training step", "ZeroDivisionError")
