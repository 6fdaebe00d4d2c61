"""Interactive ipywidgets demos, one submodule per chapter topic, re-exported here.

Each builder returns the widget (e.g. ``ipywidgets.interactive``); the book shows a static
figure of the same function next to it, since a saved widget cannot re-run Python.
"""
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
