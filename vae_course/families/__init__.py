r"""Appendix A: the other families of generative models, worked on the same data as the VAE.

Lecture 004's survey table compares four families on training stability, likelihood and sampling speed. This
subpackage holds the likelihood-based ones that the rest of the course does not build, each a model of the fit
protocol (:mod:`vae_course.models.base`: ``loss(x) -> LossTerms``, registered so checkpoints rebuild it) with
``log_prob(x)`` and ``sample(n, generator=...)``:

* :mod:`vae_course.families.autoregressive`: a finite-memory model (:class:`FiniteMemoryAR`) and a GRU model
  (:class:`GRUAR`) of binary images, exact likelihood, sequential sampling;
* :mod:`vae_course.families.coupling_flow`: an affine-coupling flow (:class:`CouplingFlow`) with permutation
  layers, exact density on continuous data and a dequantisation bound on discrete images;
* :mod:`vae_course.families.compare`: the side-by-side measurement (test nats per image, training and sampling
  time) against the VAE's IWAE bound.

The submodules' public names are re-exported here: the appendix writes ``vc.families.GRUAR``.

References: Tomczak (2022), chapters 2 and 3; Dinh, Sohl-Dickstein & Bengio (2017); Cho et al. (2014);
Theis, van den Oord & Bethge (2016).
"""
from .autoregressive import *  # noqa: F401,F403
from .coupling_flow import *  # noqa: F401,F403
from .compare import *  # noqa: F401,F403
