"""Run a student's function with the package's own answer switched off, and notice changes to the package.

*Calling the answer instead of writing it*: an exercise that asks for ``entropy`` is not solved by
``return vc.information.entropy(p)``. :class:`Unavailable` replaces each named reference implementation
(``"information.entropy"``, or a method such as ``"linear_gaussian.LinearGaussianModel.posterior"``), while the
student's code runs, by a function that raises :class:`ReferenceUsed`: in every loaded ``vae_course`` module that
holds it (``vc.estimators.straight_through`` is re-exported from ``vc.estimators.categorical``), on its class for a
method, and in the namespaces given (the student's globals, for ``from vae_course.information import entropy``).
Everything is restored afterwards, also when the student's code raises.

:func:`snapshot` and :func:`changes` record and compare the attributes of every loaded ``vae_course`` module;
the grader uses them to notice a submission that patches a check while it is being checked.
"""
from __future__ import annotations

import functools
import importlib
import sys
from typing import Any, Callable, Iterable, Sequence

__all__ = ["ReferenceUsed", "Unavailable", "guarded", "snapshot", "changes", "restore"]

PACKAGE = "vae_course"
_MISSING = object()
_SELF = "__module__object__"


class ReferenceUsed(Exception):
    """Raised by a reference implementation that was switched off; ``name`` is its public name."""

    def __init__(self, name: str):
        super().__init__(f"{name} is switched off while your function is checked: write it yourself")
        self.name = name


def _resolve(name: str) -> tuple[Any, str, Any]:
    """``(owner, attribute, object)`` for ``"module.sub.function"`` or ``"module.Class.method"`` under vae_course."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join([PACKAGE, *parts[:cut]]))
        except ImportError:
            continue
        for attr in parts[cut:-1]:
            owner = getattr(owner, attr)
        return owner, parts[-1], getattr(owner, parts[-1])
    raise LookupError(f"forbidden: {name!r} is not a vae_course module attribute")


def _raiser(name: str) -> Callable:
    def switched_off(*args, **kwargs):
        Unavailable.used.add(name)
        raise ReferenceUsed(name)

    switched_off.__name__ = name.rsplit(".", 1)[-1]
    return switched_off


class Unavailable:
    """Context manager: the reference implementations ``names`` raise :class:`ReferenceUsed` inside it.

    ``used`` (a class attribute) collects the public names of the references that were called, so a student
    function that catches the exception is still found out."""

    used: set[str] = set()

    def __init__(self, names: Sequence[str], namespaces: Iterable[dict] = ()):
        self.names = tuple(names)
        self.namespaces = [ns for ns in namespaces if isinstance(ns, dict)]
        self._plan: list[tuple[Any, str, Any, Any]] | None = None

    def _prepare(self) -> list[tuple[Any, str, Any, Any]]:
        plan = []
        for name in self.names:
            owner, attr, obj = _resolve(name)
            stub = _raiser(f"vc.{name}")
            if isinstance(owner, type):  # a method: replace it on its class
                plan.append((owner, attr, owner.__dict__.get(attr, _MISSING), stub))
                continue
            for mod in list(sys.modules.values()):
                if getattr(mod, "__name__", "").split(".")[0] == PACKAGE:
                    for key, value in list(vars(mod).items()):
                        if value is obj:
                            plan.append((mod, key, value, stub))
            for ns in self.namespaces:
                for key, value in list(ns.items()):
                    if value is obj:
                        plan.append((ns, key, value, stub))
        return plan

    def __enter__(self) -> "Unavailable":
        if self._plan is None:
            self._plan = self._prepare()
        for owner, key, _, stub in self._plan:
            if isinstance(owner, dict):
                owner[key] = stub
            else:
                setattr(owner, key, stub)
        return self

    def __exit__(self, *exc) -> None:
        for owner, key, original, _ in reversed(self._plan or []):
            if isinstance(owner, dict):
                owner[key] = original
            elif original is _MISSING:  # an inherited method: drop the stub from the subclass again
                delattr(owner, key)
            else:
                setattr(owner, key, original)


def guarded(fn: Callable, names: Sequence[str]) -> Callable:
    """``fn`` wrapped so that every call runs with the references ``names`` switched off (:class:`Unavailable`)."""
    if not names:
        return fn
    guard = Unavailable(names, [getattr(fn, "__globals__", None)])

    @functools.wraps(fn)
    def call(*args, **kwargs):
        with guard:
            return fn(*args, **kwargs)

    return call


# ---------------------------------------------------------------- integrity of the package
def _named(name: str) -> Any:
    """A loaded module (``"torch.nn.functional"``) or an attribute path in one (``"torch.Tensor"``)."""
    if name in sys.modules:
        return sys.modules[name]
    head, _, attr = name.rpartition(".")
    return getattr(_named(head), attr)


def snapshot(extra: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """The attributes of every loaded ``vae_course`` module, and of the modules or classes named in ``extra``
    (``"torch"``, ``"torch.Tensor"``): name -> {attribute: object}, the owner itself under a private key."""
    names = [n for n, m in list(sys.modules.items()) if n.split(".")[0] == PACKAGE and m is not None]
    out = {}
    for name in [*names, *extra]:
        try:
            owner = _named(name)
        except (AttributeError, KeyError):
            continue
        out[name] = {**dict(vars(owner)), _SELF: owner}
    return out


def changes(before: dict[str, dict[str, Any]]) -> list[str]:
    """``owner.attribute`` of every attribute replaced or deleted since :func:`snapshot` ``before`` (a module
    replaced in ``sys.modules`` too)."""
    found = []
    for name, attrs in before.items():
        owner = attrs[_SELF]
        if name in sys.modules and sys.modules[name] is not owner:
            found.append(f"sys.modules[{name!r}]")
            continue
        now = vars(owner)
        for key, value in attrs.items():
            if key == _SELF or key in ("__dict__", "__weakref__", "__doc__", "__annotations__"):
                continue
            if key.startswith("__") and key.endswith("__") and isinstance(owner, type(sys)):
                continue  # a module's own dunders (__loader__, __spec__, ...) are no concern
            if now.get(key, _MISSING) is not value:
                found.append(f"{name}.{key}")
    return found


def restore(before: dict[str, dict[str, Any]]) -> None:
    """Put back every attribute recorded by :func:`snapshot` (and the modules in ``sys.modules``)."""
    for name, attrs in before.items():
        owner = attrs[_SELF]
        if name in sys.modules and sys.modules[name] is not owner:
            sys.modules[name] = owner
        for key, value in attrs.items():
            if key == _SELF or key in ("__dict__", "__weakref__"):
                continue
            if vars(owner).get(key, _MISSING) is not value:
                try:
                    setattr(owner, key, value)
                except (AttributeError, TypeError):
                    pass
