import math
import os

import numpy as np
import pytest

from snn_frontend import _reference
from snn_frontend.params import DCParams

try:
    from snn_frontend import _dc_kernels
except ImportError:  # pragma: no cover - CI builds strictly, so this only skips locally
    _dc_kernels = None

requires_compiled = pytest.mark.skipif(_dc_kernels is None, reason="compiled kernels not built")
STRICT = os.environ.get("ACCEL_SIM_STRICT_BUILD") == "1"  # CI: a missing kernel is a failure


def _built(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module if "." in module else f"snn_frontend.{module}")
        return True
    except ImportError:
        return False


requires_nir_kernels = pytest.mark.skipif(
    not STRICT and not _built("_nir_kernels"),
    reason="the compiled NIR kernels are not built (a strict build fails instead)")
requires_event_kernels = pytest.mark.skipif(
    not STRICT and not _built("accel_sim.chip._event_kernels"),
    reason="the compiled event kernel is not built (a strict build fails instead)")
requires_des_kernels = pytest.mark.skipif(
    not STRICT and not _built("accel_sim.chip._des_kernels"),
    reason="the compiled simpy calendar is not built (a strict build fails instead)")
requires_step_kernels = pytest.mark.skipif(
    not STRICT and not _built("accel_sim.chip._step_kernels"),
    reason="the compiled load per step is not built (a strict build fails instead)")

def run_killed_after(cfg, out, monkeypatch, samples: int) -> None:
    """Run `cfg` into `out` and kill it (KeyboardInterrupt) when training sample
    `samples + 1` starts, as a killed process would stop; the checkpoint stays behind."""
    from accel_sim import run_experiment
    from snn_frontend.network import DiehlCookNetwork

    calls = {"n": 0}
    real = DiehlCookNetwork.train_sample

    def dies(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > samples:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(DiehlCookNetwork, "train_sample", dies)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(cfg, out)


DATA_ROOT = os.environ.get("ACCEL_SIM_DATA")
has_mnist = bool(DATA_ROOT) and os.path.exists(
    os.path.join(DATA_ROOT or "", "MNIST", "raw", "train-images-idx3-ubyte.gz"))
requires_mnist = pytest.mark.skipif(not has_mnist, reason="set ACCEL_SIM_DATA to a folder with MNIST")


def make_params(n_in=784, n_exc=20, dt=0.5, present_ms=50.0, rest_ms=0.0, **over) -> DCParams:
    """D&C constants (seeds.md 2.1) resolved for dt, with a short presentation."""
    kw = dict(
        n_in=n_in, n_exc=n_exc, dt_ms=dt, steps_present=int(round(present_ms / dt)),
        steps_rest=int(round(rest_ms / dt)),
        v_rest_e=-65.0, v_reset_e=-65.0, v_thresh_e=-52.0, theta_offset=20.0, e_exc_e=0.0,
        e_inh_e=-100.0, a_e=dt / 100.0, refrac_steps_e=int(round(5 / dt)),
        lockout_steps_e=int(round(50 / dt)), theta_plus=0.05, decay_theta=math.exp(-dt / 1e7),
        v_rest_i=-60.0, v_reset_i=-45.0, v_thresh_i=-40.0, e_exc_i=0.0, a_i=dt / 10.0,
        refrac_steps_i=int(round(2 / dt)), decay_ge=math.exp(-dt / 1.0),
        decay_gi=math.exp(-dt / 2.0), w_ei=10.4, w_ie=17.0, decay_pre=math.exp(-dt / 20.0),
        decay_post1=math.exp(-dt / 20.0), decay_post2=math.exp(-dt / 40.0), nu_pre=1e-4,
        nu_post=1e-2, w_max=1.0)
    kw.update(over)
    return DCParams(**kw)


def digit_like(seed: int, n_in: int = 784) -> np.ndarray:
    """An MNIST-like image: ~19 % non-zero pixels with intensities 90..255."""
    rng = np.random.default_rng(seed)
    img = np.zeros(n_in, np.uint8)
    on = rng.random(n_in) < 0.19
    img[on] = rng.integers(90, 256, on.sum())
    return img


BACKENDS = [pytest.param(_reference, id="numpy"),
            pytest.param(_dc_kernels, id="cython", marks=requires_compiled)]


@pytest.fixture(params=BACKENDS)
def kern(request):
    return request.param
