"""Device-agnostic code, run on every device this machine has: the CPU always, CUDA and MPS where present.

On a GPU machine ``VAE_COURSE_DEVICE=cuda python3.11 make.py test`` runs this file on the GPU too, and the chapters
(which call ``get_device(default="cpu")``) run on the device the variable names. Nothing in the package may call
``.cuda()`` or name a device it was not given.
"""
import ast
import re
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vae_course as vc

ROOT = Path(__file__).resolve().parents[1]
DEVICES = [str(d) for d in vc.utils.available_devices()]


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def _bits(n, shape=(1, 8, 8), seed=0):
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=torch.Generator().manual_seed(seed))


def test_the_environment_variable_reaches_get_device_and_default_is_the_fallback(monkeypatch):
    monkeypatch.delenv("VAE_COURSE_DEVICE", raising=False)
    assert vc.utils.get_device(default="cpu") == torch.device("cpu")
    monkeypatch.setenv("VAE_COURSE_DEVICE", "cpu")
    assert vc.utils.get_device(default="mps") == torch.device("cpu")  # the variable wins over the default
    monkeypatch.setenv("VAE_COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="VAE_COURSE_DEVICE: got 'tpu'"):
        vc.utils.get_device(default="cpu")
    assert vc.utils.get_device("cpu") == torch.device("cpu")  # an explicit choice wins over the variable


def _notebooks():
    return sorted([*ROOT.glob("book/*.ipynb"), *ROOT.glob("solutions/*.ipynb"), *ROOT.glob("exercises/*.ipynb")])


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebooks_choose_their_device_through_the_environment_variable(path):
    """A chapter picks its device with get_device(default=...) or get_device(), never a fixed get_device("cpu"),
    so VAE_COURSE_DEVICE moves the whole book to a GPU; and no notebook writes .cuda()."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        assert ".cuda(" not in src, f"{path.name}: use .to(device), not .cuda()"
        for node in ast.walk(ast.parse(re.sub(r"(?m)^(\s*)[%!]", r"\1#", src))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "get_device":
                assert not node.args, f"{path.name}: get_device({ast.unparse(node.args[0])}) ignores VAE_COURSE_DEVICE; use get_device(default=...)"


def test_the_package_never_calls_cuda_directly():
    bad = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in (ROOT / "vae_course").rglob("*.py")
           for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
           if isinstance(n, ast.Attribute) and n.attr == "cuda" and isinstance(n.ctx, ast.Load)
           and not (isinstance(n.value, ast.Name) and n.value.id == "torch")]
    assert not bad, f".cuda() or x.cuda found (use .to(device)): {bad}"


def test_fit_iwae_and_sampling_on_each_device(device):
    data = vc.data.digits(binarize="dynamic")
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 8, 8), z_dim=4, hidden=32)
    h = vc.train.fit(model, data, epochs=2, batch_size=128, lr=3e-3, device=device, progress=False)
    assert next(model.parameters()).device.type == device.type and h.test["loss"][-1] < h.test["loss"][0]
    ll = vc.evaluate.log_likelihood(model, data.x_test[:20], k=50, generator=torch.Generator().manual_seed(1))
    assert ll.log_px.device.type == "cpu" and torch.isfinite(ll.log_px).all()
    x = model.sample(6, generator=torch.Generator().manual_seed(2))  # a CPU generator works for any device
    assert x.shape == (6, 1, 8, 8) and x.device.type == device.type


def test_quantizer_and_pixelcnn_on_each_device(device):
    torch.manual_seed(0)
    q = vc.models.VectorQuantizer(8, 4, ema=True, restart_every=2).to(device)
    z = torch.randn(5, 4, 3, 3, device=device, requires_grad=True)
    out = q(z)
    (out.quantized.sum() + out.loss.total).backward()
    assert z.grad is not None and out.indices.device.type == device.type and int(q.restarts) > 0
    net = vc.models.PixelCNN(1, 8, 1).to(device)
    imgs = net.sample((2, 1, 4, 4), generator=torch.Generator().manual_seed(3))
    assert imgs.shape == (2, 1, 4, 4) and imgs.device.type == device.type
    ar = vc.models.AutoregressiveVAE(x_shape=(1, 4, 4), z_dim=2, hidden=8, pixel_hidden=4).to(device)
    assert ar.sample(3, generator=torch.Generator().manual_seed(4)).device.type == device.type
    assert torch.isfinite(ar.loss(_bits(4, (1, 4, 4)).to(device)).loss)


def test_a_checkpoint_written_on_one_device_loads_on_every_other(device, tmp_path):
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 8, 8), z_dim=3, hidden=16, prior="mixture").to(device)
    path = vc.checkpoint.save_checkpoint(tmp_path / "m.pt", model)
    x = _bits(4)
    for target in DEVICES:
        loaded = vc.checkpoint.load_checkpoint(path, map_location=target).model
        assert next(loaded.parameters()).device.type == torch.device(target).type
        with torch.no_grad():
            torch.manual_seed(5)
            a = loaded.elbo(x.to(target)).elbo.cpu()
            torch.manual_seed(5)
            b = model.elbo(x.to(device)).elbo.cpu()
        if torch.device(target).type == device.type:
            assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.skipif(len(DEVICES) > 1, reason="needs a machine without a GPU to check the refusal")
def test_asking_for_a_missing_gpu_through_the_variable_is_refused_in_a_chapter_style_call():
    code = "import vae_course as vc; vc.utils.get_device(default='cpu')"
    env = {**os.environ, "VAE_COURSE_DEVICE": "cuda"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "VAE_COURSE_DEVICE: got 'cuda' but this machine has no CUDA GPU" in proc.stderr


def test_stored_models_load_and_sample_on_each_device(device):
    """Every stored long run (trained on the CPU) loads onto each device present and samples there."""
    for name in vc.pretrained.available():
        model = vc.pretrained.load(name, map_location=device.type).model
        assert next(model.parameters()).device.type == device.type, name
        if hasattr(model, "sample") and name != "vqvae":  # the VQ-VAE samples through its code prior
            x = model.sample(2, generator=torch.Generator(device=device).manual_seed(0))
            assert x.device.type == device.type and torch.isfinite(x).all(), name
