"""One registry of every exercise: which notebook asks for it, in which order, and which check grades it.

An exercise notebook ``NN_topic.ipynb`` asks for a few functions; after each one a check cell calls
``vc.checks.chNN.check_<function>(<function>)``. :data:`EXERCISES` lists them all, chapter by chapter
and in notebook order, so the grader (:mod:`vae_course.grade`) and the tests know every exercise
without reading a notebook::

    >>> [e.function for e in exercises_for("05_vae.ipynb")]
    ['reparameterize', 'negative_elbo', 'iwae_bound', 'TinyVAE', 'bits_per_dim_answer']

An exercise is of one of three kinds (:data:`KINDS`):

* ``"function"``: the student writes a function; the check compares it with the reference on many inputs;
* ``"build"``: the student writes part of a model or of a training procedure (a function or a class); the check
  trains it and judges the outcome against a band (:mod:`vae_course.checks.outcomes`);
* ``"value"``: the student derives a number by hand and assigns it to a variable; the check compares it with a
  tolerance (:func:`~vae_course.checks.check_value`).

Every check takes exactly one argument: the student's function, class, or number (``function`` names it). The
display name an entry carries is the one its check reports (``CheckResult.exercise``); it is written once, in the
``EXERCISE_NAMES`` dict of the check's ``chNN`` module, and read from there.

To add an exercise: write its ``check_<function>`` and its ``EXERCISE_NAMES`` line in ``chNN.py``,
add it below, and put its check cell in ``solutions/NN_topic.ipynb`` in the same order
(``tests/test_checks_registry.py`` holds the two together).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from . import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10
from ._core import CheckResult

__all__ = ["Exercise", "EXERCISES", "NOTEBOOKS", "KINDS", "exercises_for", "by_chapter"]

KINDS = ("function", "build", "value")


@dataclass(frozen=True)
class Exercise:
    """One exercise: the student writes ``function`` in ``notebook`` and ``check(function)`` grades it."""

    chapter: int                              # the chapter number; the notebook's name starts with it, "05_"
    notebook: str                             # the notebook's file name, e.g. "05_vae.ipynb"
    number: int                               # 1-based position among the notebook's exercises
    function: str                             # what the check takes: a function, class or variable name
    check: Callable[[Callable], CheckResult]  # e.g. vc.checks.ch05.check_reparameterize
    name: str                                 # the display name the check reports (CheckResult.exercise)
    kind: str = "function"                    # "function", "build" (trained, judged by its outcome) or "value"

    def __post_init__(self) -> None:
        for field, kind in (("chapter", int), ("notebook", str), ("number", int), ("function", str), ("name", str),
                            ("kind", str)):
            value = getattr(self, field)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise TypeError(f"{field}: got {type(value).__name__} {value!r}; need a {kind.__name__}")
        if self.chapter < 0:
            raise ValueError(f"chapter: got {self.chapter}; need a chapter number >= 0")
        if not self.notebook.endswith(".ipynb") or os.path.basename(self.notebook) != self.notebook:
            raise ValueError(f"notebook: got {self.notebook!r}; need a file name ending in .ipynb, e.g. '05_vae.ipynb'")
        if self.number < 1:
            raise ValueError(f"number: got {self.number}; need the exercise's 1-based position in its notebook")
        if not self.function.isidentifier():
            raise ValueError(f"function: got {self.function!r}; need the name of a Python function")
        if not callable(self.check):
            raise TypeError(f"check: got {type(self.check).__name__}; need the check function")
        if not self.name:
            raise ValueError("name: got ''; need the display name the check reports")
        if self.kind not in KINDS:
            raise ValueError(f"kind: got {self.kind!r}; need one of {KINDS}")

    @property
    def id(self) -> str:
        """A short unique label, e.g. ``"ch05-ex1-reparameterize"`` (test ids, messages)."""
        return f"ch{self.chapter:02d}-ex{self.number}-{self.function}"


def _chapter(module: ModuleType, notebook: str, *exercises: tuple, ) -> tuple[Exercise, ...]:
    """The entries of one notebook: ``(function, check)`` or ``(function, check, kind)`` in notebook order,
    numbered from 1.

    The chapter is the module's (``chNN``); the display name is ``module.EXERCISE_NAMES[check.__name__]``.
    """
    chapter = int(module.__name__.rsplit(".ch", 1)[1])
    return tuple(Exercise(chapter, notebook, number, entry[0], entry[1], module.EXERCISE_NAMES[entry[1].__name__],
                          *entry[2:])
                 for number, entry in enumerate(exercises, start=1))


EXERCISES: tuple[Exercise, ...] = (
    *_chapter(ch00, "00_preliminaries.ipynb",
              ("entropy", ch00.check_entropy),
              ("kl_categorical", ch00.check_kl_categorical),
              ("bernoulli_log_likelihood", ch00.check_bernoulli_log_likelihood),
              ("code_length_nats", ch00.check_image_code_length, "value")),
    *_chapter(ch01, "01_probabilistic_generators.ipynb",
              ("sample_mvn", ch01.check_sample_mvn),
              ("log_normal_diag", ch01.check_log_normal_diag),
              ("log_normal_full", ch01.check_log_normal_full),
              ("log_density_at_mean", ch01.check_density_at_mean, "value")),
    *_chapter(ch02, "02_mixture_universality.ipynb",
              ("threshold_density", ch02.check_threshold_density),
              ("log_marginal_from_samples", ch02.check_log_marginal_from_samples),
              ("effective_sample_size", ch02.check_effective_sample_size),
              ("gaussian_mle_loglik", ch02.check_gaussian_mle_loglik),
              ("build_generator", ch02.check_generator_build, "build"),
              ("best_gaussian_loglik", ch02.check_mixture_gaussian_fit, "value")),
    *_chapter(ch03, "03_elbo.ipynb",
              ("kl_normal_std", ch03.check_kl_normal_std),
              ("elbo_mc", ch03.check_elbo_mc),
              ("log_marginal", ch03.check_log_marginal),
              ("fit_local_q", ch03.check_local_q_build, "build"),
              ("gap_nats", ch03.check_diagonal_gap, "value")),
    *_chapter(ch04, "04_gradient_estimators.ipynb",
              ("reparameterize", ch04.check_reparameterize),
              ("score_gradient_mu", ch04.check_score_gradient_mu),
              ("straight_through", ch04.check_straight_through),
              ("score_gradient_baseline", ch04.check_baseline_build, "build"),
              ("score_variance", ch04.check_score_variance, "value")),
    *_chapter(ch05, "05_vae.ipynb",
              ("reparameterize", ch05.check_reparameterize),
              ("negative_elbo", ch05.check_negative_elbo),
              ("iwae_bound", ch05.check_iwae_bound),
              ("TinyVAE", ch05.check_vae_build, "build"),
              ("bits_per_dim_answer", ch05.check_bits_per_dim, "value")),
    *_chapter(ch06, "06_beta_vae.ipynb",
              ("negative_beta_elbo", ch06.check_negative_beta_elbo),
              ("mutual_information", ch06.check_mutual_information),
              ("mig", ch06.check_mig),
              ("capacity_loss", ch06.check_capacity_build, "build"),
              ("total_correlation_nats", ch06.check_total_correlation, "value")),
    *_chapter(ch07, "07_posterior_collapse.ipynb",
              ("unit_activity", ch07.check_unit_activity),
              ("free_bits_kl", ch07.check_free_bits_kl),
              ("warmup_beta", ch07.check_warmup_beta),
              ("remedy_loss", ch07.check_remedy_build, "build"),
              ("unit_kl_nats", ch07.check_unit_kl, "value")),
    *_chapter(ch08, "08_vq_vae.ipynb",
              ("quantize", ch08.check_quantize),
              ("vq_losses", ch08.check_vq_losses),
              ("causal_mask", ch08.check_causal_mask),
              ("perplexity", ch08.check_perplexity),
              ("ema_codebook_update", ch08.check_ema_build, "build"),
              ("vq_kl_nats", ch08.check_code_length, "value")),
    *_chapter(ch09, "09_beyond_vae.ipynb",
              ("planar_log_det", ch09.check_planar_log_det),
              ("flow_elbo", ch09.check_flow_elbo),
              ("mean_field_gap", ch09.check_mean_field_gap),
              ("vamp_log_prob", ch09.check_vamp_log_prob),
              ("planar_log_det_nats", ch09.check_planar_point, "value")),
    *_chapter(ch10, "10_model_families.ipynb",
              ("finite_memory_mask", ch10.check_finite_memory_mask),
              ("coupling_log_det", ch10.check_coupling_log_det),
              ("dequantized_bits_per_dim", ch10.check_dequantized_bits_per_dim),
              ("two_layer_log_density", ch10.check_two_layer_log_density),
              ("bits_per_dim_2x2", ch10.check_image_bits_per_dim, "value")),
)
"""Every exercise of chapters 0-9 and of appendix A (chapter 10), chapter by chapter and in notebook order."""

NOTEBOOKS: tuple[str, ...] = tuple(dict.fromkeys(e.notebook for e in EXERCISES))
"""The file names of the notebooks that have exercises, in chapter order."""


def exercises_for(notebook: str | os.PathLike) -> tuple[Exercise, ...]:
    """The exercises of one notebook, in notebook order; empty if it has none registered.

    Args:
        notebook: the notebook's file name (``"05_vae.ipynb"``) or a path to it; only the file
            name counts, so ``solutions/05_vae.ipynb`` and ``exercises/05_vae.ipynb`` agree.
    """
    if not isinstance(notebook, (str, os.PathLike)):
        raise TypeError(f"notebook: got {type(notebook).__name__}; need a file name or path such as '05_vae.ipynb'")
    name = os.path.basename(os.fspath(notebook))
    return tuple(e for e in EXERCISES if e.notebook == name)


def by_chapter(chapter: int) -> tuple[Exercise, ...]:
    """The exercises of chapter ``chapter`` (an int such as 5), in notebook order."""
    if not isinstance(chapter, int) or isinstance(chapter, bool):
        raise TypeError(f"chapter: got {type(chapter).__name__}; need an int such as 5")
    found = tuple(e for e in EXERCISES if e.chapter == chapter)
    if not found:
        chapters = ", ".join(str(c) for c in sorted({e.chapter for e in EXERCISES}))
        raise ValueError(f"chapter: got {chapter}; the chapters with exercises are {chapters}")
    return found
