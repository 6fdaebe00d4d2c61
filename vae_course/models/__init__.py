"""Models of the course: priors, encoders, decoders, the VAE skeleton and its variants, the VQ-VAE, and chapter 9's
flow-posterior, two-level (ladder) and conditional VAEs.

Every model implements ``loss(x, **loss_kwargs) -> LossTerms`` and is registered with
:func:`register_model`, so :func:`vae_course.train.fit` trains it and checkpoints rebuild it. Every VAE-like
model is a :class:`VAEBase` with an encoder, a decoder and a ``prior`` (:mod:`vae_course.models.priors`).
"""
from .base import *  # noqa: F401,F403
from .priors import *  # noqa: F401,F403
from .encoders import *  # noqa: F401,F403
from .decoders import *  # noqa: F401,F403
from .vae_base import *  # noqa: F401,F403
from .vae import *  # noqa: F401,F403
from .masked import *  # noqa: F401,F403
from .autoregressive_vae import *  # noqa: F401,F403
from .quantizer import *  # noqa: F401,F403
from .vqvae import *  # noqa: F401,F403
from .flow_vae import *  # noqa: F401,F403
from .hierarchical import *  # noqa: F401,F403
from .conditional import *  # noqa: F401,F403
