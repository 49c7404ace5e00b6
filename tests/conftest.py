"""Shared fixtures: tiny IRs and the location of ../shared (reference data, read-only).

``SHARED`` is the ../shared folder beside the repository, nothing else: the reference data
sets are ``DATASETS`` (its ``datasets/``), the literature's splits ``SPLITS``, the public
PDK ``PDK``. A test that needs them takes the ``datasets`` fixture or the ``needs_shared``
mark, which skip with the missing path as the reason; nothing else skips for want of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from approxmlp.core.ir import Layer, MLP, NeuronApprox

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DATASETS = SHARED / "datasets"
SPLITS = DATASETS / "splits"
PDK = SHARED / "pdk"

# Every test synthesizes for real: no results from a user's synthesis cache, none left in it
# (tests of the cache point it at a folder of their own).
os.environ["APPROXMLP_SYNTH_CACHE"] = "off"

#: The literature's topologies for the reference splits (inputs-hidden-classes).
REFERENCE_TOPOLOGIES = {"Breast_Cancer": (3,), "Cardio": (3,), "Pendigits": (5,), "RedWine": (2,), "WhiteWine": (4,)}


def needs_shared(path: Path = DATASETS):
    """Skip (with the missing path as the reason) where ``path`` under ../shared is absent."""
    return pytest.mark.skipif(not path.exists(), reason=f"reference data {path} not present")


@pytest.fixture
def datasets() -> Path:
    """The reference data sets folder (../shared/datasets); skips when it is absent."""
    if not DATASETS.is_dir():
        pytest.skip(f"reference data {DATASETS} not present")
    return DATASETS


def tiny_mlp() -> MLP:
    """3 inputs (4-bit) -> 2 QReLU neurons -> 2 classes; hand-checkable."""
    return MLP(n_inputs=3, input_bits=4, name="tiny", layers=(
        Layer(weights=((3, -2, 0), (1, 1, 1)), biases=(4, -3), shift=1, activation="qrelu", act_bits=4),
        Layer(weights=((2, -1), (-1, 3)), biases=(0, 1), shift=0, activation="linear"),
    ))


def tiny_approx_mlp() -> MLP:
    """The same with every approximation knob in use."""
    l0, l1 = tiny_mlp().layers
    return MLP(n_inputs=3, input_bits=4, name="tiny_approx", layers=(
        Layer(weights=l0.weights, biases=l0.biases, shift=1, act_bits=4,
              approx=(NeuronApprox(input_masks=(0b1010, 0b1111, 0)), NeuronApprox(product_trunc=1, act_trunc=1))),
        Layer(weights=l1.weights, biases=l1.biases, activation="linear",
              approx=(NeuronApprox(cmp_drop=1), NeuronApprox())),
    ))


@pytest.fixture
def tiny() -> MLP:
    return tiny_mlp()


@pytest.fixture
def tiny_approx() -> MLP:
    return tiny_approx_mlp()


@pytest.fixture(scope="session")
def iris_net(tmp_path_factory):
    """A float 4-5-3 MLP trained on the built-in iris split (seed 0), as an nn.Sequential."""
    from approxmlp.frontend.data import load_dataset
    from approxmlp.frontend.floatnet import train_float

    data = load_dataset("iris", seed=0)
    return train_float(data.X_train, data.y_train, [5], data.n_classes, epochs=200, seed=0)


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory, iris_net) -> Path:
    """``iris_net``'s state_dict saved with torch.save."""
    import torch

    path = tmp_path_factory.mktemp("iris") / "iris.pt"
    torch.save(iris_net.state_dict(), path)
    return path
