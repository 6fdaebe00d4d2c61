"""vae_course.disentangle (+ its plots and widget): the beta-ELBO and capacity loss against their formulas; the
metrics against independent references and on synthetic codes whose answer is known; short training runs
that must show what beta does; the sweep command reproducing the stored slice of vae_course/stored/beta_sweep.csv."""
import argparse
import math
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import vae_course as vc  # noqa: E402
from vae_course import disentangle as Dg  # noqa: E402
from vae_course import objectives as O  # noqa: E402
from vae_course.experiments import beta_sweep as BS  # noqa: E402
from vae_course import sprites as S  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SWEEP_CSV = Dg.SWEEP_PATH


@pytest.fixture(scope="module")
def grid():
    return S.sprites_grid()


def _codes(seed=0, noise=0.05, extra=3):
    """A perfectly factorised code of the sprite grid: one latent per standardised factor, plus noise latents."""
    f = S.factor_grid()
    g = torch.Generator().manual_seed(seed)
    z = (f.double() - f.double().mean(0)) / f.double().std(0)
    z = z + noise * torch.randn(z.shape, generator=g, dtype=torch.float64)
    return torch.cat([z, noise * torch.randn(len(f), extra, generator=g, dtype=torch.float64)], 1).float(), f


def _rotation(m, seed=1):
    q, _ = torch.linalg.qr(torch.randn(m, m, generator=torch.Generator().manual_seed(seed)))
    return q


# ---------------------------------------------------------------- tier 1: objectives, shapes and errors
def test_negative_beta_elbo_matches_the_vae_objective():
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 8, 8), z_dim=3, hidden=16)
    x = torch.rand(5, 1, 8, 8).bernoulli()
    for beta in (0.0, 1.0, 4.0):
        t = model.elbo(x, beta=beta, generator=torch.Generator().manual_seed(1))
        q = model.encode(x)
        z = q.mu + torch.exp(0.5 * q.logvar) * torch.randn(q.mu.shape, generator=torch.Generator().manual_seed(1))
        ours = O.negative_beta_elbo(x.flatten(1), model.decode(z).logits.flatten(1), q.mu, q.logvar, beta)
        assert torch.allclose(ours, -t.total, atol=1e-4)
        # only the KL is weighted: d(loss)/d(beta) is the KL, whatever the reconstruction
        assert torch.allclose(O.negative_beta_elbo(x.flatten(1), model.decode(z).logits.flatten(1), q.mu, q.logvar,
                                                    beta + 1) - ours, t.kl, atol=1e-4)


def test_capacity_vae_loss_and_schedule():
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 8, 8), z_dim=3, hidden=16)
    x = torch.rand(6, 1, 8, 8).bernoulli()
    torch.manual_seed(1)
    with torch.no_grad():
        out = model.loss(x, beta=50.0, capacity=2.0)
    # D + gamma |R - C| with batch means, from the same draw of z
    assert math.isclose(float(out.loss), float(-out.terms["recon"] + 50.0 * (out.terms["kl"] - 2.0).abs()), rel_tol=1e-5)
    torch.manual_seed(2)  # without a capacity: the beta-ELBO, D + beta R
    with torch.no_grad():
        a = model.loss(x, beta=3.0)
    assert math.isclose(float(a.loss), float(-a.terms["recon"] + 3.0 * a.terms["kl"]), rel_tol=1e-5)
    sched = O.capacity_schedule(10.0, gamma=100.0, anneal=0.5)
    assert sched(0, 0, 100) == {"beta": 100.0, "capacity": 0.0}
    assert sched(0, 25, 100)["capacity"] == pytest.approx(5.0) and sched(3, 99, 100)["capacity"] == 10.0
    assert isinstance(vc.models.build_model("VAE", vc.models.config_to_dict(model.config)), vc.models.VAE)


@pytest.mark.parametrize("call,match", [
    (lambda: O.capacity_schedule(-1.0), "c_max"),
    (lambda: O.capacity_schedule(5.0, anneal=0.0), "anneal"),
    (lambda: Dg.mig(torch.zeros(4, 2, dtype=torch.int64), torch.zeros(4, 1, dtype=torch.int64)), "codes"),
    (lambda: Dg.mig(torch.zeros(4, 2), torch.zeros(4, 1)), "factors"),
    (lambda: Dg.mig(torch.zeros(4, 2), torch.zeros(3, 1, dtype=torch.int64)), "factors"),
    (lambda: Dg.mig(torch.full((4, 2), float("nan")), torch.zeros(4, 1, dtype=torch.int64)), "codes"),
    (lambda: Dg.discretize(torch.zeros(4, 2), 0), "n_bins"),
    (lambda: Dg.dci(torch.zeros(10, 1), torch.zeros(10, 1, dtype=torch.int64)), "codes"),
    (lambda: Dg.dci(torch.zeros(10, 2), torch.zeros(10, 1, dtype=torch.int64), n_train=10), "n_train"),
    (lambda: Dg.mig_from_discrete(torch.zeros(4, 1, dtype=torch.int64), torch.zeros(4, 1, dtype=torch.int64)), "codes"),
    (lambda: BS.train_beta_vae(torch.rand(8, 1, 8, 8), beta=-1.0, epochs=1), "beta"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_discretize_bins():
    z = torch.tensor([[0.0, 5.0], [1.0, 5.0], [0.5, 5.0], [0.999, 5.0]])
    d = Dg.discretize(z, 4)
    assert d.dtype == torch.int64 and d[:, 0].tolist() == [0, 3, 2, 3] and d[:, 1].tolist() == [0, 0, 0, 0]


# ---------------------------------------------------------------- tier 2: metrics against references and known answers
def test_mutual_information_and_entropy_match_sklearn():
    from sklearn.metrics import mutual_info_score

    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (2000, 3), generator=g)
    b = torch.stack([a[:, 0], (a[:, 1] + torch.randint(0, 2, (2000,), generator=g)) % 5,
                     torch.randint(0, 3, (2000,), generator=g)], 1)
    mi = Dg.mi_matrix(a, b)
    ref = torch.tensor([[mutual_info_score(a[:, j], b[:, k]) for k in range(3)] for j in range(3)], dtype=torch.float64)
    assert torch.allclose(mi, ref, atol=1e-10)
    # I(a; a) = H(a); a uniform factor on L levels has H = log L
    assert torch.allclose(Dg.mi_matrix(a, a).diagonal(), Dg.factor_entropy(a))
    assert torch.allclose(Dg.factor_entropy(S.factor_grid()), torch.tensor(S.factor_sizes()).double().log())


def test_mig_on_synthetic_codes():
    z, f = _codes()
    perfect = Dg.mig(z, f)
    assert perfect.score > 0.95 and perfect.mi.shape == (8, 5) and perfect.gaps.shape == (5,)
    rotated = Dg.mig(z @ _rotation(8), f)
    assert rotated.score < 0.3
    ignored = z.clone()
    ignored[:, 3] = z[:, 6]  # the x latent is replaced by noise: the code ignores x
    res = Dg.mig(ignored, f)
    assert res.gaps[3] < 0.02 and res.score < 0.8 + 0.01  # that factor's gap vanishes: at most (K-1)/K
    # the discrete route gives the same number
    assert math.isclose(float(Dg.mig_from_discrete(Dg.discretize(z), f)), perfect.score, rel_tol=1e-6)


def test_mig_is_normalised_by_the_factor_entropy():
    z, f = _codes()
    res = Dg.mig(z, f)
    top2 = res.mi.double().topk(2, dim=0).values
    raw = top2[0] - top2[1]
    assert torch.allclose(res.gaps.double(), raw / res.entropy.double(), atol=1e-6)
    assert not math.isclose(float(raw.mean()), res.score, rel_tol=0.05)  # factors have different entropies


def test_dci_on_synthetic_codes():
    z, f = _codes()
    perfect = Dg.dci(z, f, n_trees=4)
    assert perfect.disentanglement > 0.9 and perfect.completeness > 0.9 and perfect.informativeness > 0.95
    assert perfect.importance.shape == (8, 5) and torch.allclose(perfect.importance.sum(0), torch.ones(5))
    rotated = Dg.dci(z @ _rotation(8), f, n_trees=4)
    assert rotated.disentanglement < 0.45 and rotated.completeness < 0.45
    ignored = z.clone()
    ignored[:, 3] = z[:, 6]
    res = Dg.dci(ignored, f, n_trees=4)
    assert res.completeness < perfect.completeness - 0.1
    assert res.informativeness < perfect.informativeness - 0.1  # x is predicted at about chance (1/8)


# ---------------------------------------------------------------- tier 3: short training runs
def test_beta_trades_rate_for_distortion_and_capacity_holds_the_rate():
    small = {"x": 4, "y": 4, "rotation": 3}  # 720 sprites: enough to see what beta does in a few seconds
    data = S.sprites(test_size=100, levels=small)
    images, factors = S.sprites_grid(levels=small)
    low = BS.train_beta_vae(data, beta=1.0, epochs=6, seed=0, hidden=64)
    high = BS.train_beta_vae(data, beta=16.0, epochs=6, seed=0, hidden=64)
    s_low, s_high = (Dg.score_model(r.model, images, factors, dci_trees=3) for r in (low, high))
    assert s_high["rate"] < 0.5 * s_low["rate"] and s_high["distortion"] > s_low["distortion"]
    assert s_high["active"] < s_low["active"]
    kl = Dg.kl_per_latent(high.model, images)
    assert kl.shape == (8,) and math.isclose(float(kl.sum()), s_high["rate"], rel_tol=1e-4)
    cap = BS.train_beta_vae(data, beta=100.0, capacity=4.0, epochs=6, seed=0, hidden=64)
    assert isinstance(cap.model, vc.models.VAE)
    assert abs(cap.history.train["kl"][-1] - 4.0) < 1.5  # the last epoch's C is close to 4 nats


# ---------------------------------------------------------------- the stored sweep and the command that made it
def _row(config, beta, **kw):
    row = {k: 0.5 for k in Dg.SWEEP_COLUMNS}
    row.update({"config": config, "objective": "beta-vae", "beta": beta, "tc": beta, "seed": 0, "levels": "default",
                "epochs": 1, "z_dim": 2, "arch": "mlp", "hidden": 8, "batch_size": 4, "lr": 1e-3, "active": 2,
                "gap_rotation": float("nan")})
    row.update(kw)
    return row


def test_sweep_csv_round_trip(tmp_path):
    rows = [_row("a", 1.0), _row("b", 2.0, objective="beta-tcvae", tc=6.0, levels="rotation=1")]
    path = tmp_path / "s.csv"
    BS.write_sweep(rows, path)
    BS.write_sweep([{**rows[0], "mig": 0.9}], path)  # replaces config "a", keeps "b"
    back = Dg.read_sweep(path)
    assert [r["config"] for r in back] == ["b", "a"] and back[1]["mig"] == 0.9 and back[0]["active"] == 2
    b = Dg.read_sweep(path, config="b")[0]
    assert b["beta"] == 2.0 and b["tc"] == 6.0 and b["objective"] == "beta-tcvae" and b["levels"] == "rotation=1"
    assert math.isnan(b["gap_rotation"]) and set(b) == set(Dg.SWEEP_COLUMNS)


def test_levels_round_trip_and_bad_levels_are_named():
    assert Dg.parse_levels("rotation=1,x=4") == {"rotation": 1, "x": 4}
    assert Dg.parse_levels("default") is None and Dg.format_levels(None) == "default"
    assert Dg.format_levels(Dg.parse_levels("rotation=1")) == "rotation=1"
    for bad in ("colour=2", "x=two", "x"):
        with pytest.raises(ValueError, match="levels"):
            Dg.parse_levels(bad)


def test_stored_sweep_has_every_setting_over_at_least_three_seeds():
    rows = Dg.read_sweep(SWEEP_CSV, config="sweep")
    settings = {(r["objective"], r["beta"], r["tc"]) for r in rows}
    assert {o for o, _, _ in settings} == set(BS.OBJECTIVES) and len(settings) >= 5
    assert all(len([r for r in rows if (r["objective"], r["beta"], r["tc"]) == s]) >= 3 for s in settings)
    assert all(0 <= r["mig"] <= 1 and 0 <= r["dci_d"] <= 1 and r["rate"] > 0 for r in rows)
    # the KL split of each run adds up to its rate (exact sums on the grid, one draw per image: s.e. well below 0.3)
    assert all(abs(r["mi"] + r["total_correlation"] + r["dim_kl"] - r["rate"]) < 0.3 for r in rows)
    # the index-code MI is at most log N, N the number of grid images it is computed on
    assert all(r["mi"] <= math.log(len(S.factor_grid(Dg.parse_levels(r["levels"])))) + 1e-6 for r in rows)


def _sweep_args(rows, out):
    s = rows[0]
    parser = argparse.ArgumentParser()
    BS.add_arguments(parser)
    betas = sorted({str(r["beta"]) for r in rows if r["objective"] == "beta-vae"})
    tcs = sorted({str(r["tc"]) for r in rows if r["objective"] == "beta-tcvae"})
    return parser.parse_args(["--config", s["config"], "--betas", *betas, "--tcs", *tcs,
                              "--seeds", *sorted({str(r["seed"]) for r in rows}), "--epochs", str(s["epochs"]),
                              "--z-dim", str(s["z_dim"]), "--hidden", str(s["hidden"]), "--batch-size",
                              str(s["batch_size"]), "--lr", str(s["lr"]), "--arch", s["arch"], "--levels", s["levels"],
                              "--device", "cpu", "--out", str(out)])


def test_command_reproduces_the_stored_tiny_slice(tmp_path):
    """`vae-course sweep-beta --config tiny ...` rerun now must give the stored rows: rate, distortion and the KL
    split within 2 % (float summation order may differ between machines and thread counts), the metrics within 0.03."""
    stored = Dg.read_sweep(SWEEP_CSV, config="tiny")
    assert stored, "vae_course/stored/beta_sweep.csv has no rows with config 'tiny'"
    assert {r["objective"] for r in stored} == set(BS.OBJECTIVES)
    out = tmp_path / "tiny.csv"
    assert BS.run(_sweep_args(stored, out)) == 0
    new = {(r["objective"], r["tc"], r["seed"]): r for r in Dg.read_sweep(out)}
    assert len(new) == len(stored)
    for r in stored:
        n = new[(r["objective"], r["tc"], r["seed"])]
        for key in ("rate", "distortion", "mi", "dim_kl"):
            assert n[key] == pytest.approx(r[key], rel=0.02), key
        for key in ("total_correlation", "mig", "dci_d", "dci_c", "dci_i"):
            assert n[key] == pytest.approx(r[key], abs=0.03), key
        assert abs(n["active"] - r["active"]) <= 1


def test_command_saves_the_chosen_run_in_half_precision(tmp_path, capsys):
    rows = [_row("t", 1.0, objective="beta-tcvae", tc=3.0, levels="rotation=1,x=2,y=2,scale=2", hidden=8, epochs=1)]
    args = _sweep_args(rows, tmp_path / "t.csv")
    args.save_model, args.save_run = str(tmp_path / "m.pt"), "beta-tcvae,3,0"
    assert BS.run(args) == 0
    model, row, history = Dg.load_stored_model(tmp_path / "m.pt")
    assert next(model.parameters()).dtype == torch.float32 and row["tc"] == 3.0 and history.epochs == 1
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    assert payload["extra"]["command"].startswith("vae-course sweep-beta --betas --tcs 3 --seeds 0 --epochs 1")
    # 'best' keeps the run of highest MIG among the sweep's runs
    args.betas, args.seeds, args.save_run = [2.0], [0, 1], "best"
    assert BS.run(args) == 0
    rows_out = Dg.read_sweep(args.out)
    _, row, _ = Dg.load_stored_model(tmp_path / "m.pt")
    assert len(rows_out) == 4 and row["mig"] == pytest.approx(max(r["mig"] for r in rows_out), abs=1e-6)
    args.seeds = [0]
    args.save_run = "beta-tcvae,5,0"  # not a run of this sweep
    assert BS.run(args) == 2 and "not one of the runs" in capsys.readouterr().err
    args.save_model = None
    assert BS.run(args) == 2 and "give both" in capsys.readouterr().err
    args.save_model, args.save_run = str(tmp_path / "m.pt"), "vae,1,0"
    assert BS.run(args) == 2 and "--save-run" in capsys.readouterr().err


def test_stored_model_is_the_run_of_its_row():
    """The stored model (half-precision weights) scores as its row of the stored sweep says (MIG within 0.03, rate
    within 2 %: the weights were rounded to float16), and its history's first epoch is what its command gives now
    (train loss within 1 %)."""
    model, row, history = Dg.load_stored_model()
    images, factors = S.sprites_grid(levels=Dg.parse_levels(row["levels"]))
    assert isinstance(model, vc.models.VAE) and next(model.parameters()).dtype == torch.float32
    assert Path(Dg.MODEL_PATH).stat().st_size < 2_000_000
    stored = [r for r in Dg.read_sweep(SWEEP_CSV, config=row["config"])
              if (r["objective"], r["tc"], r["seed"]) == (row["objective"], row["tc"], row["seed"])]
    assert len(stored) == 1 and stored[0]["mig"] == pytest.approx(row["mig"], abs=1e-6)
    assert history.epochs == row["epochs"]
    again = Dg.score_model(model, images, factors, seed=row["seed"], dci_trees=3)
    assert again["mig"] == pytest.approx(row["mig"], abs=0.03) and again["rate"] == pytest.approx(row["rate"], rel=0.02)
    data, _, _ = BS.sweep_data(Dg.parse_levels(row["levels"]))
    first = BS.train_beta_vae(data, beta=row["beta"], tc=row["tc"] if row["objective"] == "beta-tcvae" else None,
                              seed=row["seed"], epochs=1, z_dim=row["z_dim"], arch=row["arch"], hidden=row["hidden"],
                              batch_size=row["batch_size"], lr=row["lr"], device="cpu")
    assert first.history.train["loss"][0] == pytest.approx(history.train["loss"][0], rel=0.01)


# ---------------------------------------------------------------- plots and widget
def test_plots_and_widget_draw(grid):
    images, factors = grid
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 32, 32), z_dim=4, hidden=16)
    kl = Dg.kl_per_latent(model, images[:50])
    ax = vc.plotting.latent_traversal(model, kl=kl, x=images[:1], n_steps=5)
    assert len(ax.get_yticklabels()) == 4
    vc.plotting.latent_traversal(model, n_rows=2)
    axes = vc.plotting.traversal_point(model, 1, 0.5, kl=kl)
    assert len(axes) == 2 and len(axes[1].patches) == 1
    with pytest.raises(ValueError, match="rank"):
        vc.plotting.traversal_point(model, 4, 0.0)
    with pytest.raises(ValueError, match="z"):
        vc.plotting.latent_traversal(model, z=torch.zeros(3))
    vc.plotting.kl_bars(kl)
    res = Dg.mig(vc.evaluate.encode_all(model, images[::10])[0], factors[::10])
    vc.plotting.mi_heatmap(res.mi, res.entropy, factor_names=S.FACTORS, kl=kl)
    vc.plotting.factor_traversals()
    rows = [{"beta": b, "seed": s, "rate": 10 / b + s, "distortion": 50 + b, "mig": 0.1 * s, "dci_d": 0.2}
            for b in (1.0, 4.0) for s in (0, 1)]
    vc.plotting.metrics_vs_beta(rows)
    ax = vc.plotting.rate_distortion(rows)
    assert len(ax.collections) == 2
    w = vc.widgets.traversal_widget(model, kl=kl)
    assert len(w.children) >= 3
    plt.close("all")


def test_sweep_plots_draw_one_dot_per_run_and_one_bar_per_model():
    rows = [_row("s", b, seed=s, mig=0.1 * s + 0.01 * b, rate=10 / b + s, distortion=50 + b,
                 **{f"gap_{n}": 0.1 * s for n in S.FACTORS}) for b in (1.0, 4.0) for s in (0, 1, 2)]
    rows += [_row("s", 1.0, objective="beta-tcvae", tc=6.0, seed=s, mig=0.5, **{f"gap_{n}": 0.5 for n in S.FACTORS})
             for s in (0, 1, 2)]
    ax = vc.plotting.sweep_points(rows, metric="mig")
    dots = sum(len(c.get_offsets()) for c in ax.collections)
    assert dots == len(rows) and [t.get_text() for t in ax.get_xticklabels()] == ["β-VAE β=1", "β-VAE β=4", "β-TCVAE λ=6"]
    ax = vc.plotting.factor_gaps(rows)
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(rows) * len(S.FACTORS)
    ax = vc.plotting.rate_distortion(rows)
    assert len(ax.collections) == 3 and len(ax.get_legend().get_texts()) == 3
    split = vc.tc.KLDecomposition(2.0, 0.5, torch.tensor([0.25, 0.25]), 3.0, 0.01)
    ax = vc.plotting.kl_split_bars({"a": split, "b": rows[0]})
    widths = [p.get_width() for p in ax.patches]
    assert len(widths) == 6 and widths[0] == 2.0 and widths[2] == 0.5 and widths[4] == pytest.approx(0.5)
    assert S.FACTORS and vc.plotting.setting_name(rows[-1]) == "β-TCVAE λ=6"
    plt.close("all")


def test_summarize_sweep_gives_mean_and_spread_per_setting():
    rows = [_row("s", 4.0, seed=s, mig=m) for s, m in enumerate((0.1, 0.2, 0.6))]
    rows.append(_row("s", 1.0, objective="beta-tcvae", tc=6.0, mig=0.4))
    out = Dg.summarize_sweep(rows, keys=("mig",))
    assert [(o["objective"], o["n"]) for o in out] == [("beta-vae", 3), ("beta-tcvae", 1)]
    assert out[0]["mig"] == pytest.approx(0.3) and out[0]["mig_sd"] == pytest.approx(float(torch.tensor([0.1, 0.2, 0.6]).std()))
    assert out[0]["mig_min"] == 0.1 and out[0]["mig_max"] == 0.6 and out[1]["mig_sd"] == 0.0


def test_kl_split_of_a_model_sums_to_its_rate(grid):
    images, _ = grid
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 32, 32), z_dim=4, hidden=16)
    split = Dg.kl_split(model, images[::8], n_samples=4)
    rate = float(Dg.kl_per_latent(model, images[::8]).sum())
    assert split.kl == pytest.approx(rate, rel=1e-4)
    assert abs(split.mi + split.tc + float(split.dim_kl.sum()) - rate) < 4 * split.se  # 4 Monte-Carlo s.e.


def test_constant_factors_are_left_out():
    z, f = _codes()
    keep = f[:, 1] == 2  # scale fixed: a constant factor
    res = Dg.mig(z[keep], f[keep])
    assert math.isnan(float(res.gaps[1])) and res.score > 0.9
    assert math.isclose(float(Dg.mig_from_discrete(Dg.discretize(z[keep]), f[keep])), res.score, rel_tol=1e-6)
    d = Dg.dci(z[keep], f[keep], n_trees=3)
    assert d.importance.shape == (8, 4) and d.completeness > 0.9


def test_latent_codes_are_means_or_draws_of_q():
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 8, 8), z_dim=3, hidden=16)
    x = torch.rand(4000, 1, 8, 8)
    with torch.no_grad():
        q = model.encode(x)
    assert torch.allclose(Dg.latent_codes(model, x), q.mu, atol=1e-6)
    z = Dg.latent_codes(model, x, sample=True, generator=torch.Generator().manual_seed(0))
    eps = (z - q.mu) / torch.exp(0.5 * q.logvar)  # must be standard normal draws
    # 4,000 x 3 draws: mean within 5 standard errors of 0, standard deviation within 5 % of 1
    assert eps.mean().abs() < 5 / math.sqrt(eps.numel()) and abs(float(eps.std()) - 1) < 0.05
    z2 = Dg.latent_codes(model, x, sample=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, z2)


def test_dci_scores_follow_their_formulas_from_the_importances():
    z, f = _codes(noise=0.5)  # a noisy code, so that the importances are spread and the entropies non-trivial
    d = Dg.dci(z @ _rotation(8, seed=3), f, n_trees=3)
    r = d.importance.double()  # (m, K)
    m, k = r.shape
    p = r / r.sum(1, keepdim=True)
    h_k = -(p * p.clamp(min=1e-12).log()).sum(1) / math.log(k)  # entropy of each latent's row, base K
    rho = r.sum(1) / r.sum()
    assert math.isclose(d.disentanglement, float((rho * (1 - h_k)).sum()), rel_tol=1e-5)
    pt = r / r.sum(0, keepdim=True)
    h_m = -(pt * pt.clamp(min=1e-12).log()).sum(0) / math.log(m)  # entropy of each factor's column, base m
    assert math.isclose(d.completeness, float((1 - h_m).mean()), rel_tol=1e-5)
    assert 0 < d.disentanglement < 1 and 0 < d.completeness < 1
