"""Checkpoints carry a SHA-256 of their weights: a flipped byte, a re-saved state dict and NaN weights are refused.

``torch.load`` does not check the zip archive's CRCs, so without the checksum a flipped byte inside a weight tensor
loads silently (the first test shows that this is so, which is what makes the later ones meaningful).
"""
from __future__ import annotations

import warnings

import pytest
import torch

from vae_course.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint, weights_digest
from vae_course.models import VAE


def _model():
    torch.manual_seed(0)
    return VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)


def _flip_a_byte_inside(path, tensor: torch.Tensor) -> None:
    """Flip one bit in the middle of ``tensor``'s bytes where the file stores them (the data is stored uncompressed)."""
    raw = bytearray(path.read_bytes())
    blob = tensor.detach().contiguous().numpy().tobytes()
    at = raw.find(blob)
    assert at >= 0 and raw.find(blob, at + 1) < 0, "the tensor's bytes must occur exactly once in the file"
    raw[at + len(blob) // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def test_a_checkpoint_stores_the_sha256_of_its_weights(tmp_path):
    model = _model()
    path = save_checkpoint(tmp_path / "a.pt", model)
    payload = read_checkpoint(path)
    assert payload["weights_sha256"] == weights_digest(model.state_dict())
    assert len(payload["weights_sha256"]) == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a verified checkpoint loads without a word
        loaded = load_checkpoint(path).model
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_the_digest_covers_name_dtype_shape_and_bytes():
    t = torch.arange(6, dtype=torch.float32)
    base = weights_digest({"w": t})
    assert weights_digest({"w": t.clone()}) == base
    assert weights_digest({"v": t}) != base
    assert weights_digest({"w": t.reshape(2, 3)}) != base  # same bytes, other shape
    assert weights_digest({"w": t.view(torch.int32)}) != base  # same bytes, other dtype
    t2 = t.clone()
    t2[3] = torch.nextafter(t2[3], torch.tensor(10.0))  # one ulp
    assert weights_digest({"w": t2}) != base


def test_a_flipped_byte_inside_a_weight_tensor_is_refused(tmp_path):
    model = _model()
    path = save_checkpoint(tmp_path / "flipped.pt", model)
    _flip_a_byte_inside(path, model.encoder.head.weight)
    raw = torch.load(path, weights_only=True)  # torch itself loads the damaged file without complaint
    assert not torch.equal(raw["state_dict"]["encoder.head.weight"], model.encoder.head.weight)
    with pytest.raises(ValueError, match=r"flipped\.pt.*SHA-256 checksum.*corrupt"):
        load_checkpoint(path)


def test_a_state_dict_re_saved_under_the_old_checksum_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "good.pt", _model())
    payload = read_checkpoint(path)
    payload["state_dict"]["decoder.net.0.bias"] = payload["state_dict"]["decoder.net.0.bias"] + 1e-3
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(ValueError, match=r"edited\.pt.*checksum"):
        load_checkpoint(tmp_path / "edited.pt")


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_a_checkpoint_with_non_finite_weights_is_refused_naming_the_file(tmp_path, value):
    payload = read_checkpoint(save_checkpoint(tmp_path / "good.pt", _model()))
    payload["state_dict"] = {k: torch.full_like(v, value) if v.is_floating_point() else v
                             for k, v in payload["state_dict"].items()}
    payload["weights_sha256"] = weights_digest(payload["state_dict"])  # a consistent file, written by a broken run
    torch.save(payload, tmp_path / "allnan.pt")
    with pytest.raises(ValueError, match=r"allnan\.pt.*non-finite weights"):
        load_checkpoint(tmp_path / "allnan.pt")


def test_an_old_checkpoint_without_a_checksum_loads_with_a_warning(tmp_path):
    model = _model()
    payload = read_checkpoint(save_checkpoint(tmp_path / "good.pt", model))
    del payload["weights_sha256"]
    torch.save(payload, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match=r"old\.pt.*no weights checksum"):
        loaded = load_checkpoint(tmp_path / "old.pt").model
    assert torch.equal(loaded.encoder.head.weight, model.encoder.head.weight)
    payload["state_dict"]["encoder.head.bias"] = torch.full_like(payload["state_dict"]["encoder.head.bias"], float("nan"))
    torch.save(payload, tmp_path / "old_nan.pt")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"old_nan\.pt.*non-finite"):
        load_checkpoint(tmp_path / "old_nan.pt")  # without a checksum the finiteness check still runs


def test_a_malicious_pickle_and_a_truncated_file_stay_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": Evil()}))
    with pytest.raises(ValueError, match=r"evil\.pt"):
        load_checkpoint(tmp_path / "evil.pt")
    good = save_checkpoint(tmp_path / "good.pt", _model())
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"cut\.pt"):
        load_checkpoint(tmp_path / "cut.pt")


def test_every_stored_checkpoint_carries_a_verified_checksum():
    """The models shipped in vae_course/stored/ load without the 'cannot be verified' warning: each has its SHA-256."""
    import warnings as _w
    from pathlib import Path

    import vae_course
    import vae_course.quality  # noqa: F401  (registers the digit classifier's FeatureNet)

    files = sorted((Path(vae_course.__file__).parent / "stored").glob("*.pt"))
    assert files, "no stored checkpoints found"
    for f in files:
        with _w.catch_warnings():
            _w.simplefilter("error")
            payload = torch.load(f, weights_only=True, map_location="cpu")
            assert "weights_sha256" in payload, f.name
            load_checkpoint(f)
