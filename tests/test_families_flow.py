"""vae_course.families.coupling_flow: invertibility, every log-determinant against torch.autograd's Jacobian,
the triangular Jacobian of a coupling, a 2-D density that integrates to 1 (brute-force grid), samples whose moments
match that density, the layer-by-layer densities and coordinates, dequantisation and its bound against a
brute-force discrete likelihood, checkpoints, errors, and short runs that show the learning effect."""
import itertools
import math

import pytest
import torch

import vae_course as vc
from vae_course.families import AffineCoupling, CouplingFlow, Permutation, Sigmoid, dequantize

torch.set_default_dtype(torch.float32)


def _randomised(flow, seed=0, scale=0.4):
    """A flow whose couplings are not the identity (a new flow starts as the identity: zero last layers)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in flow.named_parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g) + (1.0 if name.endswith("scale") else 0.0))
    return flow


def _jacobian_log_det(fn, x):
    """log |det J| of fn at each row of x, by autograd: the independent reference."""
    return torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(fn, row[None])[0, :, 0]).logabsdet
                        for row in x])


def _grid(lo, hi, n):
    g = torch.linspace(lo, hi, n, dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    return pts, ((hi - lo) / (n - 1)) ** 2


# ---------------------------------------------------------------- tier 1: shapes and errors
def test_a_new_flow_is_the_identity_and_shapes_follow_x_shape():
    flow = CouplingFlow(x_shape=(1, 3, 4), n_couplings=3, hidden=(8,), permutation="random")
    z = torch.randn(5, 12)
    x, log_det = flow.transform(z)
    assert torch.equal(x, z[:, flow.coordinate_order(6)]) and torch.equal(log_det, torch.zeros(5))
    assert flow.log_density(torch.randn(5, 1, 3, 4)).shape == (5,)
    assert flow.sample(4).shape == (4, 1, 3, 4)
    assert len(flow.layers) == 6 and len(flow.trajectory(z)) == 4


@pytest.mark.parametrize("kwargs,match", [
    ({"x_shape": (1,)}, "at least 2 coordinates"), ({"x_shape": ()}, "x_shape"), ({"n_couplings": 0}, "n_couplings"),
    ({"permutation": "shuffle"}, "permutation"), ({"n_levels": 1}, "n_levels"), ({"activation": "swish"}, "activation"),
    ({"seed": -1}, "seed"),
])
def test_config_errors_name_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        CouplingFlow(**kwargs)


def test_bad_inputs_get_clear_errors():
    flow = CouplingFlow()
    with pytest.raises(ValueError, match=r"x: got shape \(3, 3\); need \(B, 2\)"):
        flow.log_density(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="z: got shape"):
        flow.sample(2, z=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="mask"):
        AffineCoupling(torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="perm"):
        Permutation(torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="alpha"):
        Sigmoid(0.5)
    with pytest.raises(ValueError, match="n_levels"):
        dequantize(torch.zeros(3), 1)


# ---------------------------------------------------------------- tier 2: against independent references
LAYERS = {
    "coupling": lambda: AffineCoupling(torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0]), (7,), "tanh"),
    "permutation": lambda: Permutation(torch.tensor([3, 0, 4, 1, 2])),
    "sigmoid": lambda: Sigmoid(0.05),
}


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_each_layer_inverts_and_its_log_det_is_autograds(make):
    torch.set_default_dtype(torch.float64)
    try:
        layer = make()
        if list(layer.parameters()):
            _randomised(layer, seed=1, scale=0.8)
        h = torch.randn(6, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        y, log_det = layer(h)
        back, inv_log_det = layer.inverse(y)
        assert torch.allclose(back, h, atol=1e-10)
        assert torch.allclose(log_det, _jacobian_log_det(lambda v: layer(v)[0], h), atol=1e-10)
        assert torch.allclose(inv_log_det, -log_det, atol=1e-10)
    finally:
        torch.set_default_dtype(torch.float32)


def test_a_coupling_jacobian_is_triangular_with_exp_s_on_the_diagonal():
    torch.set_default_dtype(torch.float64)
    try:
        mask = torch.tensor([1.0, 1.0, 0.0, 0.0])                           # a = {0, 1}, b = {2, 3}
        layer = _randomised(AffineCoupling(mask, (6,)), seed=3, scale=0.8)
        h = torch.randn(1, 4, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda v: layer(v)[0], h)[0, :, 0]  # (4, 4): dy_i / dh_j
        s, _ = layer._s_t(h * mask)
        assert torch.equal(jac[:2, :2], torch.eye(2)) and torch.all(jac[:2, 2:] == 0)  # y_a = h_a
        assert torch.allclose(jac[2:, 2:], torch.diag(s[0, 2:].exp()), atol=1e-12)      # y_b elementwise in h_b
        assert torch.any(jac[2:, :2] != 0)  # y_b does depend on h_a: the Jacobian is triangular, not diagonal
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("kwargs", [dict(), dict(x_shape=(6,), permutation="random", n_levels=3)],
                         ids=["2-D, reverse", "6-D, random, sigmoid"])
def test_the_whole_flow_inverts_and_its_log_det_is_autograds(kwargs):
    torch.set_default_dtype(torch.float64)
    try:
        flow = _randomised(CouplingFlow(n_couplings=3, hidden=(8,), **kwargs), seed=4)
        d = flow.config.x_dim
        z = torch.randn(5, d, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        x, log_det = flow.transform(z)
        assert torch.allclose(flow.inverse(x)[0], z, atol=1e-9)
        assert torch.allclose(log_det, _jacobian_log_det(lambda v: flow.transform(v)[0], z), atol=1e-9)
        # the change of variables, written out: log p(x) = log N(z) - log|det J_f(z)|
        want = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) - log_det
        assert torch.allclose(flow.log_density(x), want, atol=1e-9)
    finally:
        torch.set_default_dtype(torch.float32)


def test_a_2d_flow_density_integrates_to_one_on_a_grid():
    flow = _randomised(CouplingFlow(n_couplings=4, hidden=(16,)), seed=6).double()
    pts, area = _grid(-9.0, 9.0, 601)
    with torch.no_grad():
        mass = float(flow.log_density(pts).exp().sum() * area)
    assert abs(mass - 1.0) < 5e-3, mass


@pytest.mark.parametrize("upto", [2, 4, 5])
def test_the_density_after_the_first_layers_integrates_to_one_too(upto):
    flow = _randomised(CouplingFlow(n_couplings=4, hidden=(16,)), seed=7).double()
    pts, area = _grid(-9.0, 9.0, 401)
    with torch.no_grad():
        assert abs(float(flow.log_density(pts, upto=upto).exp().sum() * area) - 1.0) < 5e-3


def test_samples_have_the_mean_and_covariance_of_the_density():
    flow = _randomised(CouplingFlow(n_couplings=4, hidden=(16,)), seed=8).double()
    pts, area = _grid(-9.0, 9.0, 601)
    with torch.no_grad():
        w = flow.log_density(pts).exp() * area                              # (G,): the grid's probability masses
        mean = (w[:, None] * pts).sum(0) / w.sum()
        cov = ((pts - mean).T * w) @ (pts - mean) / w.sum()
        n = 40_000
        x = flow.sample(n, z=torch.randn(n, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64))
    # standard errors: sd / sqrt(n) for the mean, about sd^2 * sqrt(2 / n) for the covariance; allow 5 of them
    sd = cov.diagonal().sqrt()
    assert torch.all((x.mean(0) - mean).abs() < 5 * sd / math.sqrt(n)), (x.mean(0), mean)
    assert torch.all((torch.cov(x.T) - cov).abs() < 5 * sd[:, None] * sd[None, :] * math.sqrt(2 / n)), (torch.cov(x.T), cov)


def test_trajectory_and_coordinate_order_follow_the_permutations():
    flow = _randomised(CouplingFlow(n_couplings=3, hidden=(8,)), seed=10)
    z = torch.randn(4, 2)
    states = flow.trajectory(z)
    assert torch.allclose(states[-1], flow.transform(z)[0]) and torch.allclose(states[1], flow.transform(z, upto=2)[0])
    assert [flow.coordinate_order(u).tolist() for u in (0, 2, 4)] == [[0, 1], [1, 0], [0, 1]]  # "reverse" swaps


def test_dequantized_pixels_stay_in_their_cells():
    x = torch.tensor([0.0, 0.5, 1.0, 1.0])                                  # levels 0, 1, 2, 2 of L = 3
    v = dequantize(x, 3, generator=torch.Generator().manual_seed(11))
    assert torch.all(torch.floor(v * 3) == torch.tensor([0.0, 1.0, 2.0, 2.0]))
    assert torch.equal(dequantize(torch.tensor([0.0, 1.0]), 2, u=torch.tensor([0.25, 0.5])), torch.tensor([0.125, 0.75]))


@pytest.fixture(scope="module")
def two_pixel_model():
    """A dequantised flow on 2 binary pixels and its exact discrete P(x), by brute-force integration over each cell."""
    flow = _randomised(CouplingFlow(x_shape=(2,), n_couplings=2, hidden=(8,), n_levels=2, alpha=0.05), seed=12).double()
    n = 400
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n                    # midpoints of n cells per axis
    uu = torch.stack(torch.meshgrid(u, u, indexing="xy"), -1).reshape(-1, 2)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)), dtype=torch.float64)
    with torch.no_grad():
        exact = torch.stack([torch.log(flow.log_density((x + uu) / 2).exp().mean() / 4) for x in images])
    return flow, images, exact


def test_the_discrete_model_of_a_dequantised_flow_sums_to_at_most_one(two_pixel_model):
    flow, images, exact = two_pixel_model
    total = float(exact.exp().sum())
    assert 0.9 < total <= 1.0 + 1e-4, total  # the flow's mass outside the unit square is lost, nothing more


def test_the_dequantisation_bound_is_below_log_p_and_tightens_to_it_with_k(two_pixel_model):
    flow, images, exact = two_pixel_model
    g = torch.Generator().manual_seed(13)
    with torch.no_grad():
        one = torch.stack([flow.log_prob(images, k=1, generator=g) for _ in range(400)]).mean(0)
        many = flow.log_prob(images, k=4000, generator=g)
    assert torch.all(one < exact - 1e-3), (one, exact)                       # Jensen: strictly below here
    assert torch.allclose(many, exact, atol=0.02), (many, exact)            # and converges to log P(x)


def test_continuous_log_prob_is_the_density_and_a_checkpoint_rebuilds_the_flow(tmp_path):
    flow = _randomised(CouplingFlow(x_shape=(1, 2, 2), n_couplings=2, hidden=(8,), permutation="random", seed=3), seed=14)
    x = torch.randn(5, 1, 2, 2)
    assert torch.equal(flow.log_prob(x), flow.log_density(x))
    vc.checkpoint.save_checkpoint(tmp_path / "f.pt", flow)
    loaded = vc.checkpoint.load_checkpoint(tmp_path / "f.pt").model
    assert loaded.config == flow.config and torch.allclose(loaded.log_density(x), flow.log_density(x))


# ---------------------------------------------------------------- tier 3: learning
def test_the_flow_learns_two_moons():
    x = vc.data.toy_2d("two_moons", 2000, seed=0)
    x_test = vc.data.toy_2d("two_moons", 1000, seed=1)
    flow = CouplingFlow(n_couplings=4, hidden=(32, 32))
    before = float(flow.log_prob(x_test).mean().detach())                         # the identity flow: N(0, I)
    torch.manual_seed(0)
    vc.train.fit(flow, x, epochs=15, batch_size=200, lr=3e-3, progress=False, device="cpu")
    with torch.no_grad():
        after = float(flow.log_prob(x_test).mean())
    assert after > before + 1.0, (before, after)                           # N(0, I) gives about -2.5 nats per point


def test_the_dequantised_flow_learns_binary_digits():
    data = vc.data.digits(binarize="static")
    torch.manual_seed(0)
    flow = CouplingFlow(x_shape=(1, 8, 8), n_couplings=4, hidden=(64,), n_levels=2, permutation="random")
    history = vc.train.fit(flow, data, epochs=3, lr=2e-3, progress=False, device="cpu")
    assert history.test["loss"][-1] < 64 * math.log(2) - 3                  # better than a fair coin per pixel
