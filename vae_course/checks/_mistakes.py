"""Classic mistakes shared by sibling exercises, written once so that every sibling recognises all of them.

The reparameterised sample is asked in chapters 4 and 5, the Bernoulli negative ELBO in chapter 5 and, with a
weight beta on the KL, in chapter 6, and the KL to the standard normal in chapter 3 and inside both ELBOs. Each
builder returns :class:`~vae_course.checks.Mistake` objects in the signature of its exercise, so that a hint
given by one check (``"the KL is missing its factor 1/2"``) is given by its siblings too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._core import Mistake

__all__ = ["reparameterize_mistakes", "kl_mistakes", "elbo_mistakes", "kl_variants"]


def reparameterize_mistakes() -> list[Mistake]:
    """For ``reparameterize(mu, logvar, eps)``."""
    return [
        Mistake(lambda mu, logvar, eps: mu + torch.exp(logvar) * eps,
                "you multiplied eps by exp(logvar), which is the variance sigma^2; the standard deviation is "
                "exp(0.5 * logvar)."),
        Mistake(lambda mu, logvar, eps: mu + logvar * eps,
                "you multiplied eps by logvar itself; logvar is log(sigma^2), the standard deviation is exp(0.5 * logvar)."),
        Mistake(lambda mu, logvar, eps: mu + torch.exp(-0.5 * logvar) * eps,
                "you scaled eps by 1 / sigma (exp(-0.5 * logvar)); the scale is sigma = exp(+0.5 * logvar)."),
        Mistake(lambda mu, logvar, eps: (mu + torch.exp(0.5 * logvar)).expand_as(mu + eps),
                "you added sigma to mu but did not multiply it by eps: z = mu + sigma * eps."),
        Mistake(lambda mu, logvar, eps: mu + eps,
                "you returned mu + eps, whose variance is 1 whatever logvar is; scale eps by exp(0.5 * logvar)."),
        Mistake(lambda mu, logvar, eps: mu * eps + torch.exp(0.5 * logvar),
                "mu and sigma are swapped: the noise is scaled by sigma and shifted by mu, z = mu + sigma * eps."),
    ]


def kl_variants(mu, logvar, *, var_pow=1.0, sign=1.0, half=0.5, minus_one=1.0, mu_pow=2.0, reduce="sum"):
    """The KL to N(0, I) with one term changed: ``var_pow`` 0.5 uses sigma for sigma^2, ``sign`` -1 adds logvar, ..."""
    t = half * (torch.exp(var_pow * logvar) + (mu**2 if mu_pow == 2.0 else mu) - minus_one - sign * logvar)
    return t.sum(-1) if reduce == "sum" else t.mean(-1)


# each: (keyword changes of kl_variants, the hint)
KL_SLIPS = [
    ({"sign": -1.0}, "the sign of the log-variance term is flipped: inside the KL the log-variance enters with a minus, "
                     "KL = 0.5 * sum(sigma^2 + mu^2 - 1 - logvar); with +logvar it is no longer 0 at q = N(0, I) and it "
                     "rewards shrinking variances."),
    ({"half": 1.0}, "the KL is missing its factor 1/2: KL = 0.5 * sum(sigma^2 + mu^2 - 1 - logvar)."),
    ({"var_pow": 0.5}, "you used exp(logvar / 2), the standard deviation, where the variance exp(logvar) belongs in the KL."),
    ({"var_pow": 2.0}, "you used exp(logvar) as the standard deviation in the KL: sigma^2 = exp(logvar), not exp(logvar)^2."),
    ({"minus_one": 0.0}, "the -1 per latent dimension is missing from the KL: without it KL(N(0, I) || N(0, I)) is not 0."),
    ({"mu_pow": 1.0}, "the mean enters the KL squared: mu^2, not mu."),
    ({"reduce": "mean"}, "you averaged the KL over the latent dimensions; the KL of independent coordinates is their sum."),
]


def kl_mistakes() -> list[Mistake]:
    """For ``kl_normal_std(mu, logvar)``."""
    return [Mistake(lambda mu, logvar, kw=kw: kl_variants(mu, logvar, **kw), hint) for kw, hint in KL_SLIPS]


def _nll(x, logits, reduce="sum"):
    t = F.binary_cross_entropy_with_logits(logits, x, reduction="none")  # -log p per pixel
    return t.sum(-1) if reduce == "sum" else t.mean(-1)


def elbo_mistakes(with_beta: bool) -> list[Mistake]:
    """For ``negative_elbo(x, x_logits, mu, logvar)`` (``with_beta=False``) and
    ``negative_beta_elbo(x, x_logits, mu, logvar, beta)`` (``with_beta=True``): the same slips in both."""
    kl = kl_variants
    slips = [
        (lambda x, l, mu, lv, b: _nll(x, l) - b * kl(mu, lv),
         "the KL has the wrong sign: the NEGATIVE ELBO is -log p(x|z) + KL (minimising it keeps q(z|x) close to the prior)."),
        (lambda x, l, mu, lv, b: _nll(x, l, "mean") + b * kl(mu, lv),
         "you averaged the reconstruction term over the pixels; log p(x|z) of an image is the SUM over its pixels "
         "(independent Bernoullis multiply). With a mean the KL outweighs the image about D-fold."),
        (lambda x, l, mu, lv, b: _nll(x, l, "mean") + b * kl(mu, lv, reduce="mean"),
         "you averaged over pixels and latent dimensions; both terms are sums over dimensions, one number per image."),
        (lambda x, l, mu, lv, b: _nll(x, l),
         "the KL term is missing; the negative ELBO is the reconstruction error PLUS the KL to N(0, I)."),
        (lambda x, l, mu, lv, b: -_nll(x, l) + b * kl(mu, lv),
         "the reconstruction term has the wrong sign: the negative ELBO contains -log p(x|z), which is >= 0."),
        (lambda x, l, mu, lv, b: _nll(x, torch.sigmoid(l)) + b * kl(mu, lv),
         "you passed sigmoid(logits), probabilities, where logits belong (the sigmoid applied twice)."),
    ]
    slips += [(lambda x, l, mu, lv, b, kw=kw: _nll(x, l) + b * kl(mu, lv, **kw), hint) for kw, hint in KL_SLIPS]
    if with_beta:
        slips += [
            (lambda x, l, mu, lv, b: b * _nll(x, l) + kl(mu, lv),
             "beta multiplies the reconstruction term. In the beta-ELBO, beta weights the KL (the rate) only: "
             "-log p(x|z) + beta * KL."),
            (lambda x, l, mu, lv, b: b * (_nll(x, l) + kl(mu, lv)),
             "beta multiplies both terms; that only rescales the loss (like a learning rate) and changes no trade-off. "
             "Weight the KL alone: -log p(x|z) + beta * KL."),
            (lambda x, l, mu, lv, b: _nll(x, l) / b + kl(mu, lv),
             "you divided the reconstruction by beta. Up to the overall scale that is the same trade-off, but it is not "
             "the beta-ELBO's value: -log p(x|z) + beta * KL."),
            (lambda x, l, mu, lv, b: _nll(x, l) + kl(mu, lv) / b,
             "the KL is divided by beta; the beta-ELBO multiplies it: -log p(x|z) + beta * KL."),
            (lambda x, l, mu, lv, b: _nll(x, l) + kl(mu, lv),
             "beta is missing: the KL term must be multiplied by beta."),
        ]
        return [Mistake(fn, hint) for fn, hint in slips]
    return [Mistake(lambda x, l, mu, lv, fn=fn: fn(x, l, mu, lv, 1.0), hint) for fn, hint in slips]
