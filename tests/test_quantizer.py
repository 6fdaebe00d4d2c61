"""Tests for vae_course.models.quantizer: nearest codeword against brute force, the straight-through gradient,
the codebook and commitment terms (values and where their gradients go), the EMA update against its formula,
dead-code restarts, perplexity and dead fraction, and a short run where the codebook loss fits clusters."""
import math

import pytest
import torch

from vae_course.models import quantizer as Q
from vae_course.models.quantizer import VectorQuantizer


def _g(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- shapes and errors
def test_shapes_for_maps_and_flat_vectors():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 3)
    out = vq(torch.randn(2, 3, 5, 4))
    assert out.quantized.shape == (2, 3, 5, 4) and out.indices.shape == (2, 5, 4) and out.indices.dtype == torch.long
    flat = vq(torch.randn(7, 3))
    assert flat.quantized.shape == (7, 3) and flat.indices.shape == (7,)
    assert out.loss.codebook.dim() == 0 and out.loss.commitment.dim() == 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_codes=0, code_dim=2), "n_codes"), (dict(n_codes=4, code_dim=0), "code_dim"),
    (dict(n_codes=4, code_dim=2, decay=1.0), "decay"), (dict(n_codes=4, code_dim=2, usage_decay=0.0), "usage_decay"),
    (dict(n_codes=4, code_dim=2, restart_every=-1), "restart_every"), (dict(n_codes=4, code_dim=2, beta=-1.0), "beta"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        VectorQuantizer(**kwargs)


def test_bad_inputs_name_the_argument():
    vq = VectorQuantizer(4, 3)
    with pytest.raises(ValueError, match="z_e"):
        vq(torch.randn(2, 5, 4, 4))  # 5 code coordinates, the codebook has 3
    with pytest.raises(ValueError, match="z, codebook"):
        Q.nearest_code(torch.randn(5, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="z_e, z_q"):
        Q.vq_loss(torch.randn(2, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match="counts"):
        Q.perplexity(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="counts"):
        Q.perplexity(torch.zeros(3))


# ---------------------------------------------------------------- nearest codeword
@pytest.mark.parametrize("seed", range(3))
def test_nearest_code_matches_brute_force(seed):
    g = _g(seed)
    z, codebook = torch.randn(200, 5, generator=g, dtype=torch.float64), torch.randn(17, 5, generator=g, dtype=torch.float64)
    brute = torch.tensor([min(range(17), key=lambda k: float(((zi - codebook[k]) ** 2).sum())) for zi in z])
    assert torch.equal(Q.nearest_code(z, codebook), brute)
    # the expanded distances equal the direct ones (float64: exact to rounding)
    direct = ((z[:, None, :] - codebook[None]) ** 2).sum(-1)
    torch.testing.assert_close(Q.squared_distances(z, codebook), direct)


def test_forward_returns_the_chosen_codewords():
    torch.manual_seed(1)
    vq = VectorQuantizer(6, 2).eval()
    z_e = torch.randn(3, 2, 4, 4)
    out = vq(z_e)
    codebook = vq.codebook.detach()
    want = codebook[out.indices].movedim(-1, 1)  # (3, 2, 4, 4)
    torch.testing.assert_close(out.quantized, want)
    flat = z_e.movedim(1, -1).reshape(-1, 2)
    assert torch.equal(out.indices.reshape(-1), ((flat[:, None] - codebook[None]) ** 2).sum(-1).argmin(1))


# ---------------------------------------------------------------- straight-through and the two terms
def test_straight_through_passes_the_output_gradient_to_the_encoder_unchanged():
    torch.manual_seed(2)
    vq = VectorQuantizer(5, 3, beta=0.0).eval()
    z_e = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = vq(z_e)
    upstream = torch.randn_like(out.quantized)  # any gradient arriving at z_q, e.g. from the decoder
    (g,) = torch.autograd.grad((out.quantized * upstream).sum(), z_e)
    torch.testing.assert_close(g, upstream)
    assert out.quantized.grad_fn is not None
    # the codebook gets nothing through the straight-through path
    (gc,) = torch.autograd.grad((vq(z_e).quantized * upstream).sum(), vq.codebook, allow_unused=True)
    assert gc is None or torch.count_nonzero(gc) == 0


def test_vq_loss_values_and_where_the_gradients_go():
    g = _g(3)
    z_e = torch.randn(4, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    z_q = torch.randn(4, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    beta = 0.25
    loss = Q.vq_loss(z_e, z_q, beta)
    sq = ((z_e - z_q) ** 2).sum((1, 2, 3)).mean()  # per image sum, mean over the batch
    torch.testing.assert_close(loss.codebook, sq)
    torch.testing.assert_close(loss.commitment, beta * sq)
    torch.testing.assert_close(loss.total, (1 + beta) * sq)
    # codebook term: gradient to z_q only; commitment: to z_e only (and beta times the other's size)
    ge, gq = torch.autograd.grad(loss.codebook, (z_e, z_q), allow_unused=True, materialize_grads=True)
    assert torch.count_nonzero(ge) == 0
    torch.testing.assert_close(gq, -2 * (z_e - z_q).detach() / 4)
    ge, gq = torch.autograd.grad(loss.commitment, (z_e, z_q), allow_unused=True, materialize_grads=True)
    assert torch.count_nonzero(gq) == 0
    torch.testing.assert_close(ge, 2 * beta * (z_e - z_q).detach() / 4)


def test_ema_quantizer_reports_no_codebook_term_and_has_no_codebook_parameter():
    vq = VectorQuantizer(4, 2, ema=True)
    assert not any(p is vq.codebook for p in vq.parameters())
    out = vq(torch.randn(3, 2))
    assert float(out.loss.codebook) == 0.0 and float(out.loss.commitment) > 0


# ---------------------------------------------------------------- EMA codebook
def test_ema_update_against_the_formula_on_a_hand_made_batch():
    # K = 3 codes in D = 2; codes 0 and 2 receive vectors, code 1 none
    cluster = torch.tensor([2.0, 1.0, 0.0])
    embed = torch.tensor([[2.0, 2.0], [5.0, 5.0], [0.0, 0.0]])
    codebook = torch.tensor([[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]])
    z = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    idx = torch.tensor([0, 0, 2])
    gamma = 0.9
    s = Q.ema_update(cluster, embed, codebook, z, idx, gamma)
    # N_0 = 0.9*2 + 0.1*2 = 2.0; m_0 = 0.9*(2,2) + 0.1*(4,0) = (2.2, 1.8); e_0 = (1.1, 0.9)
    # N_1 = 0.9*1 = 0.9; m_1 = 0.9*(5,5) = (4.5, 4.5); e_1 = (5, 5) (unused: unchanged)
    # N_2 = 0.1*1 = 0.1; m_2 = 0.1*(0,2) = (0, 0.2); e_2 = (0, 2) (the one vector it got)
    torch.testing.assert_close(s.cluster_size, torch.tensor([2.0, 0.9, 0.1]))
    torch.testing.assert_close(s.embed_sum, torch.tensor([[2.2, 1.8], [4.5, 4.5], [0.0, 0.2]]))
    torch.testing.assert_close(s.codebook, torch.tensor([[1.1, 0.9], [5.0, 5.0], [0.0, 2.0]]))
    # a code with N = 0 keeps its codeword (no 0/0)
    s0 = Q.ema_update(torch.zeros(3), torch.zeros(3, 2), codebook, z, torch.tensor([0, 0, 0]), gamma)
    torch.testing.assert_close(s0.codebook[1:], codebook[1:])


def test_ema_quantizer_updates_in_training_mode_only():
    torch.manual_seed(4)
    vq = VectorQuantizer(5, 2, ema=True, decay=0.8)
    z = torch.randn(40, 2)
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    vq.eval()
    vq(z)
    assert all(torch.equal(before[k], v) for k, v in vq.state_dict().items()), "eval mode changed the state"
    vq.train()
    out = vq(z)
    want = Q.ema_update(before["cluster_size"], before["embed_sum"], before["codebook"], z, out.indices, 0.8)
    torch.testing.assert_close(vq.cluster_size, want.cluster_size)
    torch.testing.assert_close(vq.embed_sum, want.embed_sum)
    torch.testing.assert_close(vq.codebook, want.codebook)
    assert int(vq.steps) == 1


def test_ema_codewords_converge_to_the_means_of_their_clusters():
    centres = torch.tensor([[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    vq = VectorQuantizer(3, 2, ema=True, decay=0.9)
    with torch.no_grad():
        vq.codebook.copy_(centres + 0.5)  # each codeword starts nearest its own cluster
    g = _g(5)
    for _ in range(200):
        z = centres[torch.randint(3, (300,), generator=g)] + 0.3 * torch.randn(300, 2, generator=g)
        vq(z)
    # tolerance: the EMA averages ~10 batches of 100 points per code, sd of a mean ~0.3/sqrt(1000) < 0.02
    torch.testing.assert_close(vq.codebook, centres, atol=0.05, rtol=0)


# ---------------------------------------------------------------- dead codes
@pytest.mark.parametrize("ema", [False, True])
def test_restarts_revive_unused_codes(ema):
    torch.manual_seed(6)
    vq = VectorQuantizer(8, 2, ema=ema, restart_every=5, dead_threshold=1.0)
    with torch.no_grad():
        vq.codebook.copy_(torch.full((8, 2), 100.0))
        vq.codebook[0] = 0.0  # every input is nearest code 0, the other 7 are dead
    g = _g(7)
    data = lambda: torch.randn(256, 2, generator=g) * 3  # noqa: E731
    assert Q.dead_fraction(Q.code_counts(vq.eval()(data()).indices, 8)) == 7 / 8
    vq.train()
    for _ in range(10):
        vq(data())
    counts = Q.code_counts(vq.eval()(data()).indices, 8)
    assert Q.dead_fraction(counts) == 0, counts
    assert int(vq.restarts) >= 7
    # without restarts the same start stays stuck on one code
    stuck = VectorQuantizer(8, 2, ema=ema)
    with torch.no_grad():
        stuck.codebook.copy_(torch.full((8, 2), 100.0))
        stuck.codebook[0] = 0.0
    for _ in range(10):
        stuck(data())
    assert Q.dead_fraction(Q.code_counts(stuck.eval()(data()).indices, 8)) == 7 / 8


def test_restart_moves_dead_codes_onto_encoder_outputs():
    vq = VectorQuantizer(4, 3, dead_threshold=1.0)
    with torch.no_grad():
        vq.usage.copy_(torch.tensor([5.0, 0.0, 5.0, 0.2]))
        vq.steps.fill_(1000)  # bias correction ~ 1
    z = torch.randn(10, 3, generator=_g(8))
    old = vq.codebook.detach().clone()
    dead = vq.restart_dead_codes(z, generator=_g(9))
    assert dead.tolist() == [1, 3]
    for k in (1, 3):
        assert any(torch.equal(vq.codebook[k].detach(), row) for row in z), "a restarted code must be an encoder output"
    torch.testing.assert_close(vq.codebook[[0, 2]].detach(), old[[0, 2]])
    assert (vq.usage_per_batch()[dead] >= 1.0 - 1e-6).all()


def test_usage_per_batch_is_bias_corrected():
    vq = VectorQuantizer(2, 1, usage_decay=0.9)
    z = torch.tensor([[-1.0], [-1.0], [-1.0]])
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[-1.0], [1.0]]))
    for _ in range(3):
        vq(z)
    torch.testing.assert_close(vq.usage_per_batch(), torch.tensor([3.0, 0.0]))


# ---------------------------------------------------------------- usage statistics
def test_perplexity_uniform_single_and_against_entropy():
    assert math.isclose(float(Q.perplexity(torch.ones(32))), 32.0, rel_tol=1e-5)
    assert math.isclose(float(Q.perplexity(torch.tensor([0.0, 7.0, 0.0]))), 1.0, rel_tol=1e-6)
    counts = torch.tensor([5.0, 0.0, 1.0, 3.0, 11.0])
    h = torch.distributions.Categorical(probs=counts / counts.sum()).entropy()
    torch.testing.assert_close(Q.perplexity(counts), torch.exp(h))
    assert float(Q.dead_fraction(counts)) == pytest.approx(0.2)
    assert Q.code_counts(torch.tensor([[0, 2], [2, 2]]), 4).tolist() == [1.0, 0.0, 3.0, 0.0]


# ---------------------------------------------------------------- learning: the codebook loss fits clusters
def test_codebook_loss_moves_codewords_to_cluster_means():
    torch.manual_seed(10)
    centres = torch.tensor([[-3.0, -3.0], [3.0, -3.0], [0.0, 3.0]])
    vq = VectorQuantizer(3, 2)
    with torch.no_grad():
        vq.codebook.copy_(centres * 0.5)  # nearest assignment is already right, positions are not
    opt = torch.optim.Adam(vq.parameters(), lr=0.05)
    g = _g(11)
    for _ in range(300):
        z = centres[torch.randint(3, (300,), generator=g)] + 0.3 * torch.randn(300, 2, generator=g)
        loss = vq(z).loss.codebook
        opt.zero_grad()
        loss.backward()
        opt.step()
    # the codebook loss is minimised by the cluster means; Adam noise with lr 0.05 leaves ~0.05
    torch.testing.assert_close(vq.codebook.detach(), centres, atol=0.15, rtol=0)
