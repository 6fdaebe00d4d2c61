"""Tests for vae_course.data: (1) shapes, dtypes and errors; (2) seeded statistical checks with
stated tolerances against analytic references; (3) a short training run on the split data."""
import gzip
import math
import re
import struct

import numpy as np
import pytest
import torch

from vae_course import data as D

# IDX type code -> big-endian numpy dtype, written independently of the module under test
IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def write_idx(path, arr, code, gz=False):
    arr = np.asarray(arr)
    raw = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw += arr.astype(IDX_CODES[code]).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.fixture(scope="module")
def mnist():
    return D.mnist5k()


@pytest.fixture(scope="module")
def dig():
    return D.digits()


# ---------------------------------------------------------------- tier 1: image sets
@pytest.mark.parametrize("fixture, shape, n_train, n_test", [("dig", (1, 8, 8), 1500, 297),
                                                             ("mnist", (1, 28, 28), 4000, 1000)])
def test_image_shapes_dtypes_ranges(request, fixture, shape, n_train, n_test):
    d = request.getfixturevalue(fixture)
    assert d.x_train.shape == (n_train, *shape) and d.x_test.shape == (n_test, *shape)
    assert d.y_train.shape == (n_train,) and d.y_test.shape == (n_test,)
    assert d.x_train.dtype == d.x_test.dtype == torch.float32
    assert d.y_train.dtype == d.y_test.dtype == torch.int64
    assert d.image_shape == shape and d.x_dim == shape[1] * shape[2] and d.binarize == "none"
    for x in (d.x_train, d.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    assert "ImageData" in repr(d) and len(repr(d)) < 200
    moved = d.to("cpu")
    assert isinstance(moved, D.ImageData) and torch.equal(moved.x_test, d.x_test)


def test_digits_split_is_a_partition_of_sklearn_digits(dig):
    from sklearn.datasets import load_digits
    raw = load_digits()
    ours = np.concatenate([torch.cat([dig.x_train, dig.x_test]).reshape(-1, 64).numpy() * 16,
                           torch.cat([dig.y_train, dig.y_test])[:, None].numpy()], 1)
    ref = np.concatenate([raw.data, raw.target[:, None]], 1)
    sort = lambda a: a[np.lexsort(a.T[::-1])]
    np.testing.assert_array_equal(sort(ours), sort(ref))  # each image once, with its own label


def test_mnist5k_stratified_counts(mnist):
    assert torch.bincount(mnist.y_test).tolist() == [100] * 10
    assert torch.bincount(mnist.y_train).tolist() == [400] * 10


@pytest.mark.parametrize("test_size", [1, 7, 297, 1000, 1796])
def test_digits_stratified_counts(test_size):
    d = D.digits(test_size=test_size)
    y = torch.cat([d.y_train, d.y_test])
    expected = torch.bincount(y, minlength=10) * test_size / len(y)
    got = torch.bincount(d.y_test, minlength=10)
    assert got.sum() == test_size and ((got - expected).abs() < 1).all()  # largest-remainder rounding


def test_split_determinism_and_fresh_tensors(dig):
    again = D.digits(seed=0)
    assert torch.equal(again.x_train, dig.x_train) and torch.equal(again.y_test, dig.y_test)
    for y in (dig.y_train, dig.y_test):  # shuffled, not grouped by class
        assert len(set(y[:50].tolist())) >= 8
    other = D.digits(seed=1)
    assert not torch.equal(other.x_test, dig.x_test)
    again.x_train.zero_()  # callers may mutate; the cache must not see it
    assert torch.equal(D.digits(seed=0).x_train, dig.x_train)


def test_static_binarisation(mnist):
    s = D.mnist5k(binarize="static", seed=0)
    assert s.binarize == "static" and torch.equal(s.y_test, mnist.y_test)
    for x, grey in ((s.x_train, mnist.x_train), (s.x_test, mnist.x_test)):
        assert set(x.unique().tolist()) == {0.0, 1.0}
        # std of the mean is sqrt(sum x(1-x))/n <= 0.5/sqrt(n) ~ 6e-4 for the 784k test pixels
        assert abs(x.mean() - grey.mean()) < 3e-3
    assert torch.equal(D.mnist5k(binarize="static", seed=0).x_train, s.x_train)
    assert not torch.equal(D.mnist5k(binarize="static", seed=1).x_test, s.x_test)


def test_dynamic_keeps_grey_train_and_binary_test(mnist):
    dyn = D.mnist5k(binarize="dynamic", seed=0)
    assert dyn.binarize == "dynamic" and torch.equal(dyn.x_train, mnist.x_train)
    assert torch.equal(dyn.x_test, D.mnist5k(binarize="static", seed=0).x_test)


def test_binarize_frequency_on_constant_image():
    x = torch.full((200, 1, 28, 28), 0.3)
    g = torch.Generator().manual_seed(0)
    b = D.draw_binary(x, generator=g)
    assert b.shape == x.shape and b.dtype == x.dtype and set(b.unique().tolist()) <= {0.0, 1.0}
    # 156,800 pixels: std of the frequency = sqrt(0.21 / 156800) = 1.2e-3; tolerance 5 std
    assert abs(b.mean().item() - 0.3) < 6e-3
    assert torch.equal(b, D.draw_binary(x, generator=torch.Generator().manual_seed(0)))
    assert D.draw_binary(torch.zeros(5)).sum() == 0 and D.draw_binary(torch.ones(5)).sum() == 5


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(binarize="yes"), ValueError, "binarize.*'yes'"),
    (dict(binarize=True), ValueError, "binarize.*True"),
    (dict(test_size=0), ValueError, r"test_size.*\[1, 1796\].*0"),
    (dict(test_size=1797), ValueError, "test_size.*1797"),
    (dict(test_size=2.5), TypeError, "test_size.*2.5"),
    (dict(seed=1.0), TypeError, "seed.*int.*1.0"),
    (dict(seed="0"), TypeError, "seed.*'0'"),
    (dict(seed=-1), ValueError, "seed.*-1"),
])
def test_image_loader_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        D.digits(**kwargs)


@pytest.mark.parametrize("x, err, match", [([0.5], TypeError, "x.*list"),
                                           (torch.ones(3, dtype=torch.int64), TypeError, "x.*int64"),
                                           (torch.tensor([0.5, 1.5]), ValueError, r"x.*\[0, 1\].*1.5")])
def test_binarize_errors(x, err, match):
    with pytest.raises(err, match=match):
        D.draw_binary(x)


def test_image_data_validates_shapes():
    with pytest.raises(ValueError, match="y_train"):
        D.ImageData("t", torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.long),
                    torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long), "none")


# ---------------------------------------------------------------- tier 1: IDX
@pytest.mark.parametrize("code", sorted(IDX_CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, code, gz):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 100, size=(5, 4, 3)).astype(IDX_CODES[code])
    if code >= 0x0D:
        arr = (arr / 7).astype(IDX_CODES[code])
    out = D.read_idx(write_idx(tmp_path / "a.idx", arr, code, gz))
    assert out.shape == (5, 4, 3) and out.dtype == np.dtype(IDX_CODES[code]).newbyteorder("=")
    np.testing.assert_array_equal(out, arr)
    labels = D.read_idx(str(write_idx(tmp_path / "l.idx", np.arange(7), 0x08, gz)))  # str path too
    np.testing.assert_array_equal(labels, np.arange(7))


def _malformed(tmp_path):
    good = bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 2, 3) + bytes(6)
    return {"wrong magic": (b"\x01\x00" + good[2:], "magic"),
            "tiny": (b"\x00\x00", "truncated header"),
            "short dims": (good[:9], "truncated header"),
            "unknown code": (bytes([0, 0, 0x0A]) + good[3:], "type code 0x0A"),
            "short payload": (good[:-1], "shorter"),
            "long payload": (good + b"\x00", "longer"),
            "bad gzip": (gzip.compress(good)[:-6], "gzip")}


@pytest.mark.parametrize("case", list(_malformed(None)))
def test_read_idx_malformed(tmp_path, case):
    raw, what = _malformed(tmp_path)[case]
    path = tmp_path / f"bad_{case.replace(' ', '_')}.idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=re.escape(path.name) + ".*" + what):
        D.read_idx(path)


def _tiny_mnist(tmp_path, n=40, prefix="train", gz=False):
    """n images (6, 5) of 4 classes; class k lights row k so the classes are separable."""
    y = np.arange(n) % 4
    x = np.random.default_rng(n).integers(0, 60, size=(n, 6, 5))
    x[np.arange(n), y] = 255
    ext = ".gz" if gz else ""
    return (write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{ext}", x, 0x08, gz),
            write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}", y, 0x08, gz))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_split(tmp_path, gz):
    imgs, labels = _tiny_mnist(tmp_path, gz=gz)
    d = D.mnist_idx(imgs, labels, test_size=8, seed=0)
    assert d.x_train.shape == (32, 1, 6, 5) and d.x_test.shape == (8, 1, 6, 5)
    assert torch.bincount(d.y_test).tolist() == [2] * 4 and d.x_train.max() == 1.0
    assert d.image_shape == (1, 6, 5) and d.x_dim == 30
    assert torch.equal(D.mnist_idx(imgs, labels, test_size=8, seed=0).x_test, d.x_test)
    s = D.mnist_idx(imgs, labels, test_size=8, binarize="static")
    assert set(s.x_train.unique().tolist()) == {0.0, 1.0}


def test_mnist_idx_with_test_files_and_reload(tmp_path):
    imgs, labels = _tiny_mnist(tmp_path)
    t_imgs, t_labels = _tiny_mnist(tmp_path, n=12, prefix="t10k")
    d = D.mnist_idx(imgs, labels, test_images_path=t_imgs, test_labels_path=t_labels)
    assert d.x_train.shape == (40, 1, 6, 5) and d.x_test.shape == (12, 1, 6, 5)
    np.testing.assert_array_equal(d.y_test.numpy(), np.arange(12) % 4)  # file order kept
    _tiny_mnist(tmp_path, n=44)  # rewrite the same paths: the cache must notice
    assert D.mnist_idx(imgs, labels, test_size=4).x_train.shape[0] == 40


def test_mnist_idx_errors(tmp_path):
    imgs, labels = _tiny_mnist(tmp_path)
    with pytest.raises(ValueError, match="test_images_path was given but test_labels_path"):
        D.mnist_idx(imgs, labels, test_images_path=imgs)
    with pytest.raises(ValueError, match=r"test_size.*\[1, 39\].*10000"):
        D.mnist_idx(imgs, labels)
    short = write_idx(tmp_path / "short-labels", np.arange(3), 0x08)
    with pytest.raises(ValueError, match="short-labels.*40 integer labels"):
        D.mnist_idx(imgs, short, test_size=4)
    with pytest.raises(ValueError, match=re.escape(labels.name) + r".*\(N, H, W\)"):
        D.mnist_idx(labels, labels, test_size=4)
    with pytest.raises(ValueError, match="binarize"):
        D.mnist_idx(imgs, labels, binarize="sometimes")


# ---------------------------------------------------------------- toy targets
@pytest.mark.parametrize("name", D.TOY_1D)
def test_toy_1d_shapes_and_seeding(name):
    x = D.toy_1d(name, 1000, seed=3)
    assert x.shape == (1000,) and x.dtype == torch.float32
    assert torch.equal(x, D.toy_1d(name, 1000, generator=torch.Generator().manual_seed(3)))
    assert not torch.equal(x, D.toy_1d(name, 1000, seed=4))


@pytest.mark.parametrize("name", D.TOY_2D)
def test_toy_2d_shapes_and_seeding(name):
    xy = D.toy_2d(name, 1000, seed=3)
    assert xy.shape == (1000, 2) and xy.dtype == torch.float32
    assert torch.equal(xy, D.toy_2d(name, 1000, generator=torch.Generator().manual_seed(3)))
    assert not torch.equal(xy, D.toy_2d(name, 1000, seed=4))


GRID_1D = torch.linspace(-12.0, 16.0, 280_001, dtype=torch.float64)  # h = 1e-4


@pytest.mark.parametrize("name", D.TOY_1D)
def test_toy_1d_density_integrates_to_one(name):
    p = D.toy_1d_density(name, GRID_1D)
    assert p.shape == GRID_1D.shape and p.dtype == torch.float64 and (p >= 0).all()
    assert abs(torch.trapezoid(p, GRID_1D).item() - 1.0) < 1e-3


def test_toy_1d_density_matches_torch_distributions():
    tdist = torch.distributions
    x = torch.linspace(-5, 9, 1001, dtype=torch.float64)
    mix = tdist.MixtureSameFamily(tdist.Categorical(torch.tensor([0.5, 0.5], dtype=torch.float64)),
                                  tdist.Normal(torch.tensor([-2.0, 2.0], dtype=torch.float64), 0.5))
    torch.testing.assert_close(D.toy_1d_density("bimodal", x), mix.log_prob(x).exp())
    torch.testing.assert_close(D.toy_1d_density("gaussian", x), tdist.Normal(0.0, 1.0).log_prob(x).exp())
    pos = x[x > -2]
    gamma = tdist.Gamma(torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(D.toy_1d_density("skewed", pos), gamma.log_prob(pos + 2).exp())
    assert (D.toy_1d_density("skewed", x[x <= -2]) == 0).all()
    inside = x[(x > -1) & (x < 1)]
    assert (D.toy_1d_density("uniform", inside) == 0.5).all()
    assert D.toy_1d_density("uniform", x).sum() == 0.5 * len(inside) + 0.5 * int((x.abs() == 1).sum())


@pytest.mark.parametrize("name", D.TOY_1D)
def test_toy_1d_samples_match_density_ks(name):
    n = 100_000
    samples = np.sort(D.toy_1d(name, n, seed=0).double().numpy())
    p = D.toy_1d_density(name, GRID_1D)
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64),
                     torch.cumulative_trapezoid(p, GRID_1D)]).numpy()
    f = np.interp(samples, GRID_1D.numpy(), cdf)
    ks = max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))
    assert ks < 1.95 / math.sqrt(n)  # Kolmogorov critical value at level 0.001


CASES_2D = [("ring", 0.05, 1.5), ("ring", 0.3, 3.0), ("ring", 1.0, 6.0),  # noise 1: radius < 0 is common
            ("eight_gaussians", 0.05, 1.5), ("eight_gaussians", 0.2, 2.5),
            ("checkerboard", 0.0, 2.5), ("checkerboard", 0.05, 2.5)]


def _grid(half, m):
    """Cell centres (m*m, 2) of an m x m grid on [-half, half]^2 and the cell area."""
    h = 2 * half / m
    c = -half + h * (torch.arange(m, dtype=torch.float64) + 0.5)
    return torch.cartesian_prod(c, c), h * h


@pytest.mark.parametrize("name, noise, half", CASES_2D)
def test_toy_2d_density_integrates_to_one(name, noise, half):
    xy, area = _grid(half, 500)
    p = D.toy_2d_density(name, xy, noise=noise)
    assert p.shape == (len(xy),) and (p >= 0).all()
    assert abs(p.sum().item() * area - 1.0) < 1e-2  # midpoint rule; worst case ring noise=1 (1/rho at 0): 3e-3


@pytest.mark.parametrize("name, noise, half", CASES_2D)
def test_toy_2d_samples_match_density_histogram(name, noise, half):
    n, m, sub = 200_000, 20, 10
    xy = D.toy_2d(name, n, seed=0, noise=noise).double()
    counts = torch.histogramdd(xy, bins=[m, m], range=[-half, half, -half, half]).hist.flatten()
    fine, area = _grid(half, m * sub)
    p = (D.toy_2d_density(name, fine, noise=noise) * area).reshape(m, sub, m, sub).sum((1, 3)).flatten()
    p_hat = torch.cat([counts / n, (1 - counts.sum() / n).reshape(1)])
    p = torch.cat([p, (1 - p.sum()).clamp(min=0).reshape(1)])
    tv = 0.5 * (p_hat - p).abs().sum().item()
    # E|p_hat - p| ~ sqrt(2 p (1 - p) / (pi n)) per bin; allow twice the expected total variation
    expected = 0.5 * torch.sqrt(2 * p * (1 - p) / (math.pi * n)).sum().item()
    assert tv < 2 * expected + 2e-3


def test_ring_radius_and_eight_gaussians_centres():
    r = D.toy_2d("ring", 50_000, seed=0, noise=0.1).norm(dim=1)
    assert abs(r.mean() - D.RING_RADIUS) < 5e-3 and abs(r.std() - 0.1) < 5e-3  # 5 std of the mean/std
    xy = D.toy_2d("eight_gaussians", 8_000, seed=0, noise=0.0)
    assert torch.allclose(xy.norm(dim=1), torch.full((8_000,), D.EIGHT_RADIUS), atol=1e-6)
    angles = torch.round(torch.atan2(xy[:, 1], xy[:, 0]) / (math.pi / 4)).remainder(8)
    counts = torch.bincount(angles.long(), minlength=8)
    assert counts.sum() == 8_000 and ((counts - 1000).abs() < 5 * math.sqrt(1000 * 7 / 8)).all()


def test_two_moons_geometry():
    n = 100_000
    xy = D.toy_2d("two_moons", n, seed=0, noise=0.0).double()
    outer = (xy.norm(dim=1) - 1).abs() < 1e-5
    inner = ((xy - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1) - 1).abs() < 1e-5
    assert int(outer.sum()) == n // 2 and int((outer | inner).sum()) == n
    assert (xy[outer, 1] >= 0).all() and (xy[inner, 1] <= 0.5).all()
    # mean of (cos t, sin t), t ~ U[0, pi], is (0, 2/pi); std of the mean <= 0.9/sqrt(n) = 3e-3
    mean = torch.tensor([0.5, 0.25], dtype=torch.float64)
    assert torch.allclose(xy.mean(0), mean, atol=0.015)
    with pytest.raises(ValueError, match="two_moons.*closed-form"):
        D.toy_2d_density("two_moons", xy)


@pytest.mark.parametrize("call, err, match", [
    (lambda: D.toy_1d("trimodal", 10), ValueError, "name.*trimodal"),
    (lambda: D.toy_1d("gaussian", 0), ValueError, "n.*>= 1.*0"),
    (lambda: D.toy_1d("gaussian", 2.0), TypeError, "n.*int.*2.0"),
    (lambda: D.toy_1d("gaussian", 5, seed=1, generator=torch.Generator()), ValueError, "seed or generator"),
    (lambda: D.toy_1d("gaussian", 5, generator=3), TypeError, "generator.*torch.Generator.*int"),
    (lambda: D.toy_1d("gaussian", 5, seed=1.5), TypeError, "seed.*1.5"),
    (lambda: D.toy_1d_density("gaussian", [0.0]), TypeError, "x.*floating.*list"),
    (lambda: D.toy_1d_density("nope", torch.zeros(2)), ValueError, "name.*nope"),
    (lambda: D.toy_2d("spiral", 10), ValueError, "name.*spiral"),
    (lambda: D.toy_2d("ring", 10, noise=-0.1), ValueError, "noise.*>= 0.*-0.1"),
    (lambda: D.toy_2d("ring", 10, noise=float("nan")), ValueError, "noise.*nan"),
    (lambda: D.toy_2d("ring", 10, noise="big"), TypeError, "noise.*'big'"),
    (lambda: D.toy_2d_density("ring", torch.zeros(4, 3)), ValueError, r"xy.*\(\.\.\., 2\).*\(4, 3\)"),
    (lambda: D.toy_2d_density("ring", torch.zeros(4, 2, dtype=torch.int64)), TypeError, "xy.*int64"),
    (lambda: D.toy_2d_density("ring", torch.zeros(4, 2), noise=0.0), ValueError, "noise.*> 0.*ring"),
])
def test_toy_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_checkerboard_without_noise_is_indicator():
    xy = torch.tensor([[-1.5, -1.5], [-0.5, -1.5], [0.5, 0.5], [2.5, 0.5], [0.2, -0.7]], dtype=torch.float64)
    torch.testing.assert_close(D.toy_2d_density("checkerboard", xy, noise=0.0),
                               torch.tensor([1, 0, 1, 0, 0], dtype=torch.float64) / 8)
    s = D.toy_2d("checkerboard", 5_000, seed=0, noise=0.0)
    assert (D.toy_2d_density("checkerboard", s.double(), noise=0.0) == 1 / 8).all()


# ---------------------------------------------------------------- tier 3: labels stay with images
def test_softmax_regression_learns_digits_split(dig):
    """If the split separated images from their labels, test accuracy would stay near 0.1."""
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 10)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    x, x_test = dig.x_train.flatten(1), dig.x_test.flatten(1)
    for _ in range(40):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), dig.y_train).backward()
        opt.step()
    acc = (model(x_test).argmax(1) == dig.y_test).float().mean().item()
    assert acc > 0.9


def test_nearest_centroid_on_mnist5k(mnist):
    x, x_test = mnist.x_train.flatten(1), mnist.x_test.flatten(1)
    centroids = torch.stack([x[mnist.y_train == k].mean(0) for k in range(10)])
    acc = (torch.cdist(x_test, centroids).argmin(1) == mnist.y_test).float().mean().item()
    assert acc > 0.75  # nearest class mean on MNIST is ~0.8
