"""Tests for vae_course.estimators (chapter 4), in three tiers:
(1) shapes, injected noise and errors; (2) seeded statistical checks against analytic gradients,
exact finite sums and autograd, with the tolerance stated beside each; (3) a short descent that
must move downhill with the unbiased estimators and stand still with the naive one.
Plus smoke tests of the chapter's figures and widget."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vae_course import estimators as E  # noqa: E402
from vae_course.distributions import log_normal_diag  # noqa: E402

Z_TOL = 4.0  # an unbiased estimator's mean lies within 4 standard errors of the truth (per component)

MU, LOGVAR = torch.tensor([0.5, -1.0, 0.2]), torch.tensor([-0.5, 0.3, 0.0])
PROBLEMS = {
    "quadratic": E.QuadraticProblem(torch.tensor([1.0, 0.0, -0.5])),
    "quartic": E.QuarticProblem(),
    "exponential": E.ExponentialProblem(torch.tensor([0.4, -0.3, 0.2])),
    "linear": E.LinearProblem(torch.tensor([1.5, -2.0, 0.5])),
}


def max_abs(grad):
    return float(torch.cat([g.reshape(-1) for g in grad]).abs().max())


# ---------------------------------------------------------------- tier 1: shapes, noise injection, errors
def test_shapes_and_per_sample_mean():
    F = PROBLEMS["quadratic"]
    for fn in (E.score_function_gradient, E.reparam_gradient):
        avg = fn(F, MU, LOGVAR, 7, generator=torch.Generator().manual_seed(0))
        per = fn(F, MU, LOGVAR, 7, generator=torch.Generator().manual_seed(0), per_sample=True)
        assert isinstance(avg, E.GaussianGradient) and avg.mu.shape == (3,) and avg.logvar.shape == (3,)
        assert per.mu.shape == (7, 3) and per.logvar.shape == (7, 3)
        torch.testing.assert_close(per.mu.mean(0), avg.mu)
        torch.testing.assert_close(per.logvar.mean(0), avg.logvar)
    logits = torch.tensor([0.3, -0.2, 1.0, 0.0])
    for fn in (E.score_function_gradient_categorical, E.straight_through_gradient_categorical):
        g = fn(E.LinearProblem(torch.arange(4.0)), logits, 6, per_sample=True)
        assert isinstance(g, E.CategoricalGradient) and g.logits.shape == (6, 4)
    assert E.gumbel_softmax_gradient_categorical(PROBLEMS["quadratic"].__class__(torch.zeros(4)), logits, 5).logits.shape == (4,)


def test_injected_noise_is_used_and_shared():
    F = PROBLEMS["quartic"]
    eps = torch.randn(5, 3, generator=torch.Generator().manual_seed(3))
    a = E.reparam_gradient(F, MU, LOGVAR, eps=eps, per_sample=True)
    b = E.reparam_gradient(F, MU, LOGVAR, 5, eps=eps, per_sample=True)
    torch.testing.assert_close(a.mu, b.mu)
    # reparameterised per-sample gradient of sum z^4 w.r.t. mu is 4 z^3 at z = mu + sigma eps (checked by hand)
    z = MU + torch.exp(0.5 * LOGVAR) * eps
    torch.testing.assert_close(a.mu, 4 * z**3)
    torch.testing.assert_close(a.logvar, 4 * z**3 * 0.5 * torch.exp(0.5 * LOGVAR) * eps)
    # the score-function estimator on the same eps evaluates F at the same z
    s = E.score_function_gradient(F, MU, LOGVAR, eps=eps, per_sample=True)
    torch.testing.assert_close(s.mu, F(z)[:, None] * (z - MU) / torch.exp(LOGVAR))


def test_index_injection_categorical():
    logits, f = torch.tensor([0.5, 0.0, -0.5]), torch.tensor([1.0, 2.0, 4.0])
    index = torch.tensor([0, 2, 2, 1])
    g = E.score_function_gradient_categorical(E.LinearProblem(f), logits, index=index, per_sample=True)
    p = torch.softmax(logits, -1)
    torch.testing.assert_close(g.logits, f[index][:, None] * (torch.eye(3)[index] - p))


@pytest.mark.parametrize("call, match", [
    (lambda: E.score_function_gradient(PROBLEMS["quadratic"], MU, LOGVAR[:2], 4), "mu, logvar"),
    (lambda: E.reparam_gradient(PROBLEMS["quadratic"], MU[None], LOGVAR[None], 4), "mu, logvar"),
    (lambda: E.reparam_gradient(PROBLEMS["quadratic"], MU, LOGVAR, 0), "n_samples"),
    (lambda: E.reparam_gradient(PROBLEMS["quadratic"], MU, LOGVAR), "n_samples"),
    (lambda: E.reparam_gradient(PROBLEMS["quadratic"], MU, LOGVAR, 4, eps=torch.zeros(5, 3)), "n_samples"),
    (lambda: E.score_function_gradient(PROBLEMS["quadratic"], MU, LOGVAR, eps=torch.zeros(5, 2)), "eps"),
    (lambda: E.score_function_gradient(lambda z: z, MU, LOGVAR, 4), "F"),
    (lambda: E.reparam_gradient(lambda z: z.sum(), MU, LOGVAR, 4), "F"),
    (lambda: E.score_function_gradient(PROBLEMS["quadratic"], MU, LOGVAR, 4, baseline="median"), "baseline"),
    (lambda: E.score_function_gradient(PROBLEMS["quadratic"], MU, LOGVAR, 1, baseline="loo"), "baseline"),
    (lambda: E.score_function_gradient(PROBLEMS["quadratic"], MU, LOGVAR, 4, baseline=torch.ones(2)), "baseline"),
    (lambda: E.score_function_gradient_categorical(PROBLEMS["quadratic"], torch.zeros(2, 3), 4), "logits"),
    (lambda: E.score_function_gradient_categorical(PROBLEMS["quadratic"], torch.zeros(3), index=torch.tensor([0, 3])), "index"),
    (lambda: E.straight_through_gradient_categorical(PROBLEMS["quadratic"], torch.zeros(3), 4, temperature=0.0), "temperature"),
    (lambda: E.straight_through_gradient_categorical(PROBLEMS["quadratic"], torch.zeros(3), 4, relaxation="x"), "relaxation"),
    (lambda: E.estimator_stats(lambda g: E.CategoricalGradient(torch.zeros(2)), 1), "repeats"),
    (lambda: E.make_setup("cubic", 3), "name"),
    (lambda: E.variance_sweep("quadratic", dims=(1, 2), n_samples=(2, 4)), "dims, n_samples"),
])
def test_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_type_errors():
    with pytest.raises(TypeError, match="F"):
        E.reparam_gradient("not a function", MU, LOGVAR, 3)
    with pytest.raises(TypeError, match="mu"):
        E.reparam_gradient(PROBLEMS["quadratic"], [0.0, 1.0, 2.0], LOGVAR, 3)
    with pytest.raises(TypeError, match="baseline"):
        E.score_function_gradient(PROBLEMS["quadratic"], MU, LOGVAR, 3, baseline=[1.0])


# ---------------------------------------------------------------- tier 2a: exact identities
def test_naive_gradient_is_exactly_zero_although_the_true_one_is_not():
    for F in PROBLEMS.values():
        naive = E.naive_gradient(F, MU, LOGVAR, 50, generator=torch.Generator().manual_seed(0))
        assert torch.equal(naive.mu, torch.zeros(3)) and torch.equal(naive.logvar, torch.zeros(3))
        assert max_abs(F.gradient(MU, LOGVAR)) > 0.1


def test_gaussian_score_equals_autograd_of_log_density():
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    mu, logvar = MU.clone().requires_grad_(), LOGVAR.clone().requires_grad_()
    for i in range(6):
        g_mu, g_lv = torch.autograd.grad(log_normal_diag(z[i], mu, logvar), (mu, logvar))
        s = E.gaussian_score(z[i], MU, LOGVAR)
        torch.testing.assert_close(s.mu, g_mu)
        torch.testing.assert_close(s.logvar, g_lv)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_problem_gradient_is_the_derivative_of_its_value(name):
    F = PROBLEMS[name]
    mu, logvar = MU.double().requires_grad_(), LOGVAR.double().requires_grad_()
    F64 = type(F)(*(getattr(F, f).double() for f in getattr(F, "__dataclass_fields__", {})))
    g_mu, g_lv = torch.autograd.grad(F64.value(mu, logvar), (mu, logvar), allow_unused=True, materialize_grads=True)
    exact = F64.gradient(mu.detach(), logvar.detach())
    torch.testing.assert_close(exact.mu, g_mu)
    torch.testing.assert_close(exact.logvar, g_lv)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_problem_value_matches_monte_carlo(name):
    F = PROBLEMS[name]
    z = MU + torch.exp(0.5 * LOGVAR) * torch.randn(200_000, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    f = F(z.float()).double()
    se = f.std() / math.sqrt(f.numel())
    assert abs(f.mean() - F.value(MU, LOGVAR)) < Z_TOL * se  # 4 Monte-Carlo standard errors


def test_categorical_exact_against_autograd_and_linear_formula():
    logits = torch.tensor([1.0, 0.5, 0.0, -0.5, -1.0])
    f = torch.tensor([1.0, -1.0, 2.0, 0.0, -2.0])
    F = lambda z: (z @ f - 0.5) ** 2  # noqa: E731
    theta = logits.clone().requires_grad_()
    g = torch.tensor([(fk - 0.5) ** 2 for fk in f.tolist()])  # F at each one-hot vector, by hand
    (auto,) = torch.autograd.grad((torch.softmax(theta, -1) * g).sum(), theta)
    exact = E.categorical_exact(F, logits)
    torch.testing.assert_close(exact.gradient.logits, auto)
    torch.testing.assert_close(exact.value, (torch.softmax(logits, -1) * g).sum())
    # linear F: E[F] = softmax(theta)^T f, gradient J^T f with J = diag(p) - p p^T
    p = torch.softmax(logits, -1)
    lin = E.categorical_exact(E.LinearProblem(f), logits)
    torch.testing.assert_close(lin.gradient.logits, (torch.diag(p) - torch.outer(p, p)) @ f)


def test_straight_through_forward_is_hard_backward_is_soft():
    hard = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], requires_grad=True)
    soft = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], requires_grad=True)
    out = E.straight_through(hard, soft)
    assert torch.equal(out.detach(), hard.detach())
    w = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
    g_soft, g_hard = torch.autograd.grad((out * w).sum(), (soft, hard), allow_unused=True)
    torch.testing.assert_close(g_soft, w)  # d out / d soft = identity
    assert g_hard is None                  # no gradient reaches hard
    # through a downstream function: the soft input receives the gradient evaluated at the hard value
    soft2 = soft.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad((E.straight_through(hard.detach(), soft2) ** 2).sum(), soft2)
    torch.testing.assert_close(g, 2 * hard.detach())


def test_straight_through_is_exact_for_linear_F():
    logits, f = torch.tensor([0.3, -1.0, 0.8, 0.0]), torch.tensor([2.0, -1.0, 0.5, 3.0])
    exact = E.categorical_exact(E.LinearProblem(f), logits).gradient.logits
    per = E.straight_through_gradient_categorical(E.LinearProblem(f), logits, 20, per_sample=True).logits
    torch.testing.assert_close(per, exact.expand(20, 4))  # every sample gives J^T f: zero variance, zero bias


def test_straight_through_per_sample_formula():
    # per-sample estimate J^T grad_z F(e_k) with J the softmax Jacobian
    logits, c = torch.tensor([0.3, -1.0, 0.8]), torch.tensor([0.1, 0.7, 0.2])
    index = torch.tensor([0, 1, 2, 2])
    per = E.straight_through_gradient_categorical(E.QuadraticProblem(c), logits, index=index, per_sample=True).logits
    p = torch.softmax(logits, -1)
    J = torch.diag(p) - torch.outer(p, p)
    expected = torch.stack([J @ (2 * (torch.eye(3)[k] - c)) for k in index.tolist()])
    torch.testing.assert_close(per, expected)


# ---------------------------------------------------------------- tier 2b: unbiasedness (Monte Carlo)
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_score_function_and_reparam_are_unbiased(name):
    F = PROBLEMS[name]
    truth = F.gradient(MU, LOGVAR)
    for fn, kw in ((E.score_function_gradient, {}), (E.score_function_gradient, {"baseline": "loo"}),
                   (E.reparam_gradient, {})):
        stats = E.estimator_stats(lambda g: fn(F, MU, LOGVAR, 10, generator=g, **kw), 1500, seed=5)
        assert max_abs(E.standardized_bias(stats, truth)) < Z_TOL, (name, fn.__name__, kw)


def test_batched_comparison_is_unbiased_too():
    # compare_estimators draws all repeats at once; same tolerance, more repeats
    setup = E.make_setup("quadratic", 6)
    truth = setup.problem.gradient(setup.mu, setup.logvar)
    for m, s in E.compare_estimators(setup, 8, 4000, seed=1).items():
        assert s.repeats == 4000
        assert max_abs(E.standardized_bias(s, truth)) < Z_TOL, m


def test_batch_mean_baseline_is_biased_by_n_minus_one_over_n():
    # with n = 2 the batch-mean baseline halves the expected gradient; leave-one-out does not
    F, n = PROBLEMS["quadratic"], 2
    truth = F.gradient(MU, LOGVAR)
    mean_b = E.estimator_stats(lambda g: E.score_function_gradient(F, MU, LOGVAR, n, baseline="mean", generator=g), 8000)
    half = E.GaussianGradient(*(t * (n - 1) / n for t in truth))
    assert max_abs(E.standardized_bias(mean_b, half)) < Z_TOL
    assert max_abs(E.standardized_bias(mean_b, truth)) > 8  # and clearly not the true gradient


def test_gaussian_score_has_mean_zero():
    z = MU + torch.exp(0.5 * LOGVAR) * torch.randn(100_000, 3, generator=torch.Generator().manual_seed(4))
    s = E.gaussian_score(z, MU, LOGVAR)
    for v in s:
        assert (v.mean(0).abs() < Z_TOL * v.std(0) / math.sqrt(v.shape[0])).all()


@pytest.mark.parametrize("F", [E.LinearProblem(torch.tensor([1.0, -1.0, 2.0, 0.0, -2.0])),
                               lambda z: (z @ torch.tensor([1.0, -1.0, 2.0, 0.0, -2.0]) - 0.5) ** 2])
def test_categorical_score_function_unbiased_straight_through_biased(F):
    logits = torch.tensor([1.0, 0.5, 0.0, -0.5, -1.0])
    exact = E.categorical_exact(F, logits).gradient
    res = E.compare_categorical_estimators(F, logits, 8, 4000, seed=3)
    assert max_abs(E.standardized_bias(res["score function"], exact)) < Z_TOL
    assert max_abs(E.standardized_bias(res["score + leave-one-out"], exact)) < Z_TOL
    # the Gumbel straight-through estimator is biased for linear and non-linear F alike
    assert max_abs(E.standardized_bias(res["straight-through Gumbel"], exact)) > 3 * Z_TOL
    if not isinstance(F, E.LinearProblem):  # the softmax version is biased only for non-linear F
        st = res["straight-through"]
        assert max_abs(E.standardized_bias(st, exact)) > 10 * Z_TOL
        assert st.mean_variance() < res["score function"].mean_variance()  # but less noisy than plain REINFORCE


def test_gumbel_max_draws_the_right_categories():
    logits = torch.tensor([1.0, 0.0, -1.0])
    g = E.categorical._gumbel((40_000, 3), torch.Generator().manual_seed(0), torch.float32)
    freq = torch.bincount((logits + g).argmax(-1), minlength=3).float() / 40_000
    p = torch.softmax(logits, -1)
    assert ((freq - p).abs() < Z_TOL * torch.sqrt(p * (1 - p) / 40_000)).all()


# ---------------------------------------------------------------- tier 2c: variances
def test_reparam_variance_matches_formula_and_beats_score_function():
    # quadratic problem: per-sample reparam gradient for mu_j is 2 (z_j - c_j), so Var of an
    # n-sample mean is 4 sigma_j^2 / n; with 4000 repeats a variance has relative error ~2.2%, allow 10%
    setup, n = E.make_setup("quadratic", 4), 16  # sigma^2 = 1
    res = E.compare_estimators(setup, n, 4000, seed=2)
    torch.testing.assert_close(res["reparameterisation"].variance.mu, torch.full((4,), 4.0 / n), rtol=0.10, atol=0)
    assert res["score function"].mean_variance() > 10 * res["reparameterisation"].mean_variance()  # measured ~21x


def test_baselines_cut_the_score_function_variance():
    # measured reduction factors (d = 8, n = 16): constant E[F] 4.7x, leave-one-out 4.6x; at d = 64: ~34x
    res = E.compare_estimators(E.make_setup("quadratic", 8), 16, 2000, seed=0)
    base = res["score function"].mean_variance()
    assert base / res["score + baseline E[F]"].mean_variance() > 3.0
    assert base / res["score + leave-one-out"].mean_variance() > 3.0
    res64 = E.compare_estimators(E.make_setup("quadratic", 64), 16, 500, seed=0)
    assert res64["score function"].mean_variance() / res64["score + leave-one-out"].mean_variance() > 15.0


def test_variance_scaling_in_n_and_d():
    sweep_n = E.variance_sweep("quadratic", dims=(8,), n_samples=(4, 64), repeats=1000)
    for m, (v4, v64) in sweep_n.variance.items():
        assert 0.6 / 16 < v64 / v4 < 1.5 / 16, m  # variance ~ 1/n (ratio 1/16, +-50% for sampling noise)
    sweep_d = E.variance_sweep("quadratic", dims=(4, 64), n_samples=(16,), repeats=500)
    v = sweep_d.variance
    assert 0.8 < v["reparameterisation"][1] / v["reparameterisation"][0] < 1.25  # flat in d
    assert v["score function"][1] / v["score function"][0] > 30                 # ~d^2 at large d (measured ~77)
    assert 2 < v["score + leave-one-out"][1] / v["score + leave-one-out"][0] < 16  # ~d (measured ~6)


# ---------------------------------------------------------------- tier 3: a short descent
def test_descent_moves_with_unbiased_estimators_not_with_the_naive_one():
    setup = E.make_setup("quadratic", 8)
    F, start = setup.problem, float(setup.problem.value(setup.mu, setup.logvar))
    for method in ("naive", "loo", "reparam"):
        g = torch.Generator().manual_seed(0)
        mu, logvar = setup.mu.clone(), setup.logvar.clone()
        for _ in range(150):
            if method == "naive":
                grad = E.naive_gradient(F, mu, logvar, 8, generator=g)
            elif method == "loo":
                grad = E.score_function_gradient(F, mu, logvar, 8, baseline="loo", generator=g)
            else:
                grad = E.reparam_gradient(F, mu, logvar, 8, generator=g)
            mu, logvar = mu - 0.02 * grad.mu, logvar - 0.02 * grad.logvar
        end = float(F.value(mu, logvar))
        if method == "naive":
            assert end == start
        else:
            assert end < start / 3, (method, start, end)  # E[F] from 10 to about 2.4


# ---------------------------------------------------------------- figures and widget
def test_figures_and_widget_build():
    from vae_course import plotting, widgets

    axes = plotting.estimator_histograms("quartic", 2, 4, True, repeats=50)
    assert len(axes) == 3
    with pytest.raises(ValueError, match="results"):
        plotting.gradient_histograms(E.compare_estimators(E.make_setup("quadratic", 2), 4, 10), E.GaussianGradient(torch.zeros(2), torch.zeros(2)))
    ax = plotting.variance_plot(E.variance_sweep("quadratic", dims=(1, 4), n_samples=(8,), repeats=20))
    assert ax.get_xscale() == "log"
    logits = torch.tensor([0.5, 0.0, -0.5])
    res = E.compare_categorical_estimators(E.LinearProblem(torch.tensor([1.0, 2.0, 3.0])), logits, 4, 20)
    plotting.categorical_gradient_bars(res, E.categorical_exact(E.LinearProblem(torch.tensor([1.0, 2.0, 3.0])), logits).gradient)
    plotting.standardized_bias_plot({k: E.standardized_bias(v, E.categorical_exact(E.LinearProblem(torch.tensor([1.0, 2.0, 3.0])), logits).gradient) for k, v in res.items()})
    table = E.estimator_table(res, E.categorical_exact(E.LinearProblem(torch.tensor([1.0, 2.0, 3.0])), logits).gradient)
    assert list(table.index) == list(E.CATEGORICAL_METHODS)
    w = widgets.estimator_widget(repeats=20)
    assert len(w.children) >= 5
    plt.close("all")
