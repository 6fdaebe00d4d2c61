"""vae_course.models.masked: masks, causality of masked convolutions and of the PixelCNN, normalisation,
sampling that follows the model's conditionals, and a short run where the PixelCNN learns pixel dependence."""
import itertools
import math

import pytest
import torch

from vae_course.models.masked import MaskedConv2d, PixelCNN, causal_mask


# ---------------------------------------------------------------- tier 1: shapes and errors
def test_causal_masks_of_type_a_and_b():
    a, b = causal_mask(3, "A"), causal_mask(3, "B")
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert causal_mask(5, "A").sum() == 12 and causal_mask(5, "B").sum() == 13  # 2 rows of 5 + 2 (+ centre)


@pytest.mark.parametrize("kwargs,match", [({"kernel_size": 4, "mask_type": "A"}, "kernel_size"),
                                          ({"kernel_size": 3, "mask_type": "C"}, "mask_type")])
def test_mask_errors_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        causal_mask(**kwargs)
    with pytest.raises(ValueError, match=match):
        MaskedConv2d(1, 2, **kwargs)


def test_pixelcnn_shapes_for_binary_images_and_code_maps():
    torch.manual_seed(0)
    binary = PixelCNN(1, 16, 2, cond_dim=3)
    x = torch.bernoulli(torch.full((4, 1, 6, 5), 0.5))
    assert binary(x, torch.randn(4, 3)).shape == (4, 1, 6, 5)
    assert binary(x, torch.randn(4, 3, 6, 5)).shape == (4, 1, 6, 5)  # a conditioning map
    assert binary.log_prob(x, torch.randn(4, 3)).shape == (4,)
    codes = PixelCNN(7, 16, 2, 7, categorical=True)
    c = torch.randint(0, 7, (3, 4, 4))
    assert codes(c).shape == (3, 7, 4, 4) and codes.log_prob(c).shape == (3,)
    s = codes.sample((2, 4, 4))
    assert s.dtype == torch.long and s.shape == (2, 4, 4) and 0 <= int(s.min()) and int(s.max()) < 7
    sb = binary.sample((2, 1, 3, 3), torch.randn(2, 3))
    assert sb.shape == (2, 1, 3, 3) and set(sb.unique().tolist()) <= {0.0, 1.0}


def test_pixelcnn_errors_name_the_argument():
    net = PixelCNN(1, 8, 1, cond_dim=2)
    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="cond"):
        net(x)
    with pytest.raises(ValueError, match="cond"):
        net(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="cond"):
        PixelCNN(1, 8, 1)(x, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="x"):
        net(torch.zeros(2, 2, 4, 4), torch.zeros(2, 2))
    codes = PixelCNN(5, 8, 1, categorical=True)
    with pytest.raises(ValueError, match="x"):
        codes(torch.zeros(2, 4, 4))  # floats, not codes
    with pytest.raises(ValueError, match=r"x: codes in \[5, 5\]; need values in \[0, 5\)"):
        codes(torch.full((2, 4, 4), 5))
    with pytest.raises(ValueError, match="n_out_per_pixel"):
        PixelCNN(5, 8, 1, 3, categorical=True)
    with pytest.raises(ValueError, match="shape"):
        net.sample((2, 4, 4), torch.zeros(2, 2))


# ---------------------------------------------------------------- tier 2: causality, normalisation, sampling
def _input_gradient(layer, x, r, c, cond=None):
    """d out[:, :, r, c] / d x for a sum over output channels: (C, H, W) absolute values."""
    x = x.clone().requires_grad_(True)
    out = layer(x) if cond is None else layer(x, cond)
    out[0, :, r, c].sum().backward()
    return x.grad[0].abs()


def _at_or_after(h, w, r, c):
    """Boolean (H, W) map of the pixels at or after (r, c) in raster order."""
    idx = torch.arange(h * w).reshape(h, w)
    return idx >= r * w + c


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_output_never_depends_on_later_inputs(mask_type):
    torch.manual_seed(1)
    layer = MaskedConv2d(2, 3, 5, mask_type)
    x = torch.randn(1, 2, 6, 7)
    for r, c in itertools.product(range(6), range(7)):
        g = _input_gradient(layer, x, r, c).sum(0)  # (H, W)
        later = _at_or_after(6, 7, r, c)
        later[r, c] = False  # the centre is checked separately below
        assert float(g[later].abs().sum()) == 0.0, (r, c)
        centre = float(g[r, c])
        if mask_type == "A":
            assert centre == 0.0  # mask A excludes the pixel itself
        else:
            assert centre > 0.0  # mask B includes it
        if (r, c) != (0, 0):
            assert float(g[~_at_or_after(6, 7, r, c)].sum()) > 0  # it does see something before it (within reach)


@pytest.mark.parametrize("cond_kind", ["none", "vector", "map"])
def test_stacked_pixelcnn_is_causal_checked_with_gradients(cond_kind):
    torch.manual_seed(2)
    cond_dim = None if cond_kind == "none" else 3
    net = PixelCNN(1, 8, 3, cond_dim=cond_dim, first_kernel=5)
    h, w = 6, 6
    cond = {"none": None, "vector": torch.randn(1, 3), "map": torch.randn(1, 3, h, w)}[cond_kind]
    x = torch.bernoulli(torch.full((1, 1, h, w), 0.5))
    for r, c in itertools.product(range(h), range(w)):
        g = _input_gradient(net, x, r, c, cond)[0]
        assert float(g[_at_or_after(h, w, r, c)].sum()) == 0.0, (r, c)  # nothing at or after (r, c), centre included


def test_categorical_pixelcnn_is_causal_checked_by_changing_later_codes():
    torch.manual_seed(3)
    net = PixelCNN(4, 8, 2, categorical=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (1, 5, 5), generator=g)
    base = net(x)
    for r, c in itertools.product(range(5), range(5)):
        y = x.clone()
        later = _at_or_after(5, 5, r, c)
        y[0][later] = torch.randint(0, 4, (int(later.sum()),), generator=g)
        assert torch.equal(net(y)[..., r, c], base[..., r, c]), (r, c)


def test_conditioning_changes_the_logits():
    torch.manual_seed(4)
    net = PixelCNN(1, 8, 1, cond_dim=2)
    x = torch.zeros(1, 1, 4, 4)
    assert not torch.allclose(net(x, torch.zeros(1, 2)), net(x, torch.ones(1, 2)))


def _all_binary(h, w):
    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=h * w)))
    return bits.reshape(-1, 1, h, w)


def test_probabilities_of_all_images_sum_to_one():
    # an autoregressive model is normalised by construction: sum over all 2^6 images of p(x) = 1
    torch.manual_seed(5)
    net = PixelCNN(1, 8, 2, cond_dim=2)
    x = _all_binary(2, 3)
    z = torch.randn(1, 2).expand(len(x), 2)
    total = torch.logsumexp(net.log_prob(x, z), 0).exp()
    assert abs(float(total.detach()) - 1.0) < 1e-5
    codes = PixelCNN(3, 8, 1, categorical=True)
    allc = torch.tensor(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2)
    assert abs(float(torch.logsumexp(codes.log_prob(allc), 0).exp().detach()) - 1.0) < 1e-5


def test_log_prob_matches_torch_distributions():
    torch.manual_seed(6)
    net = PixelCNN(1, 8, 1)
    x = torch.bernoulli(torch.full((3, 1, 4, 4), 0.4))
    ref = torch.distributions.Bernoulli(logits=net(x)).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(net.log_prob(x), ref, atol=1e-5)
    codes = PixelCNN(5, 8, 1, categorical=True)
    c = torch.randint(0, 5, (3, 3, 3))
    ref = torch.distributions.Categorical(logits=codes(c).permute(0, 2, 3, 1)).log_prob(c).sum((1, 2))
    assert torch.allclose(codes.log_prob(c), ref, atol=1e-5)


def test_samples_follow_the_model_distribution():
    # 4000 draws of a 2x2 image against the exact p(x) of its 16 configurations; total variation < 0.04
    # (the expected TV of 4000 multinomial draws over 16 cells is about 0.02)
    torch.manual_seed(7)
    net = PixelCNN(1, 8, 1)
    with torch.no_grad():
        net.output[-1].bias.fill_(0.5)
    allx = _all_binary(2, 2)
    p = net.log_prob(allx).exp().detach()
    s = net.sample((4000, 1, 2, 2), generator=torch.Generator().manual_seed(0))
    idx = (s.flatten(1) * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(idx, minlength=16).double() / 4000
    assert 0.5 * float((freq - p.double()).abs().sum()) < 0.04


def test_categorical_samples_follow_the_model_distribution():
    torch.manual_seed(8)
    net = PixelCNN(3, 8, 1, categorical=True)
    allc = torch.tensor(list(itertools.product(range(3), repeat=2))).reshape(-1, 1, 2)
    p = net.log_prob(allc).exp().detach().double()
    s = net.sample((4000, 1, 2), generator=torch.Generator().manual_seed(1))
    freq = torch.bincount(s[:, 0, 0] * 3 + s[:, 0, 1], minlength=9).double() / 4000
    assert 0.5 * float((freq - p).abs().sum()) < 0.04


def test_shared_noise_makes_sampling_a_function_of_the_condition():
    torch.manual_seed(9)
    net = PixelCNN(1, 8, 1, cond_dim=2)
    u = torch.rand(1, 1, 4, 4)
    z = torch.randn(3, 2)
    assert torch.equal(net.sample((3, 1, 4, 4), z, noise=u), net.sample((3, 1, 4, 4), z, noise=u))
    same = net.sample((3, 1, 4, 4), z[:1].expand(3, 2), noise=u)
    assert torch.equal(same[0], same[1]) and torch.equal(same[1], same[2])


# ---------------------------------------------------------------- tier 3: it learns dependence between pixels
def test_pixelcnn_learns_images_whose_pixels_all_agree():
    # every image is all-0 or all-1 (one fair bit): the best independent-pixel model has 16 log 2 = 11.1 nats,
    # the true distribution has log 2 = 0.69 nats; after a short run the PixelCNN is below 2 nats
    torch.manual_seed(10)
    net = PixelCNN(1, 16, 2, first_kernel=5)
    bit = torch.bernoulli(torch.full((256, 1, 1, 1), 0.5))
    x = bit.expand(256, 1, 4, 4).contiguous()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        loss = -net.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 2.0 < 16 * math.log(2)
    s = net.sample((20, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    agree = (s.flatten(1) == s.flatten(1)[:, :1]).all(1).float().mean()
    assert float(agree) > 0.8
