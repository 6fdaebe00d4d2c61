"""The record of a training run: per-epoch train and test terms, wall time, and why it stopped.

:func:`vae_course.train.fit` returns a :class:`History`; checkpoints store ``History.to_dict()``
(plain lists of floats), so a history survives ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch means of the loss terms (nats per example) and timings.

    ``train[name][e]``: mean of term ``name`` over the training batches of epoch ``e + 1``;
    ``test[name][i]``: on the test set after epoch ``test_epochs[i]`` (1-based);
    ``seconds[e]``: wall time of epoch ``e + 1`` (training and test); ``train_seconds[e]``: training only;
    ``samples[e]``: training examples processed; ``stopped``: why training ended early (a failure), or None;
    ``note``: why a healthy run ended before its last epoch (``fit(time_limit=...)``), or None.
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, list[float]] = field(default_factory=dict)
    test_epochs: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    stopped: str | None = None
    note: str | None = None

    @property
    def epochs(self) -> int:
        """Epochs completed."""
        return len(self.seconds)

    @property
    def samples_per_second(self) -> float:
        """Training throughput over the whole run (examples per second of training time)."""
        t = sum(self.train_seconds)
        return sum(self.samples) / t if t > 0 else float("nan")

    def append(self, split: str, terms: dict[str, float]) -> None:
        target = self.train if split == "train" else self.test
        for k, v in terms.items():
            target.setdefault(k, []).append(float(v))

    def last(self, term: str = "loss", split: str = "test") -> float:
        """The latest value of ``term`` on ``split`` ("train" or "test")."""
        if split not in ("train", "test"):
            raise ValueError(f"split: got {split!r}; need 'train' or 'test'")
        values = (self.train if split == "train" else self.test).get(term)
        if not values:
            known = sorted(self.train if split == "train" else self.test)
            raise ValueError(f"term: no {split} values of {term!r}; recorded terms: {known}")
        return values[-1]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists of floats): JSON- and ``weights_only``-safe."""
        d = {"train": {k: list(v) for k, v in self.train.items()}, "test": {k: list(v) for k, v in self.test.items()},
             "test_epochs": list(self.test_epochs), "seconds": list(self.seconds),
             "train_seconds": list(self.train_seconds), "samples": list(self.samples), "stopped": self.stopped}
        if self.note is not None:  # only when set, so that the stored histories keep their form
            d["note"] = self.note
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        known = {"train", "test", "test_epochs", "seconds", "train_seconds", "samples", "stopped", "note"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"history: unknown keys {sorted(unknown)}; expected {sorted(known)}")
        return cls(**{k: d[k] for k in known if k in d})

    def __repr__(self) -> str:
        parts = [f"epochs={self.epochs}"]
        for split, d in (("train", self.train), ("test", self.test)):
            if "loss" in d:
                parts.append(f"{split}_loss={d['loss'][-1]:.3f}")
        parts.append(f"samples/s={self.samples_per_second:.0f}")
        if self.stopped:
            parts.append("stopped early")
        return f"History({', '.join(parts)})"
