"""The holes found by submitting wrong answers as a student would (issue 14), one test per class. Every
submission below was accepted, or reported with a wrong cause, by the checks before they were hardened; each
test states what it used to get.

Classes: inputs the docstring allows but no case tried; contracts (type, dtype, inputs unchanged, gradients);
expectations computed from tensors the student overwrote; feedback that says nothing (large tensors, scalars,
never-shown messages, missing sibling hints, wrong causes); the MIG of a constant factor; calling the package's
answer instead of writing it.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vae_course as vc
from vae_course.checks import FAIL, PASS, ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08


def _mask(k, t):
    m = torch.zeros(k, k)
    m[: k // 2] = 1.0
    m[k // 2, : k // 2 + (t == "B")] = 1.0
    return m


def _fails(result, *phrases):
    assert result.status == FAIL, result.message
    for phrase in phrases:
        assert phrase in result.message, result.message
    return result


# ---------------------------------------------------------------- inputs the docstring allows
def test_logits_in_the_hundreds_are_tried():
    # clamping the logits to +-60 was exact on every old case (|logit| <= 40)
    def bernoulli_log_likelihood(x, logits):
        logits = logits.clamp(-60, 60)
        return (x * logits - F.softplus(logits)).sum(-1)

    _fails(ch00.check_bernoulli_log_likelihood(bernoulli_log_likelihood), "logits in the hundreds")


def test_a_q_with_zeros_where_p_is_positive_is_tried():
    # clamping q (a large finite KL instead of +inf) passed: no case had q_k = 0 < p_k
    def kl_categorical(p, q):
        return (torch.xlogy(p, p) - p * torch.log(q.clamp_min(1e-12))).sum(-1)

    _fails(ch00.check_kl_categorical(kl_categorical), "q is 0 where p is not")


def test_grey_level_pixels_are_tried():
    # a likelihood that is right only for 0/1 pixels passed: every old case was binary
    def bernoulli_log_likelihood(x, logits):
        return torch.where(x > 0.5, -F.softplus(-logits), -F.softplus(logits)).sum(-1)

    _fails(ch00.check_bernoulli_log_likelihood(bernoulli_log_likelihood), "grey levels")


@pytest.mark.parametrize("check", [ch02.check_log_marginal_from_samples, ch05.check_iwae_bound])
def test_rows_of_very_different_scale_are_tried(check):
    # one maximum for the whole batch passed: the old rows were at most 210 nats apart
    if check is ch05.check_iwae_bound:
        def fn(log_w):
            m = log_w.max()
            return m + torch.log(torch.exp(log_w - m).mean(0))
    else:
        def fn(log_lik):
            m = log_lik.max()
            return m + torch.log(torch.exp(log_lik - m).mean(-1))
    _fails(check(fn), "own maximum")


def test_steps_between_the_tested_points_of_a_schedule_are_tried():
    # a warm-up computed from t rounded to whole percent was exact at every old case (steps 0, 25, 50, ... of 100)
    def warmup_beta(step, n_steps, kind="linear"):
        t = min(max(step * 100 // n_steps / 100, 0.0), 1.0)
        if kind == "linear":
            return t
        s = lambda u: 1.0 / (1.0 + math.exp(-10.0 * (u - 0.5)))  # noqa: E731
        return (s(t) - s(0.0)) / (s(1.0) - s(0.0))

    _fails(ch07.check_warmup_beta(warmup_beta), "wrong value", "n_steps")


def test_kernel_sizes_beyond_the_tested_ones_are_tried():
    # a mask hard-coded for kernel sizes 1, 3 and 5 passed
    table = {k: _mask for k in (1, 3, 5)}

    def causal_mask(kernel_size, mask_type):
        return table.get(kernel_size, lambda k, t: torch.ones(k, k))(kernel_size, mask_type)

    _fails(ch08.check_causal_mask(causal_mask), "kernel_size = 7")


# ---------------------------------------------------------------- contracts
def test_a_numpy_result_is_refused():
    # converted with torch.as_tensor and accepted
    _fails(ch00.check_entropy(lambda p: -(p.numpy() * np.log(np.where(p.numpy() > 0, p.numpy(), 1.0))).sum(-1)),
           "numpy", "need a torch.Tensor")


def test_an_input_modified_in_place_is_refused():
    # the right values, computed by overwriting the caller's p: accepted
    def entropy(p):
        p.clamp_(min=1e-300)
        return -(p * p.log()).sum(-1)

    _fails(ch00.check_entropy(entropy), "changed its argument `p` in place")


@pytest.mark.parametrize("detach", ["detach", "numpy"])
def test_a_loss_without_a_gradient_is_refused(detach):
    # a negative ELBO computed without a graph (detached, or in numpy and wrapped back) was accepted
    def negative_elbo(x, x_logits, mu, logvar):
        recon = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1)
        out = recon + 0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(-1)
        return out.detach() if detach == "detach" else torch.from_numpy(out.detach().numpy().copy())

    _fails(ch05.check_negative_elbo(negative_elbo), "no gradient reaches")


def test_a_float64_mask_is_refused():
    # accepted, and it breaks conv2d on float32 input
    _fails(ch08.check_causal_mask(lambda k, t: _mask(k, t).double()), "dtype torch.float64; need torch.float32")
    assert ch08.check_causal_mask(_mask).status == PASS
    with pytest.raises(RuntimeError):
        F.conv2d(torch.zeros(1, 1, 5, 5), torch.ones(1, 1, 3, 3) * _mask(3, "A").double())


# ---------------------------------------------------------------- expectations from tensors the student overwrote
def reparameterize_in_eps(mu, logvar, eps):
    return eps.mul_(torch.exp(0.5 * logvar)).add_(mu)  # z built in place inside eps: values and gradients right


def test_an_overwritten_eps_is_reported_as_such_and_not_as_a_wrong_gradient():
    # used to end in "dz/dlogvar should be 0.5 * sigma * eps ...": the expectation was computed from the overwritten eps
    result = _fails(ch04.check_reparameterize(reparameterize_in_eps), "changed its argument `eps` in place")
    assert "dz/dlogvar" not in result.message


@pytest.mark.parametrize("extra", [ch04._reparam_gradients, ch05._reparam_grad])
def test_the_gradient_expectation_uses_a_private_copy_of_eps(extra):
    assert extra(reparameterize_in_eps) is None  # its gradients are right


# ---------------------------------------------------------------- feedback that says something
def test_a_large_tensor_is_described_by_its_differing_entries():
    # used to print "expected tensor of shape (6, 3), got tensor of shape (6, 3)"
    def sample_mvn(mu, cov, eps):
        out = mu + (torch.linalg.cholesky(cov) @ eps.unsqueeze(-1)).squeeze(-1)
        return out + (out.numel() > 6) * 0.5 * (torch.arange(out.numel()).reshape(out.shape) == 4)

    result = _fails(ch01.check_sample_mvn(sample_mvn), "entries of the", "largest difference 0.5")
    assert "got tensor of shape" not in result.message


def test_a_scalar_is_printed_with_enough_digits_to_differ():
    # used to read "expected 0.0701, got 0.0701"
    def gaussian_mle_loglik(x):
        var = ((x - x.mean()) ** 2).mean()
        ll = (-0.5 * (math.log(2 * math.pi) + torch.log(var) + (x - x.mean()) ** 2 / var)).mean()
        return ll * 1.0003  # off by 3e-4 relative: beyond the tolerance, invisible with 4 digits

    message = _fails(ch02.check_gaussian_mle_loglik(gaussian_mle_loglik)).message
    expected, got = message.split("expected ")[1].split(", got ")
    assert expected != got.split(".\n")[0].rstrip(".")


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
def test_free_bits_returning_a_python_number_gets_its_message():
    # used to end in "`free_bits_kl` raised AttributeError: 'float' object has no attribute 'requires_grad' in a further test"
    result = _fails(ch07.check_free_bits_kl(lambda kl, lam: torch.clamp(kl.mean(0), min=lam).sum().item()),
                    "returned a float", ".item()")
    assert "AttributeError" not in result.message


@pytest.mark.parametrize("slip, hint", [
    (lambda x, l, mu, lv, b: F.binary_cross_entropy_with_logits(l, x, reduction="none").sum(-1)
     + b * 0.5 * (lv.exp() + mu**2 - 1 + lv).sum(-1), "sign of the log-variance term is flipped"),
    (lambda x, l, mu, lv, b: F.binary_cross_entropy_with_logits(l, x, reduction="none").sum(-1)
     + b * (lv.exp() + mu**2 - 1 - lv).sum(-1), "missing its factor 1/2"),
])
def test_the_beta_elbo_gives_the_hints_its_sibling_gives(slip, hint):
    # the ELBO check of chapter 5 had these hints, the beta-ELBO check of chapter 6 did not
    _fails(ch06.check_negative_beta_elbo(slip), hint)
    _fails(ch05.check_negative_elbo(lambda x, l, mu, lv: slip(x, l, mu, lv, 1.0)), hint)


def test_a_graph_cut_by_torch_tensor_is_not_blamed_on_detaching_both_sides():
    # used to say "do not detach both sides"
    def vq_losses(z_e, z_q, beta):
        codebook = (z_e.detach() - z_q).pow(2).sum(-1).mean()
        commitment = beta * (z_e - z_q.detach()).pow(2).sum(-1).mean()
        return torch.tensor([codebook, commitment])

    result = _fails(ch08.check_vq_losses(vq_losses), "torch.tensor([...])", "torch.stack")
    assert "do not detach both sides" not in result.message


# ---------------------------------------------------------------- the MIG of a constant factor
def test_the_old_official_mig_returns_nan_on_a_constant_factor_and_fails():
    def mutual_information(a, b):
        return vc.disentangle.mi_matrix(a.reshape(-1, 1) - a.min(), b.reshape(-1, 1) - b.min())[0, 0]

    def mig(codes_discrete, factors):  # the official solution before the fix: divides by H(v_k) = 0
        mi = vc.disentangle.mi_matrix(codes_discrete, factors)
        top2 = mi.topk(2, dim=0).values
        entropy = torch.stack([mutual_information(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])
        return ((top2[0] - top2[1]) / entropy).mean()

    _fails(ch06.check_mig(mig), "NaN", "constant")


# ---------------------------------------------------------------- calling the answer instead of writing it
@pytest.mark.parametrize("check, fn, reference", [
    (ch00.check_entropy, lambda p: vc.information.entropy(p), "vc.information.entropy"),
    (ch00.check_bernoulli_log_likelihood, lambda x, l: vc.distributions.log_bernoulli(x, l), "vc.distributions.log_bernoulli"),
    (ch01.check_log_normal_diag, lambda x, m, lv: vc.distributions.log_normal_diag(x, m, lv), "vc.distributions.log_normal_diag"),
    (ch03.check_kl_normal_std, lambda m, lv: vc.distributions.kl_normal_std(m, lv), "vc.distributions.kl_normal_std"),
    (ch04.check_straight_through, lambda h, s: vc.estimators.straight_through(h, s), "vc.estimators.straight_through"),
    (ch05.check_iwae_bound, lambda lw: vc.evaluate.iwae_bound(lw), "vc.evaluate.iwae_bound"),
    (ch06.check_mig, lambda c, f: vc.disentangle.mig_from_discrete(c, f), "vc.disentangle.mig_from_discrete"),
    (ch07.check_warmup_beta, lambda s, n, k: vc.objectives.warmup_beta(k, s, n), "vc.objectives.warmup_beta"),
    (ch08.check_causal_mask, lambda k, t: vc.models.masked.causal_mask(k, t), "vc.models.masked.causal_mask"),
])
def test_calling_the_packages_reference_is_refused(check, fn, reference):
    # each of these passed: the answer was the reference itself
    _fails(check(fn), "calls the package's own", reference)


def test_writing_it_yourself_still_passes_after_a_refused_call():
    assert ch00.check_entropy(lambda p: vc.information.entropy(p)).status == FAIL
    assert ch00.check_entropy(lambda p: -torch.xlogy(p, p).sum(-1)).status == PASS
    assert vc.information.entropy(torch.tensor([0.5, 0.5])).item() == pytest.approx(math.log(2))
