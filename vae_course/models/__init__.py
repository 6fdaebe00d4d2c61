"""Models of the course: encoders, decoders and the VAE (chapter 5); later chapters add theirs here.

Every model implements ``loss(x, **loss_kwargs) -> LossTerms`` and is registered with
:func:`register_model`, so :func:`vae_course.train.fit` trains it and checkpoints rebuild it.
"""
from .base import *  # noqa: F401,F403
from .encoders import *  # noqa: F401,F403
from .decoders import *  # noqa: F401,F403
from .vae import *  # noqa: F401,F403
from .masked import *  # noqa: F401,F403
from .autoregressive_vae import *  # noqa: F401,F403
from .quantizer import *  # noqa: F401,F403
from .vqvae import *  # noqa: F401,F403
