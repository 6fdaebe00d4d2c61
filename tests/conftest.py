"""Shared fixtures. Statistical tests use their own seeded generators; this only fixes the rest."""
import pytest
import torch

from vae_course import notebook_run

notebook_run.install()  # tests that execute notebooks with nbclient: no lost wake-ups (see the module)


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture
def gen():
    """A seeded CPU generator for tests that draw random numbers."""
    return torch.Generator().manual_seed(1234)
