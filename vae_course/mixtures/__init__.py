r"""Chapter 2: latent-variable generators are (infinite) Gaussian mixtures.

A probabilistic generator draws :math:`z \sim P(z)`, computes :math:`\mu = G_\theta(z)` and samples
:math:`x \sim \mathcal N(\mu, s^2 I)`. Its model density is the marginal

.. math:: P_\theta(x) = \int \mathcal N\big(x;\, G_\theta(z),\, s^2 I\big)\, P(z)\, dz
          = \mathbb E_{z\sim P(z)}\big[p_\theta(x \mid z)\big],

a mixture of Gaussians with one component per value of :math:`z`. This module holds

* the **threshold generator** (:class:`ThresholdGenerator`): :math:`z\sim U[0,1]`,
  :math:`\mu = \mathbb 1[z\ge\theta]`, whose marginal is exactly
  :math:`\theta\,\mathcal N(x;0,1) + (1-\theta)\,\mathcal N(x;1,1)`;
* finite mixtures (:func:`mixture_density`, :func:`mixture_log_density`), in :mod:`vae_course.mixtures.finite`;
* the marginal of a generator by **quadrature** over a latent grid (:func:`latent_grid`,
  :func:`log_marginal_quadrature`) or by **Monte Carlo** (:func:`log_marginal_mc`), both as a
  weighted log-sum-exp, :math:`\log P_\theta(x) \approx \operatorname{logsumexp}_k\big(\log w_k +
  \log p_\theta(x\mid z_k)\big)`, with :math:`w_k = 1/K` for Monte Carlo; maximum-likelihood fitting of
  :math:`G_\theta` through that marginal (:func:`fit_marginal_likelihood`) and the closed-form best single
  Gaussian (:func:`fit_single_gaussian`), in :mod:`vae_course.mixtures.marginal`;
* the **naive estimator** :math:`\hat P(x) = \frac1K\sum_k p(x\mid z_k)`, :math:`z_k\sim P(z)`, on a
  linear-Gaussian model whose :math:`P(x)` is exact (:func:`naive_marginal_estimate`,
  :func:`effective_sample_size`, :func:`naive_estimator_study`), to measure how it collapses as the latent
  dimension grows, in :mod:`vae_course.mixtures.naive`.

The three submodules' public names are re-exported here: chapters write ``vc.mixtures.threshold_density``.

References: Bishop (2006), sec. 2.3.9, 9.2 and 12.2; Tomczak (2022), ch. 4; Kingma & Welling (2014),
sec. 2; Owen (2013), ch. 9 (effective sample size).
"""
from .finite import *  # noqa: F401,F403
from .marginal import *  # noqa: F401,F403
from .naive import *  # noqa: F401,F403
