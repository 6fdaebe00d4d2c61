
"""
from ._core import FAIL, MIME_TYPE, NOT_IMPLEMENTED, PASS, Case, CheckResult, Mistake, check_function, check_value
from . import ch01  # noqa: E402,F401
