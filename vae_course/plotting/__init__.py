"""Figures for the book: every function takes ``ax=None`` (or a figure) and returns what it drew on.

One submodule per topic; their public names are re-exported here, so chapters write
``vc.plotting.image_grid(...)``.
"""
from .common import *  # noqa: F401,F403
from .information import *  # noqa: F401,F403
from .generators import *  # noqa: F401,F403
from .inference import *  # noqa: F401,F403
from .estimators import *  # noqa: F401,F403
from .mixtures import *  # noqa: F401,F403
from .vae import *  # noqa: F401,F403
from .collapse import *  # noqa: F401,F403
from .vq import *  # noqa: F401,F403
from .disentangle import *  # noqa: F401,F403
from .beyond import *  # noqa: F401,F403
from .families import *  # noqa: F401,F403
from . import diagrams  # noqa: F401  (vc.plotting.diagrams: the schematic figures, written by `vae-course diagrams`)
from .stats import *  # noqa: F401,F403
