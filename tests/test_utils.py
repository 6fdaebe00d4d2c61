import os

import numpy as np
import pytest
import torch

import vae_course as vc


def test_get_device_defaults_to_best_available(monkeypatch):
    monkeypatch.delenv("VAE_COURSE_DEVICE", raising=False)
    device = vc.utils.get_device()
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert device.type == expected


def test_get_device_override_and_env(monkeypatch):
    assert vc.utils.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("VAE_COURSE_DEVICE", "cpu")
    assert vc.utils.get_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_get_device_rejects_missing_cuda():
    with pytest.raises(ValueError, match="prefer.*no CUDA"):
        vc.utils.get_device("cuda")


def test_get_device_rejects_unknown_name():
    with pytest.raises(ValueError, match="prefer"):
        vc.utils.get_device("tpu")


def _run_once(seed):
    vc.utils.seed_everything(seed)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(64, 5)
    y = x.sum(1, keepdim=True) + 0.1 * torch.randn(64, 1)
    for _ in range(20):
        opt.zero_grad()
        loss = (net(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()]), np.random.rand(3)


def test_seed_everything_makes_training_bit_reproducible():
    a, na = _run_once(7)
    b, nb = _run_once(7)
    c, _ = _run_once(8)
    assert torch.equal(a, b)  # bit-identical, not just close
    assert np.array_equal(na, nb)
    assert not torch.equal(a, c)


def test_seed_everything_returns_seeded_generator():
    g1 = vc.utils.seed_everything(3)
    g2 = vc.utils.make_generator(3)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (1.5, TypeError), ("1", TypeError), (True, TypeError), (2**32, ValueError)])
def test_seed_everything_rejects_bad_seed(bad, exc):
    with pytest.raises(exc, match="seed"):
        vc.utils.seed_everything(bad)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError), (2.0, TypeError), (None, TypeError)])
def test_check_positive_int(bad, exc):
    with pytest.raises(exc, match="n_samples"):
        vc.utils.check_positive_int("n_samples", bad)
    assert vc.utils.check_positive_int("n", 0, allow_zero=True) == 0


def test_show_source_returns_markdown_with_code():
    md = vc.utils.show_source(vc.distributions.kl_normal_std)
    assert "def kl_normal_std" in md.data and md.data.startswith("```python")
    with pytest.raises(TypeError, match="obj"):
        vc.utils.show_source(3)
