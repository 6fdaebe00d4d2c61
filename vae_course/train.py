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
``loss_kwargs=callable(epoch, step, n_steps) -> dict``.

Safety: a non-finite loss stops training with a warning that says where and why, and restores
the weights saved at the start of that epoch (the last ones known to give finite losses);
``checkpoint=path`` writes an atomic checkpoint after every epoch.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from typing import Callable

import torch
from torch import Tensor, nn

from .checkpoint import load_checkpoint, save_checkpoint
from .data import ImageData
from .history import History
from .models.base import LossTerms
from .utils import check_positive_int, get_device

__all__ = ["fit", "evaluate_loss", "make_optimizer", "History", "save_checkpoint", "load_checkpoint", "LossTerms"]

LossKwargs = dict | Callable[[int, int, int], dict] | None


def make_optimizer(model: nn.Module, lr: float = 1e-3, **kwargs) -> torch.optim.Adam:
    """Adam with the fused kernel where this PyTorch and device support it, else the multi-tensor (foreach) one."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no trainable parameters")
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True, **kwargs)


def _split(data: ImageData | Tensor) -> tuple[Tensor, Tensor | None, bool]:
    if isinstance(data, ImageData):
        return data.x_train, data.x_test, data.binarize == "dynamic"
    if isinstance(data, Tensor):
        if not data.is_floating_point() or data.dim() < 2:
            raise TypeError(f"data: got a tensor of dtype {data.dtype} and shape {tuple(data.shape)}; need floating (N, ...)")
        return data, None, False
    raise TypeError(f"data: got {type(data).__name__}; need vae_course.data.ImageData or a tensor (N, ...)")


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
    """Mean of each term of ``model.loss`` over ``x`` (in batches, eval mode, no gradients)."""
    was_training = model.training
    model.eval()
    sums: dict[str, Tensor] = {}
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            with _autocast(xb.device, amp):
                out = model.loss(xb, **(loss_kwargs or {}))
            for k, v in out.terms.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float() * len(xb)
    finally:
        model.train(was_training)
    return {k: float(v) / len(x) for k, v in sums.items()}


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(model: nn.Module, data: ImageData | Tensor, *, epochs: int, batch_size: int = 128, lr: float = 1e-3,
        seed: int = 0, device: str | torch.device | None = None, loss_kwargs: LossKwargs = None, test_every: int = 1,
        checkpoint: str | os.PathLike | None = None, progress: bool = True, clip_grad: float | None = None,
        binarize: bool | None = None, amp: bool = False, optimizer: torch.optim.Optimizer | None = None,
        history: History | None = None, checkpoint_extra: dict | None = None) -> History:
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
        checkpoint: a path; the model, config and history are written there atomically after each epoch.
        progress: show a tqdm bar (notebook or terminal). clip_grad: max gradient norm, or None.
        binarize: draw binary pixels afresh for every batch; None: yes iff ``data.binarize == "dynamic"``.
        amp: mixed precision (float16 on CUDA, bfloat16 elsewhere). optimizer: continue with this one.
        history: a History to append to (continuing a run). checkpoint_extra: plain values saved with it.
    """
    from tqdm.auto import tqdm

    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    test_every = check_positive_int("test_every", test_every)
    if not callable(getattr(model, "loss", None)):
        raise TypeError(f"model: {type(model).__name__} has no loss(x, ...) method returning LossTerms")
    x_train, x_test, dynamic = _split(data)
    binarize = dynamic if binarize is None else bool(binarize)
    device = get_device(device)
    model.to(device)
    x_train = x_train.to(device, non_blocking=True)  # once: batches are index_select on the device
    x_test = x_test.to(device) if x_test is not None else None
    n, n_batches = len(x_train), math.ceil(len(x_train) / batch_size)
    n_steps = epochs * n_batches
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    opt = optimizer or make_optimizer(model, lr)
    params = [p for g in opt.param_groups for p in g["params"]]
    scaler = torch.amp.GradScaler(device.type) if amp and device.type == "cuda" else None
    check_every = 1 if device.type == "cpu" else 20  # a finiteness check syncs with the device: rarer on GPUs
    history = history if history is not None else History()
    start_epoch = history.epochs
    bar = tqdm(total=n_steps, disable=not progress, desc=type(model).__name__, unit="step", leave=True)
    model.train()
    try:
        for epoch in range(epochs):
            t0 = time.perf_counter()
            good = _snapshot(model)
            perm = torch.randperm(n, generator=shuffle).to(device)
            sums: Tensor | None = None
            kw: dict = {}
            for b in range(n_batches):
                step = epoch * n_batches + b
                kw = _kwargs(loss_kwargs, epoch, step, n_steps)
                xb = x_train.index_select(0, perm[b * batch_size:(b + 1) * batch_size])
                if binarize:
                    xb = torch.bernoulli(xb)
                with _autocast(device, amp):
                    out: LossTerms = model.loss(xb, **kw)
                if step % check_every == 0 and not bool(torch.isfinite(out.loss)):
                    model.load_state_dict(good)
                    terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in out.terms.items())
                    history.stopped = (
                        f"stopped at epoch {start_epoch + epoch + 1}, step {b + 1}/{n_batches}: the loss is "
                        f"{float(out.loss.detach())} ({terms}). Restored the weights from the start of that epoch, the last "
                        "ones with finite losses. Usual causes: a variance collapsing to 0 (add a floor), log(0), "
                        "a learning rate that is too high (try lr/10 or clip_grad).")
                    warnings.warn(f"fit: {history.stopped}", RuntimeWarning, stacklevel=2)
                    return history
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(out.loss).backward()
                    scaler.unscale_(opt)
                else:
                    out.loss.backward()
                if clip_grad is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip_grad, foreach=True)
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                # sums stay on the device (no sync per step); one stacked tensor, few small ops
                terms = torch.stack([v.detach().float() for v in out.terms.values()]) * xb.shape[0]
                sums = terms if sums is None else sums + terms
                bar.update(1)
            train_terms = dict(zip(out.terms, (sums / n).tolist()))  # .tolist() waits for the device
            train_time = time.perf_counter() - t0
            if not all(math.isfinite(v) for v in train_terms.values()):  # caught late on accelerators
                model.load_state_dict(good)
                history.stopped = (f"stopped after epoch {start_epoch + epoch + 1}: non-finite training terms "
                                   f"{train_terms}; restored the weights from the start of that epoch.")
                warnings.warn(f"fit: {history.stopped}", RuntimeWarning, stacklevel=2)
                return history
            history.append("train", train_terms)
            last = epoch == epochs - 1
            if x_test is not None and ((epoch + 1) % test_every == 0 or last):
                history.append("test", evaluate_loss(model, x_test, loss_kwargs=kw, amp=amp))
                history.test_epochs.append(start_epoch + epoch + 1)
            history.train_seconds.append(train_time)
            history.seconds.append(time.perf_counter() - t0)
            history.samples.append(n)
            post = {"train": f"{train_terms.get('loss', float('nan')):.2f}"}
            if history.test_epochs and history.test_epochs[-1] == start_epoch + epoch + 1:
                post["test"] = f"{history.test['loss'][-1]:.2f}" if "loss" in history.test else "-"
            bar.set_postfix(post, refresh=False)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, history=history, extra=checkpoint_extra)
    finally:
        bar.close()
        model.eval()
    return history
