"""Shipped configs validate; the strict CI build really uses the compiled kernels."""
import os
from pathlib import Path

import pytest
from conftest import requires_mnist

from accel_sim.config import load_config
from accel_sim.families.stdp import load_data
from snn_frontend._backend import kernels

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_is_valid(path):
    cfg = load_config(path)
    assert cfg.name == path.stem


@requires_mnist
@pytest.mark.parametrize("name", ["mnist_dc100.yaml", "mnist_dc400.yaml"])
def test_paper_configs_use_the_full_mnist_splits(name):
    cfg = load_config(Path(__file__).parent.parent / "configs" / name)
    data = load_data(cfg)
    assert (len(data.train), len(data.label), len(data.test)) == (60000, 60000, 10000)


@pytest.mark.skipif(os.environ.get("ACCEL_SIM_STRICT_BUILD") != "1",
                    reason="only a strict build promises the compiled kernels")
def test_strict_build_runs_the_compiled_kernels():
    assert kernels("auto")[0] == "cython"
    assert kernels("auto", "bptt")[0] == "cython"
    assert kernels("auto", "nir")[0] == "cython"


PAPERS = sorted((Path(__file__).parent.parent / "configs" / "papers").glob("*.yaml"))


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.name)
def test_paper_configs_are_valid(path):
    cfg = load_config(path)
    assert cfg.name == path.stem and cfg.hardware is not None and cfg.energy is not None
