r"""Monte-Carlo estimators of :math:`\nabla_w\, \mathbb E_{z\sim Q_w}[F(z)]` (chapter 4).

The encoder of a VAE needs the gradient of an expectation whose *distribution* depends on the
parameters. Three answers, for a diagonal Gaussian :math:`Q_w=\mathcal N(\mu,\mathrm{diag}(e^{\log\sigma^2}))`:

* :func:`naive_gradient`: sample :math:`z`, treat it as a constant, differentiate :math:`F(z)`.
  The result is exactly zero for :math:`(\mu,\log\sigma^2)`: wrong.
* :func:`score_function_gradient` (score function, likelihood ratio, REINFORCE; Williams 1992;
  the slides call it "importance sampling", a misnomer):
  :math:`\nabla_w \mathbb E[F] = \mathbb E\big[(F(z)-b)\,\nabla_w \log Q_w(z)\big]` for any
  baseline :math:`b` that does not depend on :math:`z`.
* :func:`reparam_gradient` (Kingma & Welling 2014; Rezende et al. 2014): write
  :math:`z=\mu+\sigma\odot\varepsilon`, :math:`\varepsilon\sim\mathcal N(0,I)`, and differentiate
  through :math:`F`: :math:`\nabla_w \mathbb E[F] = \mathbb E_\varepsilon[\nabla_w F(\mu+\sigma\odot\varepsilon)]`.

For a categorical latent :math:`z\sim\mathrm{Cat}(\mathrm{softmax}(\theta))` (one-hot) the
reparameterisation does not exist; :func:`score_function_gradient_categorical` still works, and
:func:`straight_through_gradient_categorical` (Bengio et al. 2013; with Gumbel noise, Jang et al.
2017, Maddison et al. 2017) trades a bias for a low variance. :func:`straight_through` is the
one-line trick reused by the VQ-VAE chapter.

Every estimator takes ``F``: a function from ``(n, d)`` samples to ``(n,)`` values that acts on
each row separately, and returns named gradients, averaged over the ``n`` samples or, with
``per_sample=True``, one per sample (:mod:`vae_course.estimators.core`). The Gaussian estimators are in
:mod:`vae_course.estimators.gaussian`, the categorical ones in :mod:`vae_course.estimators.categorical`, the
repeated-run statistics, test problems and comparisons of the chapter in :mod:`vae_course.estimators.study`;
their public names are re-exported here (``vc.estimators.reparam_gradient``). Reference: Mohamed et al. (2020), *Monte Carlo Gradient
Estimation in Machine Learning*, JMLR 21(132).
"""
from .core import *  # noqa: F401,F403
from .gaussian import *  # noqa: F401,F403
from .categorical import *  # noqa: F401,F403
from .study import *  # noqa: F401,F403
