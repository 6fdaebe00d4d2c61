"""vae_course: the reference implementations behind the VAE Course book.

Chapters import it as ``import vae_course as vc`` and call ``vc.<module>.<function>``;
each module holds one concept and names the chapter that teaches it.
"""
__version__ = "0.1.0"

from . import utils, distributions, data, checks, plotting, widgets  # noqa: E402,F401
from . import generators  # noqa: E402,F401
from . import estimators  # noqa: E402,F401
from . import inference  # noqa: E402,F401
from . import information, discriminative  # noqa: E402,F401
from . import mixtures  # noqa: E402,F401
from . import models, history, checkpoint, train, evaluate, bench  # noqa: E402,F401
from . import collapse  # noqa: E402,F401
from . import vq  # noqa: E402,F401
from . import sprites, disentangle  # noqa: E402,F401
