"""vae_course.flows: every log-determinant against torch.autograd.functional.jacobian, the autoregressive structure
of MADE, invertibility of planar layers, and the change-of-variables density checked by Monte Carlo
(E_q[r(z) / q(z)] = 1 for a normalised r narrower than q). Statistical tests are seeded and state their tolerance."""
import math

import pytest
import torch
from torch.autograd.functional import jacobian

from vae_course import flows
from vae_course.distributions import log_normal_std

F64 = torch.float64


def _randn(*shape, generator):
    return torch.randn(tuple(shape), generator=generator, dtype=F64)


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _log_abs_det(fn, z):
    """log|det d fn / dz| of a map R^m -> R^m at one point z (m,), by autograd."""
    return torch.linalg.slogdet(jacobian(fn, z))[1]


# ---------------------------------------------------------------- planar
@pytest.mark.parametrize("seed", range(5))
def test_planar_log_det_matches_the_autograd_jacobian(seed):
    g = _g(seed)
    m = 3
    w, u, b = _randn(m, generator=g), _randn(m, generator=g), _randn(generator=g)
    u = flows.planar_invertible_u(w, u)
    for z in _randn(4, m, generator=g):
        got = flows.planar_log_det(z, w, u, b)
        want = _log_abs_det(lambda v: flows.planar_transform(v, w, u, b)[0], z)
        assert torch.allclose(got, want, atol=1e-9), (got, want)


def test_planar_log_det_is_batched_over_points_and_parameters():
    g = _g(7)
    z, w, u = (_randn(5, 2, generator=g) for _ in range(3))
    b = _randn(5, generator=g)
    got = flows.planar_log_det(z, w, u, b)
    assert got.shape == (5,)
    for i in range(5):
        assert torch.allclose(got[i], flows.planar_log_det(z[i], w[i], u[i], b[i]))


def test_planar_invertible_u_keeps_w_dot_u_above_minus_one_even_for_adversarial_u():
    g = _g(1)
    w = _randn(100, 4, generator=g)
    u = -10 * w + 0.1 * _randn(100, 4, generator=g)  # w.u far below -1: the unconstrained layer folds space
    uh = flows.planar_invertible_u(w, u)
    assert ((w * uh).sum(-1) >= -1 - 1e-12).all()  # m(a) = -1 + softplus(a) > -1; it rounds to -1 for a << 0
    wu = (w * u).sum(-1, keepdim=True)
    assert torch.allclose(uh, u + (torch.nn.functional.softplus(wu) - 1 - wu) * w / w.pow(2).sum(-1, keepdim=True))


def test_an_invertible_planar_layer_is_monotone_along_w():
    # f restricted to the line z = t w / |w| is t -> t + (w.u/|w|) tanh(|w| t + b): increasing iff w.u > -1
    w = torch.tensor([1.5, -0.5], dtype=F64)
    u = flows.planar_invertible_u(w, torch.tensor([-3.0, 1.0], dtype=F64))
    t = torch.linspace(-4, 4, 2001, dtype=F64)
    along = flows.planar_transform(t[:, None] * w / w.norm(), w, u, torch.tensor(0.3, dtype=F64))[0] @ (w / w.norm())
    assert (along.diff() > 0).all()


def test_planar_flow_module_with_context_gives_each_example_its_own_layer():
    torch.manual_seed(0)
    layer = flows.PlanarFlow(2, context_dim=3, generator=_g(2)).double()
    with torch.no_grad():
        layer.amortize.weight.normal_(generator=_g(3))
    h = _randn(4, 3, generator=_g(4))
    z = _randn(6, 4, 2, generator=_g(5))  # 6 draws for each of 4 examples
    out, log_det = layer(z, h)
    assert out.shape == (6, 4, 2) and log_det.shape == (6, 4)
    for i in range(4):
        fn = lambda v: layer(v.reshape(1, 1, 2).expand(1, 4, 2), h)[0][0, i]  # noqa: E731
        assert torch.allclose(log_det[0, i], _log_abs_det(fn, z[0, i]), atol=1e-9)
    with pytest.raises(ValueError, match="context: got None"):
        layer(z)


# ---------------------------------------------------------------- MADE and IAF
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("m", [1, 2, 5])
def test_made_outputs_depend_only_on_earlier_inputs(m, reverse):
    torch.manual_seed(0)
    made = flows.MADE(m, hidden=16, context_dim=2, reverse=reverse).double()
    with torch.no_grad():
        made.out.weight.normal_(generator=_g(1))  # the zero initialisation would make every derivative vanish
    z, h = _randn(m, generator=_g(2)), _randn(2, generator=_g(3))
    for k in range(2):
        J = jacobian(lambda v: made(v, h)[k], z)  # (m, m): d output_i / d z_j
        order = torch.arange(m).flip(0) if reverse else torch.arange(m)
        J = J[order][:, order]  # in the autoregressive order, allowed entries are strictly below the diagonal
        assert torch.equal(J.triu() == 0, torch.ones(m, m, dtype=torch.bool)), J
        if m > 1:
            assert J.tril(-1).abs().sum() > 0  # and they are used


@pytest.mark.parametrize("reverse", [False, True])
def test_iaf_log_det_matches_the_autograd_jacobian(reverse):
    torch.manual_seed(1)
    layer = flows.IAFLayer(4, hidden=12, context_dim=3, reverse=reverse).double()
    with torch.no_grad():
        layer.made.out.weight.normal_(std=0.5, generator=_g(4))
        layer.made.out.bias.normal_(std=0.5, generator=_g(5))
    h = _randn(3, generator=_g(6))
    for z in _randn(3, 4, generator=_g(7)):
        got = layer(z, h)[1]
        assert torch.allclose(got, _log_abs_det(lambda v: layer(v, h)[0], z), atol=1e-9)


@pytest.mark.parametrize("kind", flows.FLOWS)
def test_a_stack_sums_the_log_determinants_of_its_layers(kind):
    torch.manual_seed(2)
    flow = flows.build_flow(kind, 3, 3, context_dim=2, hidden=8, seed=3).double()
    for p in flow.parameters():  # away from the near-identity initialisation
        with torch.no_grad():
            p.add_(0.3 * _randn(*p.shape, generator=_g(8)))
    h = _randn(2, generator=_g(9))
    z = _randn(3, generator=_g(10))
    got = flow(z, h)[1]
    assert torch.allclose(got, _log_abs_det(lambda v: flow(v, h)[0], z), atol=1e-8)
    identity = flows.build_flow(kind, 3, 0).double()
    out, zero = identity(z)
    assert torch.equal(out, z) and zero.item() == 0.0


@pytest.mark.parametrize("kind", flows.FLOWS)
def test_the_change_of_variables_density_is_normalised_by_monte_carlo(kind):
    """q(z_K) = N(z_0) / |det| must satisfy E_q[r(z)/q(z)] = integral of r = 1 for a normalised r (here N(0, 0.5^2 I),
    narrower than q, so that the ratio stays bounded); a flipped log-determinant moves the mean far away.
    200,000 draws; tolerance 5 standard errors."""
    torch.manual_seed(3)
    flow = flows.build_flow(kind, 2, 2, hidden=8, seed=4).double()
    for p in flow.parameters():
        with torch.no_grad():
            p.add_(0.3 * _randn(*p.shape, generator=_g(11)))
    z0 = _randn(200_000, 2, generator=_g(12))
    with torch.no_grad():
        z, log_det = flow(z0)
    log_q = log_normal_std(z0) - log_det
    log_r = log_normal_std(z / 0.5) - 2 * math.log(0.5)
    ratio = torch.exp(log_r - log_q)
    mean, se = ratio.mean(), ratio.std() / math.sqrt(len(ratio))
    assert abs(mean - 1) < 5 * se and se < 0.02, (mean, se)
    wrong = torch.exp(log_r - (log_normal_std(z0) + log_det)).mean()  # the sign of the log-determinant flipped
    assert abs(wrong - 1) > 20 * se


def test_build_flow_refuses_unknown_kinds_and_negative_sizes():
    with pytest.raises(ValueError, match="flow: got 'radial'"):
        flows.build_flow("radial", 2, 1)
    with pytest.raises(ValueError, match="flow_layers"):
        flows.build_flow("planar", 2, -1)
    with pytest.raises(ValueError, match="mask"):
        flows.MaskedLinear(3, 2, torch.ones(3, 3))
