"""vae_course.models.conditional: packing a label with its image, the conditional ELBO against its formula written out,
the IWAE bound on log p(x|y), analogies and inpainting; and a short training run whose samples depend on the label
(a digit classifier reads the label back from them)."""
import pytest
import torch
import torch.nn.functional as F

import vae_course as vc
from vae_course.models import ConditionalVAE, labelled, pack, unpack


def _x(n, shape=(1, 8, 8), seed=0):
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=torch.Generator().manual_seed(seed))


def test_pack_and_unpack_round_trip_and_refuse_bad_labels():
    x, y = _x(4), torch.tensor([0, 3, 9, 3])
    xy = pack(x, y)
    assert xy.shape == (4, 74)
    pixels, onehot = unpack(xy)
    assert torch.equal(pixels, x.flatten(1)) and torch.equal(onehot.argmax(1), y) and torch.equal(onehot.sum(1), torch.ones(4))
    with pytest.raises(ValueError, match="y: got labels in"):
        pack(x, torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="y: got torch.float32"):
        pack(x, torch.zeros(4))


def test_a_labelled_data_set_keeps_the_label_through_dynamic_binarisation():
    data = labelled(vc.data.digits(binarize="dynamic"))
    assert data.x_train.shape[1:] == (1, 1, 74)
    redrawn = torch.bernoulli(data.x_train[:50], generator=torch.Generator().manual_seed(0))  # what fit does per batch
    assert torch.equal(redrawn[..., 64:], data.x_train[:50, ..., 64:])
    assert torch.equal(data.x_train[:, 0, 0, 64:].argmax(1), data.y_train)


def test_the_conditional_elbo_is_its_formula_written_out():
    torch.manual_seed(1)
    model = ConditionalVAE(x_shape=(1, 8, 8), z_dim=3, hidden=16)
    x, y = _x(5, seed=1), torch.tensor([1, 2, 3, 4, 5])
    with torch.no_grad():
        t = model.elbo(pack(x, y), generator=torch.Generator().manual_seed(2))
        q = model.encoder(torch.cat([x.flatten(1), F.one_hot(y, 10).float()], 1))  # q(z | x, y) reads [x, y]
        z = q.sample(generator=torch.Generator().manual_seed(2))
        logits = model.decoder(torch.cat([z, F.one_hot(y, 10).float()], 1)).flatten(1)  # p(x | z, y) reads [z, y]
        recon = -F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1)
        kl = 0.5 * (q.logvar.exp() + q.mu**2 - 1 - q.logvar).sum(1)
    assert torch.allclose(t.recon, recon, atol=1e-4) and torch.allclose(t.kl, kl, atol=1e-5)
    assert torch.allclose(t.elbo, recon - kl, atol=1e-4)


def test_bounds_samples_analogies_inpainting_and_checkpoints(tmp_path):
    torch.manual_seed(3)
    model = ConditionalVAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)
    x, y = _x(4, seed=2), torch.tensor([0, 1, 2, 3])
    ll = vc.evaluate.log_likelihood(model, pack(x, y), k=200, generator=torch.Generator().manual_seed(4))
    elbo = vc.evaluate.elbo_per_example(model, pack(x, y), n_samples=200)
    assert (ll.log_px >= elbo - 0.05).all()  # L_200 >= L_1, up to the noise of the 200-draw ELBO
    assert model.sample(4, y=y).shape == (4, 1, 8, 8)
    assert vc.beyond.analogies(model, x, y).shape == (4, 10, 1, 8, 8)
    mask = vc.beyond.top_half((1, 8, 8))
    done = vc.beyond.inpaint(model, x, mask, y=y, n_steps=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(done[:, mask], x[:, mask]) and ((done >= 0) & (done <= 1)).all()
    vc.checkpoint.save_checkpoint(tmp_path / "c.pt", model)
    loaded = vc.checkpoint.load_checkpoint(tmp_path / "c.pt").model
    assert isinstance(loaded, ConditionalVAE)
    with pytest.raises(ValueError, match=r"x: got shape \(4, 64\)"):
        model.elbo(x.flatten(1))
    with pytest.raises(ValueError, match="y: got None"):
        vc.beyond.inpaint(model, x, mask)


def test_the_samples_of_a_trained_conditional_vae_depend_on_the_label():
    """After a short run on the 8x8 digits, a digit classifier (chapter 0) reads the requested label back from the
    decoded means of prior draws more than 60 % of the time (chance: 10 %)."""
    digits = vc.data.digits(binarize="dynamic")
    torch.manual_seed(6)
    model = ConditionalVAE(x_shape=(1, 8, 8), z_dim=2, hidden=128)
    vc.train.fit(model, labelled(digits), epochs=15, batch_size=64, lr=3e-3, progress=False)
    classifier = vc.discriminative.train_classifier(vc.data.digits(), epochs=20, seed=0).model
    y = torch.arange(10).repeat(30)
    samples = model.sample(300, y=y, generator=torch.Generator().manual_seed(7))
    accuracy = float((vc.discriminative.predict(classifier, samples).label == y).float().mean())
    assert accuracy > 0.6, accuracy
