"""vae_course.families.compare: each family's number is what its kind says (exact, IWAE bound, dequantisation
bound, each against the function that computes it), timings are measured and positive, and bad models are refused."""
import math

import pytest
import torch

import vae_course as vc
from vae_course.families import (CouplingFlow, FamilyResult, FiniteMemoryAR, GRUAR, describe_difference, evaluate_family,
                                 family_log_likelihood, paired_difference, results_table, sampling_seconds)
from vae_course.history import History


@pytest.fixture(scope="module")
def x_test():
    return vc.data.digits(binarize="static").x_test[:20]


def _history(seconds):
    h = History()
    h.train_seconds.extend(seconds)
    return h


def test_each_kind_is_the_number_it_names(x_test):
    ar = FiniteMemoryAR(memory=4, hidden=8)
    log_px, kind = family_log_likelihood(ar, x_test)
    assert kind == "exact log p(x)" and torch.allclose(log_px, ar.log_prob(x_test))
    vae = vc.models.VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)
    log_px, kind = family_log_likelihood(vae, x_test, k=7, generator=torch.Generator().manual_seed(0))
    want = vc.evaluate.log_likelihood(vae, x_test, k=7, generator=torch.Generator().manual_seed(0)).log_px
    assert kind == "lower bound (IWAE, k=7)" and torch.allclose(log_px, want)
    flow = CouplingFlow(x_shape=(1, 8, 8), n_couplings=2, hidden=(8,), n_levels=2)
    log_px, kind = family_log_likelihood(flow, x_test, k=3, generator=torch.Generator().manual_seed(1))
    want = flow.log_prob(x_test, k=3, generator=torch.Generator().manual_seed(1))
    assert kind == "lower bound (dequantised, k=3)" and torch.allclose(log_px, want)


def test_continuous_flows_and_other_models_are_refused(x_test):
    with pytest.raises(ValueError, match="n_levels=0"):
        family_log_likelihood(CouplingFlow(x_shape=(1, 8, 8)), x_test)
    with pytest.raises(TypeError, match="model: got Linear"):
        family_log_likelihood(torch.nn.Linear(2, 2), x_test)
    with pytest.raises(ValueError, match="k: got 0"):
        family_log_likelihood(GRUAR(hidden=4), x_test, k=0)


def test_evaluate_family_fills_every_field_and_the_table_shows_them(x_test):
    gru = GRUAR(hidden=8)
    r = evaluate_family("GRU", gru, _history([1.5, 2.0]), x_test, n_samples=5, generator=torch.Generator().manual_seed(2))
    assert isinstance(r, FamilyResult) and r.train_seconds == 3.5 and r.sample_seconds > 0 and r.n_samples == 5
    assert r.sequential_passes == 64 and r.n_params == sum(p.numel() for p in gru.parameters())
    assert math.isclose(r.log_px, float(gru.log_prob(x_test).mean().detach()), rel_tol=1e-6)
    assert math.isclose(r.bits_per_dim, -r.log_px / (64 * math.log(2)), rel_tol=1e-9)
    per_image = gru.log_prob(x_test).detach()
    assert math.isclose(r.log_px_sem, float(per_image.std()) / math.sqrt(20), rel_tol=1e-5)
    flow = evaluate_family("flow", CouplingFlow(x_shape=(1, 8, 8), n_couplings=1, hidden=(4,), n_levels=2),
                           _history([1.0]), x_test, k=2, n_samples=5)
    assert flow.sequential_passes == 1
    diff, se = paired_difference(r, r)
    assert diff == 0.0 and se == 0.0
    mean, sem = paired_difference(r, flow)
    d = (r.per_image - flow.per_image).double()
    assert math.isclose(mean, r.log_px - flow.log_px, rel_tol=1e-5) and math.isclose(sem, float(d.std()) / math.sqrt(20), rel_tol=1e-9)
    assert describe_difference(r, r) == "+0.00 ± 0.00 nats (within two standard errors of zero)"
    far = r._replace(per_image=r.per_image + 1 + 0.01 * torch.arange(20.0))
    assert describe_difference(far, r).endswith("(more than two standard errors from zero)")
    with pytest.raises(ValueError, match="same test images"):
        paired_difference(r, r._replace(per_image=None))
    table = results_table([r, flow])
    assert list(table.index) == ["GRU", "flow"] and "sampling 5 images [ms]" in table.columns
    assert table.loc["GRU", "training [s]"] == 3.5


def test_sampling_seconds_times_the_sample_call():
    calls = []

    class Slow(torch.nn.Module):
        def sample(self, n, generator=None, **kwargs):
            calls.append((n, kwargs))
            return torch.zeros(n)

    assert sampling_seconds(Slow(), 3, repeats=4, mean=False) >= 0 and calls == [(3, {"mean": False})] * 4
    with pytest.raises(ValueError, match="repeats"):
        sampling_seconds(Slow(), 3, repeats=0)
