"""vae_course.sprites: shapes and errors; the rendering against brute-force supersampling and geometry;
the factors independent, uniform and each visible; the data set trainable by fit."""
import math
import time

import pytest
import torch

import vae_course as vc
from vae_course import sprites as S


# ---------------------------------------------------------------- tier 1: shapes, dtypes, errors
def test_grid_has_every_combination_once():
    f = S.factor_grid()
    assert f.dtype == torch.int64 and f.shape == (3 * 4 * 5 * 8 * 8, 5)
    assert len(torch.unique(f, dim=0)) == len(f)
    assert f.max(0).values.tolist() == [s - 1 for s in S.factor_sizes()]
    assert S.factor_grid({"x": 2, "y": 3, "rotation": 1}).shape == (3 * 4 * 1 * 2 * 3, 5)


def test_sprites_returns_image_data_with_factors():
    d = S.sprites(test_size=40, levels={"x": 4, "y": 4})
    n = 3 * 4 * 5 * 4 * 4
    assert isinstance(d, vc.data.ImageData) and isinstance(d, S.SpritesData)
    assert d.x_train.shape == (n - 40, 1, 32, 32) and d.x_test.shape == (40, 1, 32, 32)
    assert d.factors_train.shape == (n - 40, 5) and d.factors_test.dtype == torch.int64
    assert torch.equal(d.y_train, d.factors_train[:, 0])  # y is the shape label
    assert d.factor_names == S.FACTORS and d.factor_sizes == (3, 4, 5, 4, 4)
    # the full grid split: every combination exactly once across train and test
    both = torch.cat([d.factors_train, d.factors_test])
    assert len(torch.unique(both, dim=0)) == n
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1 and d.x_train.dtype == torch.float32
    assert d.image_shape == (1, 32, 32) and "SpritesData" in repr(d)
    assert d.to("cpu").factors_train.shape == d.factors_train.shape


def test_random_draws_and_image_size():
    d = S.sprites(200, test_size=50, seed=3, image_size=16)
    assert d.x_train.shape == (150, 1, 16, 16) and d.factors_train.shape == (150, 5)
    x, f = S.sprites_grid(levels={"x": 2, "y": 2, "rotation": 1, "scale": 1})
    assert x.shape == (12, 1, 32, 32) and torch.equal(f, S.factor_grid({"x": 2, "y": 2, "rotation": 1, "scale": 1}))


@pytest.mark.parametrize("call,match", [
    (lambda: S.sprites(levels={"colour": 2}), "levels"),
    (lambda: S.sprites(levels={"x": 0}), "levels"),
    (lambda: S.sprites(levels={"shape": 4}), "shape"),
    (lambda: S.sprites(test_size=5000), "test_size"),
    (lambda: S.sprites(n=0), "n"),
    (lambda: S.render(torch.zeros(2, 5)), "factors"),
    (lambda: S.render(torch.zeros(2, 4, dtype=torch.int64)), "factors"),
    (lambda: S.render(torch.tensor([[3, 0, 0, 0, 0]])), "factors"),
    (lambda: S.render(torch.tensor([[0, 0, 0, 0, -1]])), "factors"),
    (lambda: S.render(torch.zeros(1, 5, dtype=torch.int64), image_size=0), "image_size"),
    (lambda: S.render_values(torch.zeros(2, 4)), "values"),
    (lambda: S.traverse_factor([0, 0, 0, 0, 0], "colour"), "factor"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_fit_trains_on_sprites():
    d = S.sprites(test_size=100, levels={"x": 4, "y": 4, "rotation": 2})
    model = vc.models.VAE(x_shape=(1, 32, 32), z_dim=4, hidden=64)
    h = vc.train.fit(model, d, epochs=2, progress=False, device="cpu")
    assert h.test["loss"][-1] < h.test["loss"][0] or h.train["loss"][-1] < h.train["loss"][0]


# ---------------------------------------------------------------- tier 2: the rendering against independent references
def _supersampled(values: torch.Tensor, size: int = 32, ss: int = 16) -> torch.Tensor:
    """Brute-force box-filtered rendering: fraction of ss x ss sub-pixel centres inside the shape."""
    c = (torch.arange(size * ss, dtype=torch.float64) + 0.5) / ss
    py, px = torch.meshgrid(c, c, indexing="ij")
    out = []
    for shape, s, th, cx, cy in values.double().tolist():
        dx, dy = px - cx, py - cy
        u = (math.cos(th) * dx + math.sin(th) * dy) / s
        v = (-math.sin(th) * dx + math.cos(th) * dy) / s
        if shape == 0:
            inside = (u.abs() <= 1) & (v.abs() <= 1)
        elif shape == 1:
            a, b = S._ELLIPSE_AXES
            inside = (u / a) ** 2 + (v / b) ** 2 <= 1
        else:  # the three edges of an equilateral triangle with circumradius R, one vertex at -v
            r = S._TRIANGLE_R
            verts = [(r * math.cos(t), r * math.sin(t)) for t in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
            inside = torch.ones_like(u, dtype=torch.bool)
            for (x1, y1), (x2, y2) in zip(verts, verts[1:] + verts[:1]):
                inside &= (x2 - x1) * (v - y1) - (y2 - y1) * (u - x1) >= 0  # left of each edge (counter-clockwise)
        out.append(inside.double().reshape(size, ss, size, ss).mean((1, 3)))
    return torch.stack(out)


def test_rendering_matches_16x_supersampling():
    g = torch.Generator().manual_seed(0)
    f = torch.stack([torch.randint(0, s, (24,), generator=g) for s in S.factor_sizes()], 1)
    f[:3, 0] = torch.tensor([0, 1, 2])
    ours = S.render(f)[:, 0].double()
    ref = _supersampled(S.factor_values(f))
    # the SDF ramp is exact for straight edges; corners and curvature leave small differences:
    # mean |difference| per pixel on the edge band below 0.06, total ink within 3 %
    edge = (ref > 0) & (ref < 1) | (ours > 0) & (ours < 1)
    assert (ours - ref).abs()[edge].mean() < 0.06
    assert torch.allclose(ours.sum((1, 2)), ref.sum((1, 2)), rtol=0.03)
    # pixels deep inside or outside agree exactly
    assert torch.equal(ours[(ref == 1) & ~edge], ref[(ref == 1) & ~edge])


@pytest.mark.parametrize("shape,area", [(0, 4.0), (1, math.pi * 1.25 * 0.7), (2, 3 * math.sqrt(3) / 4 * 1.3**2)])
def test_ink_equals_the_analytic_area_and_the_centroid_the_centre(shape, area):
    f = S.factor_grid()
    f = f[f[:, 0] == shape][::7]
    x = S.render(f)[:, 0].double()  # (N, 32, 32)
    v = S.factor_values(f).double()
    ink = x.sum((1, 2))
    # area in pixels = area in shape units * scale^2, within 2.5 %: the one-pixel ramp is exact along straight
    # edges; a pixel centred on a corner gets 1/2 instead of 1/4
    assert torch.allclose(ink, area * v[:, 1] ** 2, rtol=0.025)
    c = torch.arange(32, dtype=torch.float64) + 0.5
    cx = (x.sum(1) * c).sum(1) / ink
    cy = (x.sum(2) * c).sum(1) / ink
    # centroid = centre (the triangle's centroid is its circumcentre); within 0.05 px
    assert (cx - v[:, 3]).abs().max() < 0.05 and (cy - v[:, 4]).abs().max() < 0.05


def test_ellipse_principal_axis_follows_the_rotation():
    f = S.traverse_factor([1, 3, 0, 3, 4], "rotation")
    x = S.render(f)[:, 0].double()
    c = torch.arange(32, dtype=torch.float64) + 0.5
    py, px = torch.meshgrid(c, c, indexing="ij")
    for img, theta in zip(x, S.factor_values(f)[:, 2].tolist()):
        w = img / img.sum()
        mx, my = (w * px).sum(), (w * py).sum()
        cxx, cyy, cxy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum(), (w * (px - mx) * (py - my)).sum()
        angle = 0.5 * math.atan2(2 * cxy, cxx - cyy)  # major axis angle (y pointing down, as theta)
        assert abs(angle - theta) < 0.02  # radians


def test_every_factor_changes_the_image_and_levels_are_distinct():
    for j in range(5):
        imgs = S.render(S.traverse_factor([0, 2, 2, 3, 4], j))
        diffs = (imgs[1:] - imgs[:-1]).abs().sum((1, 2, 3))
        assert (diffs > 1.0).all(), S.FACTORS[j]


def test_deterministic_for_a_seed_and_seeds_differ():
    a, b, c = (S.sprites(300, test_size=30, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.factors_test, b.factors_test)
    assert not torch.equal(a.factors_train, c.factors_train)
    assert not torch.equal(S.sprites(seed=0).factors_test, S.sprites(seed=1).factors_test)


def test_random_factors_are_uniform_and_independent():
    d = S.sprites(20000, test_size=1, seed=0)
    f = torch.cat([d.factors_train, d.factors_test])
    sizes = S.factor_sizes()
    for j, s in enumerate(sizes):
        p = torch.bincount(f[:, j], minlength=s).double() / len(f)
        # each level's frequency within 5 binomial standard deviations of 1/s
        assert ((p - 1 / s).abs() < 5 * math.sqrt((1 / s) * (1 - 1 / s) / len(f))).all()
    # pairwise independence: plug-in mutual information (nats) stays at its small-sample bias level
    from vae_course.disentangle import mi_matrix
    mi = mi_matrix(f, f)
    off = mi[~torch.eye(5, dtype=torch.bool)]
    assert off.max() < 0.01  # bias ~ (s_j - 1)(s_k - 1) / (2N) <= 0.0012 nats


def test_rendering_is_fast():
    t0 = time.perf_counter()
    S.sprites(5000, seed=0)
    assert time.perf_counter() - t0 < 10.0  # about 1 s on an idle laptop core; generous for shared CI machines
