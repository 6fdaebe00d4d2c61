"""Exercise feedback: one submodule per chapter (``ch00``, ``ch01``, ...), one engine (``_core``).

In an exercise notebook a check cell reads ``vc.checks.ch00.check_entropy(entropy)``. The registry
(``registry``, re-exported here: ``vc.checks.EXERCISES``, ``vc.checks.exercises_for("05_vae.ipynb")``)
lists every exercise with its notebook, position, kind (function, build task or derivation), student function,
check and display name. Build tasks train the student's piece and judge the outcome (``outcomes`` and the
``build_chNN`` modules); ``set_strict(seed)`` adds randomized cases that are not in the student's copy.
"""
from ._core import (FAIL, MIME_TYPE, NOT_IMPLEMENTED, PASS, Case, CheckResult, Mistake, StudentError, call_student,
                    check_function, check_value, set_strict, strict_seed)
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
from .registry import EXERCISES, KINDS, NOTEBOOKS, Exercise, by_chapter, exercises_for  # noqa: E402,F401
