"""`vae-course train / evaluate / bench`: help texts, a 1-epoch run on digits, evaluation of its checkpoint."""
import json

import pytest
import torch

from vae_course.experiments import bench as B
from vae_course.experiments import train_vae
from vae_course.cli import main
from vae_course.checkpoint import load_checkpoint


@pytest.mark.parametrize("command", ["train", "evaluate", "bench", "info", "release"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: vae-course " + command in capsys.readouterr().out


def test_train_then_evaluate_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--data", "digits", "--epochs", "1", "--z-dim", "3", "--hidden", "64", "--out", str(out),
                 "--no-progress", "--seed", "1"])
    assert code == 0
    for name in ("checkpoint.pt", "history.json", "loss.png", "samples.png", "reconstructions.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    history = json.loads((out / "history.json").read_text())
    assert len(history["train"]["loss"]) == 1 and len(history["test"]["loss"]) == 1
    model, config, _, extra = load_checkpoint(out / "checkpoint.pt", return_extra=True)
    assert config.z_dim == 3 and config.x_shape == (1, 8, 8) and extra["data"] == "digits"
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.pt"), "--k", "20", "--n", "50"]) == 0
    text = capsys.readouterr().out
    assert "IWAE bound k=20" in text and "bits/dim" in text and "50 test images of digits" in text


def test_train_conv_ae_and_evaluate_refuses_it(tmp_path, capsys):
    out = tmp_path / "ae"
    assert main(["train", "--data", "digits", "--model", "ae", "--arch", "conv", "--epochs", "1", "--out", str(out),
                 "--no-progress"]) == 0
    model, config, _ = load_checkpoint(out / "checkpoint.pt")
    assert config.deterministic and config.arch == "conv" and config.activation == "relu"
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.pt"), "--k", "5", "--n", "4"]) == 2
    assert "deterministic autoencoder" in capsys.readouterr().err


def test_errors_are_reported_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["evaluate", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err
    assert main(["train", "--data", "mnist", "--out", str(tmp_path / "x")]) == 2  # no --idx-dir
    assert "--idx-dir" in capsys.readouterr().err
    with pytest.raises(ValueError, match="MNIST IDX"):
        train_vae.find_idx_files(tmp_path)


def test_idx_dir_finds_the_four_files(tmp_path):
    for name in train_vae.IDX_NAMES:
        (tmp_path / (name + ".gz")).write_bytes(b"")
    assert [p.name for p in train_vae.find_idx_files(tmp_path)] == [n + ".gz" for n in train_vae.IDX_NAMES]


def test_bench_pieces_agree_with_the_package():
    # the baseline's loss is the same negative ELBO as the package's VAE terms (Bernoulli + closed-form KL)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28, generator=g).bernoulli()
    mu, logvar, logits = torch.randn(4, 20, generator=g), torch.randn(4, 20, generator=g), torch.randn(4, 784, generator=g)
    from vae_course import distributions as D
    ours = (-D.log_bernoulli(x.flatten(1), logits) + D.kl_normal_std(mu, logvar)).sum()
    assert torch.allclose(B.baseline_loss(torch.sigmoid(logits), x, mu, logvar), ours, rtol=1e-4)
    assert B.forward_flops([(784, 400), (400, 40), (20, 400), (400, 784)]) == 2 * 651_200
    gflops, sps = B.gemm_roofline([(64, 32)], batch_size=16, repeats=2)
    assert gflops > 0 and sps > 0
    ds = B.PerItemImages((x[:, 0] * 255).to(torch.uint8).numpy(), torch.arange(4).numpy())
    img, label = ds[2]
    assert img.shape == (1, 28, 28) and label == 2 and torch.equal(img, x[2])
