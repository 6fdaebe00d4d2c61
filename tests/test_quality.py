"""vae_course.quality: the Frechet distance against independent references, the classifier score's limits, and
what the scores must rank: real digits at the floor; noise, blur and a single repeated digit clearly worse; a
longer-trained VAE better than a short one. The stored classifier is retrained and compared."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

import vae_course as vc
from vae_course import quality as Q

FLOOR_MAX = 20.0  # the real-digit floor with the stored classifier is about 10 (500 vs 500 held-out test digits)


def _random_cov(d, g):
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_distance_matches_scipy_sqrtm_and_the_1d_closed_form(gen):
    d = 6
    mu_a, mu_b = torch.randn(d, generator=gen, dtype=torch.float64), torch.randn(d, generator=gen, dtype=torch.float64)
    ca, cb = _random_cov(d, gen), _random_cov(d, gen)
    fd = Q.frechet_distance(Q.FeatureStats(mu_a, ca, 10), Q.FeatureStats(mu_b, cb, 10))
    cross = scipy.linalg.sqrtm(ca.numpy() @ cb.numpy()).real  # the textbook formula with tr sqrt(Ca Cb)
    ref = float(((mu_a - mu_b) ** 2).sum()) + np.trace(ca.numpy() + cb.numpy() - 2 * cross)
    assert fd == pytest.approx(ref, rel=1e-8)
    # 1-D: W2^2(N(m1, s1^2), N(m2, s2^2)) = (m1 - m2)^2 + (s1 - s2)^2
    one = lambda m, s: Q.FeatureStats(torch.tensor([m], dtype=torch.float64), torch.tensor([[s * s]], dtype=torch.float64), 2)
    assert Q.frechet_distance(one(1.0, 2.0), one(-0.5, 0.5)) == pytest.approx(1.5**2 + 1.5**2, rel=1e-10)
    assert Q.frechet_distance(Q.FeatureStats(mu_a, ca, 5), Q.FeatureStats(mu_a, ca, 5)) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="feature sizes differ"):
        Q.frechet_distance(one(0.0, 1.0), Q.FeatureStats(mu_a, ca, 5))


def test_feature_stats_is_the_mean_and_unbiased_covariance(gen):
    f = torch.randn(50, 3, generator=gen)
    s = Q.feature_stats(f)
    assert torch.allclose(s.mu, f.double().mean(0))
    assert np.allclose(s.cov.numpy(), np.cov(f.double().numpy(), rowvar=False))
    with pytest.raises(ValueError, match="N >= 2"):
        Q.feature_stats(f[:1])


def test_classifier_score_limits_and_a_brute_force_kl(gen):
    one_hot = torch.eye(10).repeat(3, 1)  # certain and evenly spread over 10 classes
    assert Q.classifier_score(one_hot) == pytest.approx(10.0)
    same = torch.softmax(torch.randn(1, 10, generator=gen), -1).repeat(20, 1)  # every image the same p(y|x)
    assert Q.classifier_score(same) == pytest.approx(1.0)
    p = torch.softmax(3 * torch.randn(40, 10, generator=gen), -1).double()
    kl = torch.distributions.kl_divergence(torch.distributions.Categorical(probs=p),
                                           torch.distributions.Categorical(probs=p.mean(0).expand_as(p)))
    assert Q.classifier_score(p) == pytest.approx(math.exp(float(kl.mean())), rel=1e-6)


def test_real_and_reference_digits_are_disjoint_balanced_halves_of_the_test_split():
    a, b = Q.real_digits(), Q.reference_digits()
    assert a.shape == b.shape == (500, 1, 28, 28)
    test = vc.data.mnist5k().x_test.flatten(1)
    n_distinct = lambda x: len(torch.unique(x.flatten(1), dim=0))  # noqa: E731
    assert n_distinct(torch.cat([a, b])) == n_distinct(test) == n_distinct(a) + n_distinct(b)  # disjoint, all of it
    counts = Q.sample_quality(b).class_counts
    assert counts.min() >= 40 and counts.sum() == 500  # 50 of each digit, and the classifier is ~97% right


@pytest.fixture(scope="module")
def scores():
    g = torch.Generator().manual_seed(0)
    real = Q.real_digits()
    kernel = torch.tensor([1.0, 4, 6, 4, 1])
    kernel = (kernel[:, None] * kernel[None]) / 256  # 5x5 binomial blur
    threes = vc.data.mnist5k().x_test[vc.data.mnist5k().y_test == 3]
    sets = {
        "real": real,
        "uniform noise": torch.rand(500, 1, 28, 28, generator=g),
        "blurred": F.conv2d(real, kernel[None, None], padding=2),
        "one digit repeated": real[:1].repeat(500, 1, 1, 1),
        "one class": threes[:50].repeat(10, 1, 1, 1),
    }
    return {name: Q.sample_quality(x) for name, x in sets.items()}


def test_real_digits_score_the_floor(scores):
    real = scores["real"]
    assert real.frechet < FLOOR_MAX, real
    assert real.classifier_score > 8.5 and real.classes_covered == 10, real


@pytest.mark.parametrize("name, factor", [("uniform noise", 30), ("blurred", 5), ("one digit repeated", 30),
                                          ("one class", 30)])
def test_noise_blur_and_a_single_digit_are_far_above_the_floor(scores, name, factor):
    """Margins: noise, a repeated digit and one class at least 30 times the floor, a 5x5 blur at least 5 times."""
    assert scores[name].frechet > factor * scores["real"].frechet, (name, scores[name], scores["real"])


def test_the_classifier_is_fooled_by_noise_but_the_distance_is_not(scores):
    noise = scores["uniform noise"]
    assert noise.confidence > 0.5  # the classifier calls noise a digit, and is fairly sure of it
    assert noise.frechet > 50 * scores["real"].frechet
    assert scores["one digit repeated"].classes_covered == 1 and scores["one digit repeated"].classifier_score < 1.05
    assert scores["one class"].classifier_score < 2.0 < scores["blurred"].classifier_score


def test_a_longer_trained_vae_scores_better():
    data = vc.data.mnist5k(binarize="dynamic")
    fd = {}
    for epochs in (2, 20):
        torch.manual_seed(0)
        model = vc.models.VAE(z_dim=20)
        vc.train.fit(model, data, epochs=epochs, lr=3e-3, device="cpu", progress=False, test_every=epochs)
        fd[epochs] = Q.sample_quality(model.sample(500, generator=torch.Generator().manual_seed(1))).frechet
    # measured: about 410 after 2 epochs, 170 after 20 (the floor is about 10)
    assert fd[20] < 0.7 * fd[2], fd


def test_image_layouts_and_bad_input():
    x = Q.real_digits()[:20]
    a = Q.sample_quality(x).frechet
    assert Q.sample_quality(x.reshape(20, 784)).frechet == pytest.approx(a)
    assert Q.sample_quality(x[:, 0]).frechet == pytest.approx(a)
    assert vc.evaluate.sample_quality is Q.sample_quality
    with pytest.raises(ValueError, match="28x28"):
        Q.sample_quality(torch.rand(10, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Q.sample_quality(x * 3 - 1)
    with pytest.raises(ValueError, match="at least 2"):
        Q.sample_quality(x[:1])
    with pytest.raises(TypeError, match="floating"):
        Q.sample_quality((x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="min_share"):
        Q.sample_quality(x, min_share=2)


def test_retraining_the_classifier_reproduces_the_stored_one():
    """The stored classifier is what `train_feature_net()` makes: same per-epoch losses within 2% and test accuracy
    within 1 point (thread counts change the last bits), and a real-digit floor within 25% of the stored net's."""
    stored = vc.pretrained.load("digit-features")
    fit = Q.train_feature_net()
    assert np.allclose(fit.losses, stored.history.train["loss"], rtol=0.02), (fit.losses, stored.history.train["loss"])
    assert abs(fit.test_accuracy - stored.extra["test_accuracy"]) < 0.01
    assert fit.test_accuracy > 0.95
    ours = Q.sample_quality(Q.real_digits(), net=fit.model).frechet
    theirs = Q.sample_quality(Q.real_digits()).frechet
    assert ours == pytest.approx(theirs, rel=0.25)


def test_vae_course_evaluate_reports_sample_quality_for_28x28_checkpoints(tmp_path, capsys):
    from vae_course.cli import main

    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--z-dim", "4", "--hidden", "64", "--out", str(out), "--no-progress",
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.pt"), "--k", "5", "--n", "20", "--quality", "100",
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "samples (decoder means of z ~ p(z)): Frechet distance" in text and "(100 images)" in text
    assert "real digits (the floor)" in text
