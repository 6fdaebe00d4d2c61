r"""One training loop for every model of the course: :func:`fit`.

Train_VAE of the lecture, written for speed on a laptop CPU and unchanged on a GPU:

1. the whole data set is one tensor, moved to the device once; a batch is an index into it
   (no per-image Python work, no DataLoader);
2. each step draws a batch, optionally binarises it afresh (:math:`x\sim\mathrm{Bern}(x_{grey})`,
   "dynamic binarisation"), computes ``model.loss(x, **loss_kwargs)`` (the negative ELBO for a
   VAE: one reparameterised :math:`z` per example, gradients for encoder and decoder in one
   backward pass) and takes an Adam step (fused or multi-tensor kernels where available);
3. after each epoch the mean terms on the training batches and on the test set go into a
   :class:`~vae_course.history.History`.

Any model plugs in by implementing ``loss(x, **kwargs) -> LossTerms``
(:mod:`vae_course.models.base`). Schedules (KL annealing, free bits, a beta ramp) plug in as
``loss_kwargs=callable(epoch, step, n_steps) -> dict`` (:mod:`vae_course.objectives`).

:func:`fit` reads as the algorithm; the bookkeeping lives in :class:`_Run` (device, data, optimiser,
progress bar, history, checkpoints). Safety: a non-finite loss stops training with a warning that says where
and why, and restores the weights saved at the start of that epoch (checked finite when they were saved). A finite
loss can still have a NaN or inf gradient that poisons the weights inside the optimiser step, so the weights are
checked again at the end of every epoch, before the epoch is recorded or its checkpoint written; non-finite ones
are replaced by that epoch's starting weights and training stops, so neither the model ``fit`` hands back nor a
checkpoint ever holds NaN or inf. ``checkpoint=path`` writes an atomic checkpoint after every epoch (or, with
``checkpoint_every=seconds``, after the first epoch that ends that long after the last write, after the last epoch,
and whenever training stops early, so a checkpoint always matches its history's last epoch).

Bad input is refused before the first step: the arguments, the model's weights, and the whole data set once
(finite, not empty, and the model's own ``check_input(x, name)`` if it has one, e.g. pixels in [0, 1] for Bernoulli
pixels; floating data is cast to the model's dtype). The steps then run inside
``vae_course._validate.data_checked()``, so the models skip their per-batch value scans: the loop adds no
device sync per step beyond the finiteness check of the loss.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from typing import Callable, Iterator

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import _validate as check
from .checkpoint import load_checkpoint, save_checkpoint
from .data import ImageData
from .history import History
from .models.base import LossTerms
from .utils import check_positive_int, get_device

__all__ = ["fit", "evaluate_loss", "make_optimizer", "History", "save_checkpoint", "load_checkpoint", "LossTerms"]

LossKwargs = dict | Callable[[int, int, int], dict] | None
BINARIZE_MODES = ("none", "static", "dynamic")


def make_optimizer(model: nn.Module, lr: float = 1e-3, **kwargs) -> torch.optim.Adam:
    """Adam with the fused kernel where this PyTorch and device support it, else the multi-tensor (foreach) one.
    ``lr``: a finite step size > 0."""
    lr = check.positive_float("lr", lr)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no trainable parameters")
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True, **kwargs)


def fit(model: nn.Module, data: ImageData | Tensor, *, epochs: int, batch_size: int = 128, lr: float = 1e-3,
        seed: int = 0, device: str | torch.device | None = None, loss_kwargs: LossKwargs = None, test_every: int = 1,
        checkpoint: str | os.PathLike | None = None, progress: bool = True, clip_grad: float | None = None,
        binarize: str | None = None, amp: bool = False, optimizer: torch.optim.Optimizer | None = None,
        history: History | None = None, checkpoint_extra: dict | None = None,
        time_limit: float | None = None, checkpoint_every: float = 0.0) -> History:
    """Train ``model`` on ``data`` by minimising ``model.loss``; returns the :class:`History`.

    Args:
        model: any module with ``loss(x, **kwargs) -> LossTerms``; moved to ``device``.
        data: an ``ImageData`` (train and test parts) or a tensor ``(N, ...)`` of training data only.
        epochs: passes over the training data. batch_size, lr: Adam's batch size and step size.
        seed: seeds the shuffling and torch's global generator (the reparameterisation noise).
        device: None picks :func:`vae_course.utils.get_device` (cuda > mps > cpu).
        loss_kwargs: a dict for ``model.loss``, or ``callable(epoch, step, n_steps) -> dict`` called every
            step (``epoch`` and ``step`` count from 0 in this call; ``step`` runs over all its epochs and
            ``n_steps`` is their total). ``model.loss`` must return the same term names at every step.
        test_every: evaluate on the test part every this many epochs (and after the last one).
        checkpoint: a path; the model, config and history are written there atomically after each epoch (only
            finite weights: an epoch that ends with non-finite ones is not written, see the module doc).
        progress: show a tqdm bar (notebook or terminal). clip_grad: max gradient norm (> 0), or None.
        binarize: ``"dynamic"`` draws binary pixels afresh for every batch, ``"none"`` or ``"static"`` trains on
            the pixels as they are; None: the data set's own mode (``data.binarize``).
        amp: mixed precision (float16 on CUDA, bfloat16 elsewhere). optimizer: continue with this one.
        history: a History to append to (continuing a run). checkpoint_extra: plain values saved with it.
        time_limit: a wall-time budget in seconds from the first step (None: no limit; building the first optimiser
            of a process imports ``torch._dynamo``, which is not counted). No epoch starts that would end past it, judged
            by the slowest epoch so far; the first epoch always runs. ``epochs`` is then an upper bound, and
            :attr:`History.note` says where the budget ended the run.
        checkpoint_every: seconds between checkpoint writes (0: every epoch). A write costs the SHA-256 and an
            fsync of the weights, which is much of an epoch of a small data set (``vae-course bench --train-overhead``).
    """
    run = _Run(model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
               loss_kwargs=loss_kwargs, test_every=test_every, checkpoint=checkpoint, progress=progress,
               clip_grad=clip_grad, binarize=binarize, amp=amp, optimizer=optimizer, history=history,
               checkpoint_extra=checkpoint_extra, time_limit=time_limit, checkpoint_every=checkpoint_every)
    with run:
        for epoch in range(run.epochs):
            run.start_epoch()
            for step, x in run.batches(epoch):           # a shuffled batch, binarised afresh if asked
                with run.autocast():
                    out = model.loss(x, **run.kwargs)    # the negative ELBO (mean over the batch) for a VAE
                if not run.finite(out, epoch, step):
                    return run.history                   # stopped, weights restored: the warning says why
                run.update(out.loss)                     # zero_grad, backward, (clip), Adam step
                run.record(out, len(x))
            if not run.end_epoch(epoch):                 # train and test terms into the history, checkpoint
                return run.history
            if run.timed_out:                            # time_limit: the next epoch would end past it
                break
    return run.history


class _Run:
    """The state of one :func:`fit` call: arguments checked, data and model on the device, the optimiser, the
    progress bar, the running sums of the loss terms and the history."""

    def __init__(self, model: nn.Module, data: ImageData | Tensor, *, epochs: int, batch_size: int, lr: float,
                 seed: int, device, loss_kwargs: LossKwargs, test_every: int, checkpoint, progress: bool,
                 clip_grad: float | None, binarize: str | None, amp: bool, optimizer, history: History | None,
                 checkpoint_extra: dict | None, time_limit: float | None = None, checkpoint_every: float = 0.0):
        self.epochs = check_positive_int("epochs", epochs)
        self.time_limit = None if time_limit is None else check.positive_float("time_limit", time_limit)
        self.timed_out = False
        self.checkpoint_every = check.positive_float("checkpoint_every", checkpoint_every, allow_zero=True)
        self.saved_epochs = None  # how many epochs the last checkpoint written held
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.test_every = check_positive_int("test_every", test_every)
        if not callable(getattr(model, "loss", None)):
            raise TypeError(f"model: {type(model).__name__} has no loss(x, ...) method returning LossTerms")
        _check_options(lr=lr, seed=seed, clip_grad=clip_grad, optimizer=optimizer, history=history, checkpoint=checkpoint)
        x_train, x_test, mode = _split(data)
        if binarize is not None and binarize not in BINARIZE_MODES:
            raise ValueError(f"binarize: got {binarize!r}; need None or one of {BINARIZE_MODES}")
        self.dynamic = (mode if binarize is None else binarize) == "dynamic"
        self.model, self.loss_kwargs, self.amp, self.clip_grad = model, loss_kwargs, amp, clip_grad
        self.checkpoint, self.checkpoint_extra = checkpoint, checkpoint_extra
        self.device = get_device(device)
        model.to(self.device)
        check.finite_weights("model", model)
        # once per data set, so that the steps can skip the per-batch scans (see the module doc)
        self.x_train = _checked(model, x_train.to(self.device, non_blocking=True), "data", self.dynamic)
        self.x_test = _checked(model, x_test.to(self.device), "data.x_test", False) if x_test is not None else None
        self.n = len(self.x_train)
        self.n_batches = math.ceil(self.n / self.batch_size)
        self.n_steps = self.epochs * self.n_batches
        torch.manual_seed(seed)
        self.shuffle = torch.Generator().manual_seed(seed)
        self.opt = optimizer or make_optimizer(model, lr)
        self.params = [p for g in self.opt.param_groups for p in g["params"]]
        self.scaler = torch.amp.GradScaler(self.device.type) if amp and self.device.type == "cuda" else None
        self.check_every = 1 if self.device.type == "cpu" else 20  # a finiteness check syncs with the device
        self.history = history if history is not None else History()
        self.start = self.history.epochs
        self.bar = tqdm(total=self.n_steps, disable=not progress, desc=type(model).__name__, unit="step", leave=True)
        self.kwargs: dict = {}
        self.checked = check.data_checked()
        self.began = self.saved_at = time.perf_counter()  # time_limit counts from here: data and optimiser ready

    def __enter__(self) -> "_Run":
        self.model.train()
        self.checked.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.checked.__exit__(*exc)
        self.bar.close()
        self.model.eval()

    def autocast(self):
        """Mixed precision for the forward pass if ``amp``, else nothing."""
        return _autocast(self.device, self.amp)

    # ------------------------------------------------------------ one epoch
    def start_epoch(self) -> None:
        self.t0 = time.perf_counter()
        # finite: checked when the run started, and at the end of every epoch before this one
        self.good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.sums: Tensor | None = None

    def batches(self, epoch: int) -> Iterator[tuple[int, Tensor]]:
        """``(b, x)`` for the epoch's batches in a fresh random order; sets :attr:`kwargs` for each step first."""
        perm = torch.randperm(self.n, generator=self.shuffle).to(self.device)
        for b in range(self.n_batches):
            step = epoch * self.n_batches + b
            self.kwargs = _kwargs(self.loss_kwargs, epoch, step, self.n_steps)
            x = self.x_train.index_select(0, perm[b * self.batch_size:(b + 1) * self.batch_size])
            yield b, (torch.bernoulli(x) if self.dynamic else x)

    def finite(self, out: LossTerms, epoch: int, b: int) -> bool:
        """False (and the weights restored, a warning given) if this step's loss is NaN or inf."""
        step = epoch * self.n_batches + b
        if step % self.check_every or bool(torch.isfinite(out.loss)):
            return True
        self._restore()
        terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in out.terms.items())
        self._stop(f"stopped at epoch {self.start + epoch + 1}, step {b + 1}/{self.n_batches}: the loss is "
                   f"{float(out.loss.detach())} ({terms}). Restored the weights from the start of that epoch, the last "
                   "ones known to be finite. Usual causes: a variance collapsing to 0 (add a floor), log(0), "
                   "a learning rate that is too high (try lr/10 or clip_grad).")
        return False

    def update(self, loss: Tensor) -> None:
        """One optimiser step on ``loss``."""
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
        else:
            loss.backward()
        if self.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad, foreach=True)
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()

    def record(self, out: LossTerms, n: int) -> None:
        # sums stay on the device (no sync per step); one stacked tensor, few small ops
        terms = torch.stack([v.detach().float() for v in out.terms.values()]) * n
        self.sums = terms if self.sums is None else self.sums + terms
        self.names = list(out.terms)
        self.bar.update(1)

    def end_epoch(self, epoch: int) -> bool:
        """Record the epoch (train terms, test terms every ``test_every`` epochs, times), write the checkpoint;
        False if the epoch's terms or the weights after its last step are not finite (the weights are then restored,
        nothing is recorded or written)."""
        train_terms = dict(zip(self.names, (self.sums / self.n).tolist()))  # .tolist() waits for the device
        train_time = time.perf_counter() - self.t0
        history, done = self.history, self.start + epoch + 1
        if not all(math.isfinite(v) for v in train_terms.values()):  # caught late on accelerators
            self._restore()
            self._stop(f"stopped after epoch {done}: non-finite training terms {train_terms}; restored the weights "
                       "from the start of that epoch.")
            return False
        if not self.weights_finite(done):  # a NaN or inf gradient after the last loss check
            return False
        history.append("train", train_terms)
        self.timed_out = self.out_of_time(epoch, train_time)
        last = epoch == self.epochs - 1 or self.timed_out
        if self.x_test is not None and ((epoch + 1) % self.test_every == 0 or last):
            history.append("test", evaluate_loss(self.model, self.x_test, loss_kwargs=self.kwargs, amp=self.amp))
            history.test_epochs.append(done)
        history.train_seconds.append(train_time)
        history.seconds.append(time.perf_counter() - self.t0)
        history.samples.append(self.n)
        post = {"train": f"{train_terms.get('loss', float('nan')):.2f}"}
        if history.test_epochs and history.test_epochs[-1] == done:
            post["test"] = f"{history.test['loss'][-1]:.2f}" if "loss" in history.test else "-"
        self.bar.set_postfix(post, refresh=False)
        if last or time.perf_counter() - self.saved_at >= self.checkpoint_every:
            self._save()
        return True

    def _save(self) -> None:
        """Write the checkpoint (if there is one) unless it already holds the history's last epoch."""
        if self.checkpoint is None or self.saved_epochs == self.history.epochs or self.history.epochs == 0:
            return
        save_checkpoint(self.checkpoint, self.model, history=self.history, extra=self.checkpoint_extra)
        self.saved_at, self.saved_epochs = time.perf_counter(), self.history.epochs

    def out_of_time(self, epoch: int, pending: float = 0.0) -> bool:
        """True if ``time_limit`` is set, epochs remain, and one more epoch as slow as the slowest so far (``pending``:
        the seconds of an epoch not yet recorded) would end past it; the history's note then says so."""
        if self.time_limit is None or epoch == self.epochs - 1:
            return False
        slowest = max([pending, *self.history.seconds[self.start:]])
        elapsed = time.perf_counter() - self.began
        if elapsed + slowest <= self.time_limit:
            return False
        self.history.note = (f"time_limit: {self.time_limit:g} s; stopped after {epoch + 1} of {self.epochs} epoch(s) "
                             f"at {elapsed:.1f} s (the slowest epoch took {slowest:.1f} s)")
        return True

    def weights_finite(self, done: int) -> bool:
        """False (and the epoch's starting weights restored, a warning given) if a step left NaN or inf weights."""
        bad = check.nonfinite_weights(self.model)
        if not bad:
            return True
        self._restore()
        saved = f"; the checkpoint keeps epoch {done - 1}" if self.checkpoint is not None and done > 1 else ""
        self._stop(f"stopped at the end of epoch {done}: its losses were finite, but a NaN or inf gradient left "
                   f"non-finite weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}). Restored the weights "
                   f"from the start of epoch {done}, the last ones known to be finite; epoch {done} is not recorded"
                   f"{saved}. Usual causes: a learning rate that is too high (try lr/10 or clip_grad), a log or sqrt of "
                   "0 inside the loss.")
        return False

    def _restore(self) -> None:
        """The epoch's starting weights back, and the optimiser state that a NaN or inf gradient poisoned dropped
        (Adam starts those moments afresh if training continues with this optimiser)."""
        self.model.load_state_dict(self.good)
        for state in self.opt.state.values():
            if any(isinstance(v, Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())
                   for v in state.values()):
                state.clear()

    def _stop(self, why: str) -> None:
        self.history.stopped = why
        self._save()  # the restored weights are those of the history's last epoch
        warnings.warn(f"fit: {why}", RuntimeWarning, stacklevel=4)


def _split(data: ImageData | Tensor) -> tuple[Tensor, Tensor | None, str]:
    if isinstance(data, ImageData):
        return check.non_empty("data.x_train", data.x_train, "training image"), data.x_test, data.binarize
    if isinstance(data, Tensor):
        if not data.is_floating_point() or data.dim() < 2:
            raise TypeError(f"data: got a tensor of dtype {data.dtype} and shape {tuple(data.shape)}; need floating (N, ...)")
        return check.non_empty("data", data, "training example"), None, "none"
    raise TypeError(f"data: got {type(data).__name__}; need vae_course.data.ImageData or a tensor (N, ...)")


def _check_options(*, lr, seed, clip_grad, optimizer, history, checkpoint) -> None:
    if optimizer is None:
        check.positive_float("lr", lr)
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer: got {type(optimizer).__name__}; need None or a torch.optim.Optimizer")
    check.seed("seed", seed)
    if clip_grad is not None:
        check.positive_float("clip_grad", clip_grad)
    if history is not None and not isinstance(history, History):
        raise TypeError(f"history: got {type(history).__name__}; need None or the History of an earlier fit")
    if checkpoint is not None and (not isinstance(checkpoint, (str, os.PathLike)) or os.path.isdir(checkpoint)):
        raise ValueError(f"checkpoint: got {checkpoint!r}; need the path of a file to write (not a folder)")


def _checked(model: nn.Module, x: Tensor, name: str, dynamic: bool) -> Tensor:
    """A data set checked once: finite, [0, 1] if binarised afresh, cast to the model's dtype, the model's own check."""
    check.non_empty(name, x, "example")
    x = check.like(name, x, check.first_parameter(model))
    own = getattr(model, "check_input", None)
    if x.is_floating_point() or not callable(own):  # integer inputs (code maps) are the model's own business
        (check.pixels if dynamic else check.tensor)(name, x, per_batch=True)  # inside fit: checked at its start
    out = own(x, name) if callable(own) else None
    return x if out is None else out


def _kwargs(loss_kwargs: LossKwargs, epoch: int, step: int, n_steps: int) -> dict:
    if loss_kwargs is None:
        return {}
    if callable(loss_kwargs):
        kw = loss_kwargs(epoch, step, n_steps)
        if not isinstance(kw, dict):
            raise TypeError(f"loss_kwargs: the schedule returned {type(kw).__name__}; it must return a dict such as {{'beta': 0.5}}")
        return kw
    if isinstance(loss_kwargs, dict):
        return loss_kwargs
    raise TypeError(f"loss_kwargs: got {type(loss_kwargs).__name__}; need None, a dict, or callable(epoch, step, n_steps) -> dict")


def _autocast(device: torch.device, amp: bool):
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


@torch.no_grad()
def evaluate_loss(model: nn.Module, x: Tensor, *, batch_size: int = 1000, loss_kwargs: dict | None = None,
                  amp: bool = False) -> dict[str, float]:
    """Mean of each term of ``model.loss`` over ``x`` (in batches, eval mode, no gradients); ``x`` is checked once
    (not empty, finite, the model's own ``check_input``), then its batches are not scanned again."""
    batch_size = check_positive_int("batch_size", batch_size)
    if not isinstance(x, Tensor):
        raise TypeError(f"x: got {type(x).__name__}; need a tensor (N, ...) of the model's inputs")
    if loss_kwargs is not None and not isinstance(loss_kwargs, dict):
        raise TypeError(f"loss_kwargs: got {type(loss_kwargs).__name__}; need None or a dict such as {{'beta': 0.5}}")
    x = _checked(model, x, "x", False)
    was_training = model.training
    model.eval()
    sums: dict[str, Tensor] = {}
    try:
        with check.data_checked():
            for i in range(0, len(x), batch_size):
                xb = x[i:i + batch_size]
                with _autocast(xb.device, amp):
                    out = model.loss(xb, **(loss_kwargs or {}))
                for k, v in out.terms.items():
                    sums[k] = sums.get(k, 0.0) + v.detach().float() * len(xb)
    finally:
        model.train(was_training)
    return {k: float(v) / len(x) for k, v in sums.items()}
