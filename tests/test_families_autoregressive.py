"""vae_course.families.autoregressive: the finite-memory and GRU models of binary images. Normalisation (the
probabilities of all 2^9 images of a 3x3 model sum to 1), causality and the exact finite-memory band (measured by
the Jacobian), sampling that follows the model's conditionals (frequencies of all 16 images of a 2x2 model), the
sampling path against teacher forcing, checkpoints, errors, and short runs that show the learning effect."""
import itertools
import math

import pytest
import torch
from torch import nn

import vae_course as vc
from vae_course.families import GRUAR, FiniteMemoryAR, finite_memory_mask

ALL_3X3 = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9)))  # (512, 9): every binary 3x3 image
ALL_2X2 = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # (16, 4)


def _randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """The model with every parameter drawn at random (the position biases start at 0), so no output is trivially 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=g))
    return model


MODELS = {
    "finite k=0": lambda shape: FiniteMemoryAR(x_shape=shape, memory=0, hidden=8),
    "finite k=1": lambda shape: FiniteMemoryAR(x_shape=shape, memory=1, hidden=8),
    "finite k=3": lambda shape: FiniteMemoryAR(x_shape=shape, memory=3, hidden=8, activation="tanh"),
    "finite k=20": lambda shape: FiniteMemoryAR(x_shape=shape, memory=20, hidden=8),  # longer than the image
    "gru": lambda shape: GRUAR(x_shape=shape, hidden=8, position_dim=3),
    "gru, no positions": lambda shape: GRUAR(x_shape=shape, hidden=8, position_dim=0),
}
each_model = pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())


# ---------------------------------------------------------------- tier 1: shapes and errors
@each_model
def test_shapes_of_log_prob_loss_and_samples(make):
    model = make((1, 3, 4))
    x = torch.bernoulli(torch.full((5, 1, 3, 4), 0.5))
    assert model.log_prob(x).shape == (5,) and model.log_prob(x.reshape(5, 12)).shape == (5,)
    out = model.loss(x)
    assert out.loss.shape == () and set(out.terms) == {"loss", "bits_per_dim"}
    assert math.isclose(float(out.terms["bits_per_dim"].detach()), float(out.loss.detach()) / (12 * math.log(2)), rel_tol=1e-6)
    s = model.sample(7, generator=torch.Generator().manual_seed(0))
    assert s.shape == (7, 1, 3, 4) and set(s.unique().tolist()) <= {0.0, 1.0}


def test_the_finite_memory_mask_is_the_band_below_the_diagonal():
    d, k = 7, 3
    want = torch.tensor([[1.0 if i - k <= j < i else 0.0 for j in range(d)] for i in range(d)])
    assert torch.equal(finite_memory_mask(d, k), want)
    assert torch.equal(finite_memory_mask(4, 0), torch.zeros(4, 4))
    assert torch.equal(finite_memory_mask(4, 10), torch.ones(4, 4).tril(-1))


@pytest.mark.parametrize("kwargs,match", [
    ({"x_shape": (8, 8)}, "x_shape"), ({"x_shape": (1, 0, 8)}, r"x_shape\[1\]"), ({"memory": -1}, "memory"),
    ({"hidden": 0}, "hidden"), ({"activation": "swish"}, "activation"),
])
def test_finite_memory_config_errors_name_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        FiniteMemoryAR(**kwargs)


@pytest.mark.parametrize("kwargs,match", [({"hidden": 0}, "hidden"), ({"position_dim": -2}, "position_dim"),
                                          ({"x_shape": (1, 8)}, "x_shape")])
def test_gru_config_errors_name_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GRUAR(**kwargs)


@each_model
def test_bad_images_get_a_clear_error(make):
    model = make((1, 3, 3))
    with pytest.raises(ValueError, match=r"x: got shape \(2, 1, 4, 4\); need \(B, 1, 3, 3\) or \(B, 9\)"):
        model.log_prob(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="other than 0 and 1"):
        model.log_prob(torch.full((2, 9), 0.5))
    with pytest.raises(TypeError, match="floating"):
        model.log_prob(torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="n: got 0"):
        model.sample(0)


# ---------------------------------------------------------------- tier 2: against independent references
@each_model
def test_the_probabilities_of_all_512_images_of_a_3x3_model_sum_to_one(make):
    model = _randomised(make((1, 3, 3)), seed=1)
    with torch.no_grad():
        total = torch.logsumexp(model.log_prob(ALL_3X3).double(), 0)
    assert abs(float(total)) < 1e-5  # log 1 = 0; float32 sums of 9 terms


@each_model
def test_logit_i_never_depends_on_pixels_j_at_or_after_i(make):
    model = _randomised(make((1, 3, 3)), seed=2)
    x = torch.bernoulli(torch.full((1, 9), 0.5), generator=torch.Generator().manual_seed(3))
    jac = torch.autograd.functional.jacobian(lambda v: model.logits(v)[0], x)[:, 0]  # (9, 9): d logit_i / d x_j
    assert torch.all(jac.triu() == 0), jac  # exactly zero on and above the diagonal


@pytest.mark.parametrize("k", [1, 2, 4])
def test_a_finite_memory_logit_reads_exactly_the_previous_k_pixels(k):
    model = _randomised(FiniteMemoryAR(x_shape=(1, 3, 3), memory=k, hidden=8, activation="tanh"), seed=4)
    x = torch.bernoulli(torch.full((1, 9), 0.5), generator=torch.Generator().manual_seed(5))
    jac = torch.autograd.functional.jacobian(lambda v: model.logits(v)[0], x)[:, 0]
    assert torch.equal((jac != 0).float(), finite_memory_mask(9, k))


def test_a_gru_logit_reads_every_earlier_pixel():
    model = _randomised(GRUAR(x_shape=(1, 3, 3), hidden=8), seed=6)
    x = torch.bernoulli(torch.full((1, 9), 0.5), generator=torch.Generator().manual_seed(7))
    jac = torch.autograd.functional.jacobian(lambda v: model.logits(v)[0], x)[:, 0]
    assert torch.equal((jac != 0).float(), torch.ones(9, 9).tril(-1))  # long-range memory: the whole past


@each_model
def test_the_sampling_steps_give_the_teacher_forced_logits(make):
    model = _randomised(make((1, 3, 4)), seed=8).eval()
    x = torch.bernoulli(torch.full((6, 12), 0.5), generator=torch.Generator().manual_seed(9))
    state, steps = model._start(6, x.device), []
    with torch.no_grad():
        for i in range(12):
            logit, state = model._step(state, x, i)
            steps.append(logit)
        assert torch.allclose(torch.stack(steps, 1), model.logits(x), atol=1e-5)


@each_model
def test_sample_frequencies_match_the_probabilities_of_all_16_images(make):
    model = _randomised(make((1, 2, 2)), seed=10)
    n = 40_000
    x = model.sample(n, generator=torch.Generator().manual_seed(11)).reshape(n, 4)
    codes = (x * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()  # the row of ALL_2X2 each sample is
    freq = torch.bincount(codes, minlength=16).double() / n
    with torch.no_grad():
        p = model.log_prob(ALL_2X2).exp().double()
    # each frequency has standard deviation sqrt(p (1 - p) / n) <= 0.0025; allow 5 of them
    assert torch.all((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt() + 1e-4), (freq, p)


@pytest.mark.parametrize("make", [MODELS["finite k=3"], MODELS["gru"]], ids=["finite", "gru"])
def test_a_checkpoint_rebuilds_the_model(make, tmp_path):
    model = _randomised(make((1, 3, 3)), seed=12)
    vc.checkpoint.save_checkpoint(tmp_path / "m.pt", model)
    loaded = vc.checkpoint.load_checkpoint(tmp_path / "m.pt").model
    assert type(loaded) is type(model) and loaded.config == model.config
    assert torch.allclose(loaded.log_prob(ALL_3X3), model.log_prob(ALL_3X3))


# ---------------------------------------------------------------- tier 3: learning
@pytest.fixture(scope="module")
def digits():
    return vc.data.digits(binarize="static")


def _fit(model, data, epochs, lr=3e-3):
    torch.manual_seed(0)
    return vc.train.fit(model, data, epochs=epochs, lr=lr, progress=False, device="cpu")


def test_memory_helps_the_finite_memory_model_on_digits(digits):
    no_memory = _fit(FiniteMemoryAR(memory=0, hidden=32), digits, 4).test["loss"][-1]
    one_row = _fit(FiniteMemoryAR(memory=8, hidden=32), digits, 4).test["loss"][-1]
    assert no_memory < 64 * math.log(2) - 3  # better than a fair coin per pixel (44.4 nats)
    assert one_row < no_memory - 5  # seeing the previous row is worth several nats per image


def test_the_gru_learns_on_digits(digits):
    history = _fit(GRUAR(hidden=32), digits, 3, lr=5e-3)
    assert history.test["loss"][-1] < history.test["loss"][0] - 3 < 64 * math.log(2)
