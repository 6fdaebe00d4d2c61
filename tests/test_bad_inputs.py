"""Bad input over the public API: a clear error naming the argument, never a silent wrong answer (issue 12).

Each case calls one public function with one bad argument and asserts the exception type and that the message
starts with the argument's name (the house form: ``name: got ...; need ...``). The classes: wrong shapes, wrong
dtypes, NaN and inf entries, out-of-range values, empty inputs, files, and messages that used to name an internal
argument. Before this suite every case here returned a wrong value (NaN, a wrong shape, a silent clip) or failed
deep inside torch with a message that named no argument of the call. Below them: float64 input is cast to the
model's dtype, and meta tensors pass the value checks.
"""
from __future__ import annotations

import math
import re

import pytest
import torch

import vae_course as vc
from vae_course import collapse, disentangle, evaluate, objectives
from vae_course.distributions import kl_normal_std, log_mean_exp, log_normal_diag, log_normal_full, log_normal_std
from vae_course.estimators import categorical_score, gaussian_score, straight_through
from vae_course.experiments import beta_sweep, bench, free_bits_sweep
from vae_course.models import VAE, VQVAE, AutoregressiveVAE, CodePrior
from vae_course.models import quantizer as Q
from vae_course.train import evaluate_loss, fit, make_optimizer

NAN, INF = float("nan"), float("inf")
torch.manual_seed(0)
VAE8 = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)  # 8x8 images, 2 latents
VQ28 = VQVAE(channels=(4, 8), n_codes=8, code_dim=4)  # 28x28 images, 7x7 code maps
VQ8 = VQVAE(x_shape=(1, 8, 8), downsample=1, channels=(4, 8), n_codes=8, code_dim=4)  # 4x4 code maps
AR8 = AutoregressiveVAE(z_dim=2, hidden=16, pixel_hidden=8)
PRIOR = CodePrior(n_codes=8, map_shape=(4, 4), hidden=8, n_layers=1)
VQUANT = Q.VectorQuantizer(8, 4)


def px(*shape, value=None):
    """Pixels in [0, 1], or all ``value``."""
    g = torch.Generator().manual_seed(1)
    return torch.rand(*shape, generator=g) if value is None else torch.full(shape, float(value))


def with_entry(t, value, index=0):
    t = t.clone()
    t.view(-1)[index] = value
    return t


def _data(x_train):
    return vc.data.ImageData("t", x_train, torch.zeros(len(x_train), dtype=torch.long), px(2, 1, 8, 8),
                             torch.zeros(2, dtype=torch.long), "none")


FACTORS_CONST = torch.zeros(50, 2, dtype=torch.long)
STATS = vc.estimators.estimator_stats(
    lambda g: gaussian_score(torch.randn(3, generator=g), torch.zeros(3), torch.zeros(3)), 4)

# (id, call, exception, the argument its message must start with)
SHAPES = [
    ("decode_codes 3x3 map on a 7x7 model", lambda: VQ28.decode_codes(torch.zeros(1, 3, 3, dtype=torch.long)),
     ValueError, "codes"),
    ("VAE.decode z of the wrong size", lambda: VAE8.decode(torch.randn(4, 3)), ValueError, "z"),
    ("VAE.generate z of the wrong size", lambda: VAE8.generate(torch.randn(4, 5)), ValueError, "z"),
    ("gaussian_score z of the wrong size", lambda: gaussian_score(torch.randn(5, 3), torch.zeros(2), torch.zeros(2)),
     ValueError, "z"),
    ("straight_through shapes differ", lambda: straight_through(torch.ones(3), torch.ones(2, 3)), ValueError, "hard"),
    ("squared_distances code sizes differ", lambda: Q.squared_distances(torch.randn(4, 3), torch.randn(5, 2)),
     ValueError, "z"),
    ("ema_update indices of the wrong length", lambda: Q.ema_update(torch.zeros(8), torch.zeros(8, 4), torch.zeros(8, 4),
                                                                    torch.randn(5, 4), torch.zeros(3, dtype=torch.long)),
     ValueError, "indices"),
    ("shift_images on a matrix", lambda: evaluate.shift_images(torch.rand(2, 3), 1, 1), ValueError, "x"),
    ("standardized_bias truth of the wrong shape",
     lambda: vc.estimators.standardized_bias(STATS, vc.estimators.GaussianGradient(torch.zeros(2), torch.zeros(2))),
     ValueError, "truth.mu"),
    ("restart_dead_codes z of the wrong width", lambda: VQUANT.restart_dead_codes(torch.randn(5, 3)), ValueError, "z"),
]

DTYPES = [
    ("code_counts float indices", lambda: Q.code_counts(torch.tensor([0.0, 1.0]), 8), TypeError, "indices"),
    ("categorical_score float index", lambda: categorical_score(torch.tensor([0.0]), torch.zeros(3)), TypeError, "index"),
    ("factor_entropy float factors", lambda: disentangle.factor_entropy(torch.rand(4, 2)), TypeError, "factors"),
    ("mnist_idx(images_path=None)", lambda: vc.data.mnist_idx(images_path=None, labels_path=None), TypeError,
     "images_path"),
    ("read_idx(None)", lambda: vc.data.read_idx(None), TypeError, "path"),
    ("make_generator('a')", lambda: vc.utils.make_generator("a"), TypeError, "seed"),
    ("ImageData integer pixels", lambda: _data(torch.zeros(4, 1, 8, 8, dtype=torch.long)), TypeError, "x_train"),
    ("dead_fraction of a list", lambda: Q.dead_fraction([1, 0, 2]), TypeError, "counts"),
    ("write_sweep rows that are not dicts", lambda: beta_sweep.write_sweep([1, 2], "/tmp/never_written.csv"), TypeError,
     "rows"),
]

NON_FINITE = [
    ("VAE.loss NaN image", lambda: VAE8.loss(with_entry(px(2, 1, 8, 8), NAN)), ValueError, "x"),
    ("VAE.loss inf image", lambda: VAE8.loss(with_entry(px(2, 1, 8, 8), INF)), ValueError, "x"),
    ("VAE.elbo NaN image", lambda: VAE8.elbo(with_entry(px(2, 1, 8, 8), NAN)), ValueError, "x"),
    ("VAE.sample NaN latents", lambda: VAE8.sample(2, z=torch.tensor([[0.0, NAN], [0.0, 0.0]])), ValueError, "z"),
    ("VQVAE.loss NaN image names x, not z", lambda: VQ8.loss(with_entry(px(2, 1, 8, 8), NAN)), ValueError, "x"),
    ("VectorQuantizer NaN input names z_e", lambda: VQUANT(with_entry(torch.randn(2, 4, 3, 3), NAN)), ValueError, "z_e"),
    ("AutoregressiveVAE.loss NaN image", lambda: AR8.loss(with_entry(px(2, 1, 8, 8), NAN)), ValueError, "x"),
    ("log_likelihood NaN image", lambda: evaluate.log_likelihood(VAE8, with_entry(px(3, 1, 8, 8), NAN), k=4),
     ValueError, "x"),
    ("log_weights NaN image", lambda: evaluate.log_weights(VAE8, with_entry(px(3, 1, 8, 8), NAN), k=4), ValueError, "x"),
    ("elbo_per_example NaN image", lambda: evaluate.elbo_per_example(VAE8, with_entry(px(3, 1, 8, 8), NAN)),
     ValueError, "x"),
    ("encode_all inf image", lambda: evaluate.encode_all(VAE8, with_entry(px(3, 1, 8, 8), INF)), ValueError, "x"),
    ("iwae_bound NaN log-weight", lambda: evaluate.iwae_bound(torch.tensor([[NAN, 0.0], [1.0, 2.0]])), ValueError,
     "log_w"),
    ("log_mean_exp NaN", lambda: log_mean_exp(torch.tensor([NAN, 1.0])), ValueError, "a"),
    ("log_mean_exp +inf", lambda: log_mean_exp(torch.tensor([INF, 1.0])), ValueError, "a"),
    ("latent_swap_test NaN image", lambda: collapse.latent_swap_test(VAE8, with_entry(px(3, 1, 8, 8), NAN)),
     ValueError, "x"),
    ("collapse_report NaN image", lambda: collapse.collapse_report(AR8, with_entry(px(4, 1, 8, 8), NAN), k=2),
     ValueError, "x"),
    ("mutual_information NaN mu", lambda: collapse.mutual_information(with_entry(torch.zeros(4, 2), NAN),
                                                                      torch.zeros(4, 2)), ValueError, "mu"),
    ("mutual_information inf logvar", lambda: collapse.mutual_information(torch.zeros(4, 2),
                                                                          with_entry(torch.zeros(4, 2), INF)),
     ValueError, "logvar"),
    ("active_units NaN mu", lambda: collapse.active_units(with_entry(torch.randn(5, 2), NAN)), ValueError, "mu"),
    ("mixture_log_density NaN weights", lambda: vc.mixtures.mixture_log_density(torch.zeros(3), [NAN, 0.5], [0, 1], [1, 1]),
     ValueError, "weights"),
    ("mixture_log_density NaN means", lambda: vc.mixtures.mixture_log_density(torch.zeros(3), [0.5, 0.5], [NAN, 1], [1, 1]),
     ValueError, "means"),
    ("mixture_log_density NaN stds", lambda: vc.mixtures.mixture_log_density(torch.zeros(3), [0.5, 0.5], [0, 1], [NAN, 1]),
     ValueError, "stds"),
    ("mixture_log_density inf stds", lambda: vc.mixtures.mixture_log_density(torch.zeros(3), [0.5, 0.5], [0, 1], [INF, 1]),
     ValueError, "stds"),
    ("relative_error NaN", lambda: vc.mixtures.relative_error(torch.tensor([NAN]), torch.tensor([0.0])), ValueError,
     "log_p_hat"),
    ("kl_per_dimension NaN mu", lambda: objectives.kl_per_dimension(with_entry(torch.zeros(2, 3), NAN), torch.zeros(2, 3)),
     ValueError, "mu"),
    ("auroc NaN score", lambda: evaluate.auroc(torch.tensor([NAN, 1.0]), torch.tensor([0.0])), ValueError, "scores_in"),
    ("gaussian_score NaN z", lambda: gaussian_score(torch.tensor([[NAN, 0.0]]), torch.zeros(2), torch.zeros(2)),
     ValueError, "z"),
    ("straight_through NaN hard", lambda: straight_through(torch.tensor([NAN]), torch.tensor([0.0])), ValueError, "hard"),
    ("squared_distances NaN codebook", lambda: Q.squared_distances(torch.randn(4, 2), with_entry(torch.randn(3, 2), NAN)),
     ValueError, "codebook"),
    ("restart_dead_codes NaN z", lambda: VQUANT.restart_dead_codes(with_entry(torch.randn(5, 4), NAN)), ValueError, "z"),
    ("ImageData NaN pixel", lambda: _data(with_entry(px(4, 1, 8, 8), NAN)), ValueError, "x_train"),
    ("fit on NaN data", lambda: fit(VAE8, with_entry(px(8, 1, 8, 8), NAN), epochs=1, progress=False), ValueError,
     "data"),
    ("evaluate_loss NaN image", lambda: evaluate_loss(VAE8, with_entry(px(4, 1, 8, 8), NAN)), ValueError, "x"),
    ("log_normal_full zero diagonal scale_tril", lambda: log_normal_full(torch.zeros(2), torch.zeros(2),
                                                                         scale_tril=torch.tensor([[0.0, 0.0], [1.0, 1.0]])),
     ValueError, "scale_tril"),
    ("sample_normal zero diagonal scale_tril", lambda: vc.generators.sample_normal(
        torch.zeros(2), scale_tril=torch.tensor([[0.0, 0.0], [1.0, 1.0]])), ValueError, "scale_tril"),
    ("sample_normal negative diagonal scale_tril", lambda: vc.generators.sample_normal(
        torch.zeros(2), scale_tril=torch.tensor([[-1.0, 0.0], [1.0, 1.0]])), ValueError, "scale_tril"),
    ("bits_per_dim NaN", lambda: evaluate.bits_per_dim(NAN, 784), ValueError, "log_px"),
    ("reparameterize NaN mu", lambda: vc.distributions.reparameterize(with_entry(torch.zeros(2, 3), NAN), torch.zeros(2, 3)),
     ValueError, "mu"),
    ("reparameterize inf logvar", lambda: vc.distributions.reparameterize(torch.zeros(3), with_entry(torch.zeros(3), INF)),
     ValueError, "logvar"),
    ("effective_sample_size NaN log-weight", lambda: vc.mixtures.effective_sample_size(torch.tensor([NAN, 0.0])),
     ValueError, "log_w"),
    ("dead_fraction negative counts", lambda: Q.dead_fraction(torch.tensor([1.0, -1.0])), ValueError, "counts"),
]

RANGES = [
    ("code_counts index >= n_codes", lambda: Q.code_counts(torch.tensor([0, 1, 1000]), 8), ValueError, "indices"),
    ("code_counts negative index", lambda: Q.code_counts(torch.tensor([0, -1]), 8), ValueError, "indices"),
    ("categorical_score index >= K", lambda: categorical_score(torch.tensor([3]), torch.zeros(3)), ValueError, "index"),
    ("VAE.loss pixel 2", lambda: VAE8.loss(px(2, 1, 8, 8, value=2)), ValueError, "x"),
    ("VAE.loss pixel -1", lambda: VAE8.loss(px(2, 1, 8, 8, value=-1)), ValueError, "x"),
    ("VQVAE.loss pixel 2", lambda: VQ8.loss(px(2, 1, 8, 8, value=2)), ValueError, "x"),
    ("AutoregressiveVAE.loss pixel -1", lambda: AR8.loss(px(2, 1, 8, 8, value=-1)), ValueError, "x"),
    ("fit pixels 2", lambda: fit(VAE8, px(8, 1, 8, 8, value=2), epochs=1, progress=False), ValueError, "data"),
    ("fit pixels -1", lambda: fit(VAE8, px(8, 1, 8, 8, value=-1), epochs=1, progress=False), ValueError, "data"),
    ("evaluate_loss pixels 2", lambda: evaluate_loss(VAE8, px(4, 1, 8, 8, value=2)), ValueError, "x"),
    ("ImageData pixel 2", lambda: _data(px(4, 1, 8, 8, value=2)), ValueError, "x_train"),
    ("invert_images pixel 2", lambda: evaluate.invert_images(px(2, 1, 8, 8, value=2)), ValueError, "x"),
    ("negative_beta_elbo beta -1", lambda: objectives.negative_beta_elbo(px(2, 4), torch.zeros(2, 4), torch.zeros(2, 2),
                                                                         torch.zeros(2, 2), beta=-1.0), ValueError, "beta"),
    ("vq_loss beta -1", lambda: Q.vq_loss(torch.zeros(2, 3), torch.zeros(2, 3), beta=-1.0), ValueError, "beta"),
    ("VectorQuantizer beta NaN", lambda: Q.VectorQuantizer(8, 4, beta=NAN), ValueError, "beta"),
    ("kl_warmup beta_max -1", lambda: objectives.kl_warmup("linear", 10, beta_max=-1.0), ValueError, "beta_max"),
    ("capacity_schedule gamma -1", lambda: objectives.capacity_schedule(5.0, gamma=-1.0), ValueError, "gamma"),
    ("VAE.loss free_bits -1 names free_bits", lambda: VAE8.loss(px(2, 1, 8, 8), free_bits=-1.0), ValueError,
     "free_bits"),
    ("VAE.loss capacity -1", lambda: VAE8.loss(px(2, 1, 8, 8), capacity=-1.0), ValueError, "capacity"),
    ("fit clip_grad -1", lambda: fit(VAE8, px(8, 1, 8, 8), epochs=1, progress=False, clip_grad=-1), ValueError,
     "clip_grad"),
    ("fit lr 0", lambda: fit(VAE8, px(8, 1, 8, 8), epochs=1, progress=False, lr=0), ValueError, "lr"),
    ("fit lr inf", lambda: fit(VAE8, px(8, 1, 8, 8), epochs=1, progress=False, lr=INF), ValueError, "lr"),
    ("fit lr -1", lambda: fit(VAE8, px(8, 1, 8, 8), epochs=1, progress=False, lr=-1), ValueError, "lr"),
    ("make_optimizer lr 0", lambda: make_optimizer(VAE8, lr=0.0), ValueError, "lr"),
    ("point_mass_bound batch_size 0", lambda: vc.vq.point_mass_bound(VQ8, PRIOR, px(2, 1, 8, 8), batch_size=0),
     ValueError, "batch_size"),
    ("evaluate_loss(batch_size=-1)", lambda: evaluate_loss(VAE8, px(4, 1, 8, 8), batch_size=-1), ValueError,
     "batch_size"),
    ("sprites(seed=-1)", lambda: vc.sprites.sprites(seed=-1), ValueError, "seed"),
    ("make_generator(-1)", lambda: vc.utils.make_generator(-1), ValueError, "seed"),
    ("ema_update decay 1.5", lambda: Q.ema_update(torch.zeros(8), torch.zeros(8, 4), torch.zeros(8, 4), torch.randn(3, 4),
                                                  torch.zeros(3, dtype=torch.long), decay=1.5), ValueError, "decay"),
    ("active_units threshold NaN", lambda: collapse.active_units(torch.randn(5, 2), threshold=NAN), ValueError,
     "threshold"),
    ("MIG with every factor constant", lambda: disentangle.mig(torch.randn(50, 3), FACTORS_CONST), ValueError, "factors"),
    ("mig_from_discrete with every factor constant",
     lambda: disentangle.mig_from_discrete(torch.randint(0, 3, (50, 3)), FACTORS_CONST), ValueError, "factors"),
    ("iwae_curve ks=()", lambda: evaluate.iwae_curve(VAE8, px(3, 1, 8, 8), ks=()), ValueError, "ks"),
    ("compare_at_equal_time seconds -1", lambda: bench.compare_at_equal_time(-1.0), ValueError, "seconds"),
    ("free_bits_sweep negative floor", lambda: free_bits_sweep.free_bits_sweep((-1.0,), (0,), epochs=1), ValueError,
     "lams[0]"),
    ("write_sweep rows without columns", lambda: beta_sweep.write_sweep([{"config": "x"}], "/tmp/never_written.csv"),
     ValueError, "rows[0]"),
    ("CodePrior.loss code >= K", lambda: PRIOR.loss(torch.full((2, 4, 4), 9.0)), ValueError, "z"),
    ("CodePrior.loss fractional code", lambda: PRIOR.loss(torch.full((2, 4, 4), 1.5)), ValueError, "z"),
]

EMPTY = [
    ("VAE.loss empty batch", lambda: VAE8.loss(px(0, 1, 8, 8)), ValueError, "x"),
    ("VQVAE.loss empty batch", lambda: VQ8.loss(px(0, 1, 8, 8)), ValueError, "x"),
    ("CodePrior.loss empty batch", lambda: PRIOR.loss(torch.zeros(0, 4, 4)), ValueError, "z"),
    ("fit on an empty tensor", lambda: fit(VAE8, px(0, 1, 8, 8), epochs=1, progress=False), ValueError, "data"),
    ("fit on an ImageData without training images", lambda: fit(VAE8, _data(px(0, 1, 8, 8)), epochs=1, progress=False),
     ValueError, "data.x_train"),
    ("evaluate_loss on nothing", lambda: evaluate_loss(VAE8, px(0, 1, 8, 8)), ValueError, "x"),
    ("log_likelihood on nothing", lambda: evaluate.log_likelihood(VAE8, px(0, 1, 8, 8), k=3), ValueError, "x"),
    ("encode_all on nothing", lambda: evaluate.encode_all(VAE8, px(0, 1, 8, 8)), ValueError, "x"),
    ("elbo_per_example on nothing", lambda: evaluate.elbo_per_example(VAE8, px(0, 1, 8, 8)), ValueError, "x"),
    ("latent_swap_test on nothing", lambda: collapse.latent_swap_test(VAE8, px(0, 1, 8, 8)), ValueError, "x"),
    ("collapse_report on one image names x", lambda: collapse.collapse_report(AR8, px(1, 1, 8, 8), k=2), ValueError, "x"),
    ("log_mean_exp over an empty dim", lambda: log_mean_exp(torch.zeros(0, 3)), ValueError, "a"),
    ("iwae_bound with k = 0", lambda: evaluate.iwae_bound(torch.zeros(0, 3)), ValueError, "log_w"),
    ("dead_fraction of no code", lambda: Q.dead_fraction(torch.zeros(0)), ValueError, "counts"),
    ("factor_entropy of no row", lambda: disentangle.factor_entropy(torch.zeros(0, 2, dtype=torch.long)), ValueError,
     "factors"),
    ("reconstruction_error on nothing", lambda: vc.vq.reconstruction_error(VQ8, px(0, 1, 8, 8)), ValueError, "x"),
    ("point_mass_bound on nothing", lambda: vc.vq.point_mass_bound(VQ8, PRIOR, px(0, 1, 8, 8)), ValueError, "x"),
    ("prior_bits_per_code of no map", lambda: vc.vq.prior_bits_per_code(PRIOR, torch.zeros(0, 4, 4, dtype=torch.long)),
     ValueError, "codes"),
    ("mig of no code", lambda: disentangle.mig(torch.zeros(0, 3), torch.zeros(0, 2, dtype=torch.long)), ValueError,
     "codes"),
]

FILES = [
    ("mnist_idx of a missing file names the argument", lambda: vc.data.mnist_idx("/nonexistent/train-images",
                                                                                   "/nonexistent/train-labels"),
     FileNotFoundError, "images_path"),
]

INTERNAL_NAMES = [
    ("AmortizedEncoder(x_dim=0) names x_dim, not in_dim", lambda: vc.inference.AmortizedEncoder(x_dim=0, z_dim=2),
     ValueError, "x_dim"),
    ("fit lr NaN names lr", lambda: fit(VAE8, px(8, 1, 8, 8), epochs=1, progress=False, lr=NAN), ValueError, "lr"),
    ("a meta tensor into a CPU model names x", lambda: VAE8.loss(torch.rand(2, 1, 8, 8, device="meta")), ValueError, "x"),
]

GROUPS = {"shape": SHAPES, "dtype": DTYPES, "nan/inf": NON_FINITE, "range": RANGES, "empty": EMPTY, "file": FILES,
          "internal name": INTERNAL_NAMES}
ALL = [(group, *case) for group, cases in GROUPS.items() for case in cases]


@pytest.mark.parametrize("group, name, call, exc, arg", ALL, ids=[f"{c[0]}: {c[1]}" for c in ALL])
def test_bad_input_gets_a_clear_error_naming_the_argument(group, name, call, exc, arg):
    with pytest.raises(exc) as err:
        call()
    message = str(err.value)
    assert re.match(rf"{re.escape(arg)}(?![\w.\[])", message), f"the message must start with {arg!r}: {message}"
    assert "need" in message, f"the message must say what is needed: {message}"


# ---------------------------------------------------------------- examples of the issue that the previous commit got right
def test_vae_sample_with_more_latent_rows_than_n_is_refused():
    with pytest.raises(ValueError, match=r"^z: got \(5, 2\); need latents of shape \(3, 2\)"):
        VAE8.sample(3, z=torch.randn(5, 2))


def test_a_truncated_idx_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "cut-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") * 2 + bytes(10))
    with pytest.raises(ValueError, match=r"cut-idx3-ubyte payload is shorter"):
        vc.data.read_idx(path)


# ---------------------------------------------------------------- float64 is cast to the model's dtype
def _f64_cases():
    x = px(4, 1, 8, 8)
    return {
        "VAE.loss": (lambda t: VAE8.loss(t).terms["recon"], x),
        "VAE.encode": (lambda t: VAE8.encode(t).mu, x),
        "VQVAE.loss": (lambda t: VQ8.loss(t).terms["recon"], x),
        "evaluate_loss": (lambda t: torch.tensor(evaluate_loss(VAE8, t)["recon"]), x),
        "MLP": (lambda t: vc.nets.MLP(3, 2, (4,))(t), torch.rand(5, 3)),
    }


@pytest.mark.parametrize("name", list(_f64_cases()))
def test_float64_input_is_cast_to_the_models_float32(name):
    fn, x = _f64_cases()[name]
    VAE8.eval(), VQ8.eval()
    torch.manual_seed(0)
    ref = fn(x)
    torch.manual_seed(0)
    got = fn(x.double())
    assert got.dtype == torch.float32 and torch.allclose(got, ref, atol=1e-5), (got, ref)


def test_fit_casts_float64_data_once_and_trains():
    torch.manual_seed(0)
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)
    h = fit(model, px(32, 1, 8, 8).double(), epochs=1, batch_size=16, progress=False)
    assert h.epochs == 1 and math.isfinite(h.train["loss"][0])


# ---------------------------------------------------------------- meta tensors have no values: the value checks skip them
def test_meta_tensors_pass_the_value_checks():
    m = torch.empty(3, 4, device="meta")
    assert log_normal_std(m).shape == (3,) and log_normal_std(m).device.type == "meta"
    assert log_normal_diag(m, m, m).shape == (3,)
    assert kl_normal_std(m, m, per_dimension=True).shape == (3, 4)
    assert log_mean_exp(m, dim=0).shape == (4,)
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16).to("meta")
    out = model.loss(torch.empty(5, 1, 8, 8, device="meta"))
    assert out.loss.device.type == "meta" and out.loss.shape == ()
