"""Exercise feedback: one submodule per chapter (``ch00``, ``ch01``, ...), one engine (``_core``).

In an exercise notebook a check cell reads ``vc.checks.ch00.check_entropy(entropy)``. The registry
(``registry``, re-exported here: ``vc.checks.EXERCISES``, ``vc.checks.exercises_for("05_vae.ipynb")``)
lists every exercise with its notebook, position, student function, check and display name.
"""
from ._core import FAIL, MIME_TYPE, NOT_IMPLEMENTED, PASS, Case, CheckResult, Mistake, check_function, check_value
from . import ch01  # noqa: E402,F401
from . import ch00  # noqa: E402,F401
from . import ch04  # noqa: E402,F401
from . import ch03  # noqa: E402,F401
from . import ch02  # noqa: E402,F401
from . import ch05  # noqa: E402,F401
from . import ch08  # noqa: E402,F401
from . import ch07  # noqa: E402,F401
from . import ch06  # noqa: E402,F401
from . import ch09  # noqa: E402,F401
from .registry import EXERCISES, NOTEBOOKS, Exercise, by_chapter, exercises_for  # noqa: E402,F401
