"""Convolutional networks in the graph and on the chip: the synapses a conv, pool or flatten
projection makes equal a direct convolution; shape errors name the dimension; the chip
counts a spike's synaptic operations, messages and weight reads from the geometry (border
cuts included), with expanded or shared conv weights; memory counts a kernel once."""
import itertools

import numpy as np
import pytest

from accel_sim import SpikeTrace, load_energy_table, load_hardware, price, simulate
from accel_sim.energy import EnergyTable
from accel_sim.errors import PricingWarning
from accel_sim.memory import network_memory
from snn_frontend.spec import NetworkSpec, Population, Projection, SpecError, index_bits


def _conv2d_reference(x, k, stride, pad, dil, groups):
    """Cross-correlation of x (C, H, W) with k (Co, C/g, kh, kw), loop by loop."""
    C, H, W = x.shape
    Co, Cg, kh, kw = k.shape
    Ho = (H + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (W + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((Co, Ho, Wo))
    for co, yo, xo in itertools.product(range(Co), range(Ho), range(Wo)):
        g = co // (Co // groups)
        for cl, ky, kx in itertools.product(range(Cg), range(kh), range(kw)):
            y, xx = yo * stride[0] - pad[0] + ky * dil[0], xo * stride[1] - pad[1] + kx * dil[1]
            if 0 <= y < H and 0 <= xx < W:
                out[co, yo, xo] += x[g * Cg + cl, y, xx] * k[co, cl, ky, kx]
    return out


def _dense(spec, pr, kernel=None):
    """The projection's synapses as a dense (n_src, n_dst) matrix."""
    src, dst = spec.population(pr.src), spec.population(pr.dst)
    pre, post = pr.connections
    W = np.zeros((src.size, dst.size))
    np.add.at(W, (pre, post), kernel.ravel()[pr.kernel_index] if kernel is not None else 1.0)
    return W


@pytest.mark.parametrize("cin,cout,hw,k,stride,pad,dil,groups", [
    (1, 1, (5, 5), (3, 3), (1, 1), (0, 0), (1, 1), 1),
    (2, 4, (7, 6), (3, 2), (2, 1), (1, 0), (1, 1), 1),
    (4, 6, (9, 9), (3, 3), (2, 2), (2, 1), (2, 1), 2),
    (3, 3, (6, 8), (2, 3), (1, 2), (1, 1), (1, 2), 3),
])
def test_conv2d_synapses_are_the_convolution(cin, cout, hw, k, stride, pad, dil, groups):
    rng = np.random.default_rng(0)
    x = rng.random((cin, *hw))
    kern = rng.standard_normal((cout, cin // groups, *k))
    want = _conv2d_reference(x, kern, stride, pad, dil, groups)
    spec = NetworkSpec((Population("in", x.size, "input", state_vars=(), shape=x.shape),
                        Population("c", want.size, "lif", shape=want.shape)),
                       (Projection("in", "c", "conv2d", 8, kernel=k, stride=stride, padding=pad,
                                   dilation=dil, groups=groups),))
    pr = spec.projections[0]
    got = x.ravel() @ _dense(spec, pr, kern)  # channel-major flattening, as PyTorch
    np.testing.assert_allclose(got, want.ravel(), rtol=1e-12)
    assert spec.n_weights(pr) == kern.size
    assert spec.n_synapses(pr) == int((_dense(spec, pr) != 0).sum())


def test_conv1d_and_pools_are_their_direct_forms():
    rng = np.random.default_rng(1)
    x = rng.random((3, 10))
    kern = rng.standard_normal((2, 3, 4))
    want = np.array([[sum(x[c, t * 2 - 1 + j] * kern[o, c, j] for c in range(3) for j in range(4)
                          if 0 <= t * 2 - 1 + j < 10) for t in range(5)] for o in range(2)])
    spec = NetworkSpec((Population("in", 30, "input", state_vars=(), shape=(3, 10)),
                        Population("c", 10, "lif", shape=(2, 5))),
                       (Projection("in", "c", "conv1d", 8, kernel=4, stride=2, padding=1),))
    np.testing.assert_allclose(x.ravel() @ _dense(spec, spec.projections[0], kern), want.ravel())
    m = rng.random((2, 6, 6))
    pool = NetworkSpec((Population("in", 72, "input", state_vars=(), shape=(2, 6, 6)),
                        Population("p", 18, "lif", shape=(2, 3, 3)),
                        Population("f", 18, "lif")),
                       (Projection("in", "p", "sumpool2d", kernel=2),
                        Projection("p", "f", "flatten")))
    sums = m.reshape(2, 3, 2, 3, 2).sum(axis=(2, 4))
    np.testing.assert_allclose(m.ravel() @ _dense(pool, pool.projections[0]), sums.ravel())
    assert [pool.n_weights(pr) for pr in pool.projections] == [0, 0]
    assert [pr.weight_bits for pr in pool.projections] == [0, 0]
    pre, post = pool.projections[1].connections
    assert (pre == np.arange(18)).all() and (post == pre).all()


@pytest.mark.parametrize("proj,shapes,message", [
    (dict(connectivity="conv2d", kernel=3), ((1, 5, 5), (2, 4, 3)),
     "gives output height 3, but 'c' has shape (2, 4, 3) (height 4)"),
    (dict(connectivity="conv2d", kernel=3), ((1, 5, 5), (2, 3, 4)),
     "gives output width 3, but 'c' has shape (2, 3, 4) (width 4)"),
    (dict(connectivity="conv2d", kernel=3, groups=2), ((3, 5, 5), (2, 3, 3)),
     "groups 2 must divide the input channels (3) and the output channels (2)"),
    (dict(connectivity="avgpool2d", kernel=2), ((2, 4, 4), (3, 2, 2)),
     "a pool keeps the channels (2 in, 3 out)"),
    (dict(connectivity="conv1d", kernel=3), ((2, 5, 5), (2, 3)),
     "needs the input population 'in' to have a shape (channels, length)"),
])
def test_a_shape_that_does_not_fit_names_the_dimension(proj, shapes, message):
    src, dst = shapes
    with pytest.raises(SpecError) as e:
        NetworkSpec((Population("in", int(np.prod(src)), "input", state_vars=(), shape=src),
                     Population("c", int(np.prod(dst)), "lif", shape=dst)),
                    (Projection("in", "c", weight_bits=8, **proj),))
    assert message in str(e.value)


def test_geometry_belongs_to_conv_and_pool_only():
    with pytest.raises(SpecError, match="kernel belong to conv and pool projections, not dense"):
        Projection("a", "b", "dense", 8, kernel=3)
    with pytest.raises(SpecError, match="shape \\(2, 3, 3\\) holds 18 neurons, its size is 20"):
        Population("a", 20, "lif", shape=(2, 3, 3))


# ------------------------------------------------------------------------ the chip
def _chip_spec() -> NetworkSpec:
    """One 4x4 input map, a 3x3 kernel with padding 1 onto one 4x4 output map."""
    return NetworkSpec((Population("in", 16, "input", state_vars=(), shape=(1, 4, 4)),
                        Population("c", 16, "lif", shape=(1, 4, 4))),
                       (Projection("in", "c", "conv2d", 8, kernel=3, padding=1),))


def _one_spike_each(spec, positions):
    """One input spike per step, at the given (y, x)."""
    raster = np.zeros((len(positions) + 1, 16), bool)
    for t, (y, x) in enumerate(positions):
        raster[t, y * 4 + x] = True
    return SpikeTrace.from_rasters(spec, {"in": raster})


@pytest.mark.parametrize("storage", ["expanded", "shared"])
def test_a_spike_costs_its_receptive_field_on_the_chip(storage):
    """Corner, edge and interior spikes reach 4, 6 and 9 outputs (the border cuts the
    kernel); one core holds the map, so each is one message; expanded storage reads the
    spike's row of (index, weight) entries, shared storage the 9-weight kernel."""
    spec = _chip_spec()
    hw = load_hardware("edge", ["cores.count=1", "cores.mesh_width=1", "cores.mesh_height=1",
                                f"sram.conv_weights={storage}"])
    res = simulate(_one_spike_each(spec, [(0, 0), (0, 2), (2, 2)]), hw)
    assert res.counts["core.synop_conv"] == 4 + 6 + 9
    assert res.counts["chip.input_spike"] == 3
    bits = 8 + index_bits(16) if storage == "expanded" else 8
    per_spike = [4, 6, 9] if storage == "expanded" else [9, 9, 9]
    assert res.counts["sram.read_word"] == sum(-(-n * bits // 64) for n in per_spike)


def test_messages_go_to_the_cores_holding_the_receptive_field():
    """Output rows 0-1 on core 0, rows 2-3 on core 1 (balanced): a spike at row 0 reaches
    only core 0, one at row 2 both cores (its field covers rows 1-3)."""
    spec = _chip_spec()
    hw = load_hardware("edge", ["cores.count=2", "cores.mesh_width=2", "cores.mesh_height=1",
                                "noc.cast=unicast", "noc.input_port=[0,0]"])
    res = simulate(_one_spike_each(spec, [(0, 1)]), hw)
    res2 = simulate(_one_spike_each(spec, [(2, 1)]), hw)
    assert res.counts["core.synop_conv"] == 6 and res2.counts["core.synop_conv"] == 9
    assert res.counts.get("router.inject", 0) + res.counts.get("router.local_delivery", 0) == 1
    assert res2.counts.get("router.inject", 0) + res2.counts.get("router.local_delivery", 0) == 2


def test_memory_counts_a_kernel_once_and_a_sparse_synapse_with_its_index():
    rng = np.random.default_rng(2)
    pairs = np.nonzero(rng.random((64, 32)) < 0.5)
    spec = NetworkSpec((Population("in", 2 * 8 * 8, "input", state_vars=(), shape=(2, 8, 8)),
                        Population("c", 4 * 6 * 6, "lif", shape=(4, 6, 6)),
                        Population("p", 4 * 3 * 3, "lif", shape=(4, 3, 3), state_vars=("v", "bias")),
                        Population("x", 64, "input", state_vars=()),
                        Population("s", 32, "lif")),
                       (Projection("in", "c", "conv2d", 8, kernel=3),
                        Projection("c", "p", "avgpool2d", kernel=2),
                        Projection("x", "s", "sparse", 32, pairs=pairs)))
    mem = network_memory(spec, 16)
    assert mem["weights"] == {"in->c": 4 * 2 * 9, "c->p": 0, "x->s": len(pairs[0])}
    assert mem["weight_bytes"] == {"in->c": 72, "c->p": 0,
                                   "x->s": -(-len(pairs[0]) * (32 + 5) // 8)}  # 5: log2(32)
    assert mem["state_variables"]["p"] == 36 * 2  # the bias is state


def test_a_biased_population_is_updated_at_every_step():
    """Without input a neuron is an idle update, unless its population has a bias (its state
    changes every step); a `:active` stream still overrides both."""
    def spec(state):
        return NetworkSpec((Population("in", 4, "input", state_vars=()),
                            Population("h", 3, "lif", state_vars=state)),
                           (Projection("in", "h", "dense", 8),))

    silent = {"in": np.zeros((5, 4), bool)}
    plain = simulate(SpikeTrace.from_rasters(spec(("v",)), silent), "edge").counts
    biased = simulate(SpikeTrace.from_rasters(spec(("v", "bias")), silent), "edge").counts
    assert (plain["core.neuron_update_active"], plain["core.neuron_update_idle"]) == (0, 15)
    assert (biased["core.neuron_update_active"], biased["core.neuron_update_idle"]) == (15, 0)
    given = simulate(SpikeTrace.from_rasters(
        spec(("v", "bias")), silent, streams={"h:active": np.eye(5, 3, dtype=bool)}), "edge")
    assert given.counts["core.neuron_update_active"] == 3


def test_a_map_split_by_tile_sends_a_spike_to_fewer_cores():
    """8 channels of 8x8 on 4 cores: split by channel each core holds 2 whole channels, so
    every input spike of a 3x3 conv reaches all 4; split by spatial tile each core holds a
    band of rows of every channel, and a spike reaches only the bands its field touches."""
    spec = NetworkSpec((Population("in", 64, "input", state_vars=(), shape=(1, 8, 8)),
                        Population("c", 512, "lif", shape=(8, 8, 8))),
                       (Projection("in", "c", "conv2d", 8, kernel=3, padding=1),))
    raster = np.zeros((2, 64), bool)
    raster[0, 0] = True  # the corner: its field covers rows 0-1
    trace = SpikeTrace.from_rasters(spec, {"in": raster})
    res = {}
    for split in ("channel", "tile"):
        hw = load_hardware("edge", ["cores.count=4", "cores.mesh_width=2",
                                    "cores.mesh_height=2", "noc.cast=unicast",
                                    f"map_split={split}"])
        res[split] = simulate(trace, hw).counts
    for r in res.values():
        assert r["core.synop_conv"] == 8 * 4  # 8 channels x the corner's 4 outputs
    messages = {k: r.get("router.inject", 0) + r.get("router.local_delivery", 0)
                for k, r in res.items()}
    assert messages == {"channel": 4, "tile": 1}


def _conv_and_dense():
    """One 4x4 input into a 3x3 conv (padding 1) and a 2-neuron dense layer."""
    spec = NetworkSpec((Population("in", 16, "input", state_vars=(), shape=(1, 4, 4)),
                        Population("c", 16, "lif", shape=(1, 4, 4)), Population("d", 2, "lif")),
                       (Projection("in", "c", "conv2d", 8, kernel=3, padding=1),
                        Projection("in", "d", "dense", 8)))
    raster = np.zeros((2, 16), bool)
    raster[0, 2 * 4 + 2] = True  # an interior spike: 9 conv targets and 2 dense ones
    return SpikeTrace.from_rasters(spec, {"in": raster})


def test_synapse_units_are_counted_and_timed_by_projection_kind():
    """The conv projection's 9 operations go to the conv synapse unit, the dense one's 2 to
    synop; a conv unit 40 cycles slower adds 9 x 40 cycles at every fidelity."""
    trace = _conv_and_dense()
    base = ["cores.count=1", "cores.mesh_width=1", "cores.mesh_height=1",
            "cores.synapse_lanes=1"]
    for fid in ("timestep", "event", "simpy"):
        fast = simulate(trace, load_hardware("edge", base), fidelity=fid)
        slow = simulate(trace, load_hardware("edge", base + ["cores.synop_cycles_conv=41"]),
                        fidelity=fid)
        assert (fast.counts["core.synop_conv"], fast.counts["core.synop"]) == (9, 2)
        assert slow.cycles - fast.cycles == 9 * (41 - 1), fid


def test_a_table_prices_each_synapse_unit_or_falls_back_to_synop():
    trace = _conv_and_dense()
    hw = load_hardware("loihi_sanafe")
    r = simulate(trace, hw)
    table = load_energy_table("sanafe_loihi")
    pj = EnergyTable(table).resolve(hw).pj
    assert (pj["core", "synop_conv"], pj["core", "synop_sparse"], pj["core", "synop"]) == \
        (24.0, 33.6, 35.5)
    with pytest.warns(PricingWarning, match="no ':active' stream"):  # a bare trace
        sanafe = price(r, table, hw)
    assert sanafe.energy_pj.by_component["core"] == pytest.approx(
        9 * 24.0 + 2 * 35.5 + sum(r.counts[f"core.{a}"] * sanafe.pj_per_action[f"core.{a}"]
                                  for a in ("neuron_update_active", "neuron_update_idle",
                                            "spike_out") if f"core.{a}" in r.counts))
    # generic_45nm gives no per-kind units: a conv operation costs a synop, and says so
    generic = EnergyTable(load_energy_table("generic_45nm")).resolve(hw)
    assert generic.pj["core", "synop_conv"] == generic.pj["core", "synop"]
    assert generic.sources["core", "synop_conv"].startswith("as core.synop")
