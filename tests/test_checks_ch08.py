"""Tests for vae_course.checks.ch08: references and independent solutions pass, every classic mistake fails with
its own hint, gradient mistakes (no straight-through, swapped stop-gradients) are caught after the values match.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import pytest
import torch

from vae_course.checks import FAIL, PASS, ch08

CHECKS = {
    "quantize": (ch08.check_quantize, ch08._quantize_ref, ch08._QUANTIZE_MISTAKES),
    "losses": (ch08.check_vq_losses, ch08._loss_ref, ch08._LOSS_MISTAKES),
    "mask": (ch08.check_causal_mask, ch08._mask_ref, ch08._MASK_MISTAKES),
    "perplexity": (ch08.check_perplexity, ch08._perplexity_ref, ch08._PERPLEXITY_MISTAKES),
}


# ---------------------------------------------------------------- independent solutions pass
def quantize(z, codebook):
    d = torch.cdist(z, codebook)  # Euclidean distance: same argmin as the squared one
    z_q = codebook[d.argmin(dim=1)]
    return z + (z_q - z).detach()


def vq_losses(z_e, z_q, beta):
    codebook = ((z_e.detach() - z_q) ** 2).sum(dim=1).mean()
    commitment = beta * ((z_e - z_q.detach()) ** 2).sum(dim=1).mean()
    return torch.stack([codebook, commitment])


def causal_mask(kernel_size, mask_type):
    k, c = kernel_size, kernel_size // 2
    mask = torch.zeros(k, k)
    for r in range(k):
        for col in range(k):
            before = r < c or (r == c and col < c)
            mask[r, col] = float(before or (mask_type == "B" and r == c and col == c))
    return mask


def perplexity(indices, n_codes):
    p = torch.bincount(indices.flatten(), minlength=n_codes).double() / indices.numel()
    return torch.exp(torch.distributions.Categorical(probs=p).entropy())


@pytest.mark.parametrize("check, fn", [(ch08.check_quantize, quantize), (ch08.check_vq_losses, vq_losses),
                                       (ch08.check_causal_mask, causal_mask), (ch08.check_perplexity, perplexity)])
def test_independent_solution_passes(check, fn):
    res = check(fn)
    assert res.status == PASS, res.message


@pytest.mark.parametrize("name", CHECKS)
def test_the_reference_itself_is_refused_as_calling_the_answer(name):
    # the package's reference is switched off while a student's function runs (it used to pass)
    check, ref, _ = CHECKS[name]
    res = check(ref)
    assert res.status == FAIL and "calls the package's own" in res.message, res.message


# ---------------------------------------------------------------- classic mistakes
@pytest.mark.parametrize("name, i", [(n, i) for n, (_, _, ms) in CHECKS.items() for i in range(len(ms))])
def test_each_mistake_fails_with_its_hint(name, i):
    check, _, mistakes = CHECKS[name]
    res = check(mistakes[i].fn)
    assert res.status == FAIL
    assert mistakes[i].hint in res.message, f"mistake {i} of {name} got: {res.message}"


def test_gradient_mistakes_in_the_quantiser():
    def no_straight_through(z, codebook):
        return codebook[torch.cdist(z, codebook).argmin(1)]

    def wrong_detach(z, codebook):
        z_q = codebook[torch.cdist(z, codebook).argmin(1)]
        return z_q + (z - z_q).detach()

    def all_detached(z, codebook):
        return codebook[torch.cdist(z, codebook).argmin(1)].detach()

    assert "no gradient reaches z" in ch08.check_quantize(no_straight_through).message
    assert "the detach is on the wrong term" in ch08.check_quantize(wrong_detach).message
    assert "no gradient flows" in ch08.check_quantize(all_detached).message
    for fn in (no_straight_through, wrong_detach, all_detached):
        assert ch08.check_quantize(fn).status == FAIL


def test_gradient_mistakes_in_the_loss_terms():
    def swapped_stop_gradients(z_e, z_q, beta):
        codebook = ((z_e - z_q.detach()) ** 2).sum(1).mean()
        commitment = beta * ((z_e.detach() - z_q) ** 2).sum(1).mean()
        return torch.stack([codebook, commitment])

    def no_stop_gradients(z_e, z_q, beta):
        sq = ((z_e - z_q) ** 2).sum(1).mean()
        return torch.stack([sq, beta * sq])

    res = ch08.check_vq_losses(swapped_stop_gradients)
    assert res.status == FAIL and "stop-gradients are swapped" in res.message
    res = ch08.check_vq_losses(no_stop_gradients)
    assert res.status == FAIL and "codebook term sends a gradient to the encoder" in res.message


def test_mask_type_at_the_wrong_layer_is_named():
    res = ch08.check_causal_mask(lambda k, t: causal_mask(k, "B" if t == "A" else "A"))
    assert res.status == FAIL and "first layer only" in res.message


def test_perplexity_nan_from_zero_counts_is_reported():
    def naive(indices, n_codes):
        p = torch.bincount(indices.flatten(), minlength=n_codes).float() / indices.numel()
        return torch.exp(-(p * torch.log(p)).sum())  # 0 * log 0 = nan

    res = ch08.check_perplexity(naive)
    assert res.status == FAIL and "NaN" in res.message
