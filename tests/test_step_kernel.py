"""The cores' load per step (chip/steps.py and its compiled mirror ext/step_kernels.pyx):
exact figures on a hand-counted case, compiled == reference on contended and real traces,
alike steps reduced once give what every step reduced gives, and the per-core active
updates of the per-instance results equal the step-by-step mask's."""
import numpy as np
import pytest
from conftest import requires_step_kernels
from test_chip_graph import _flood_trace, chip, real_traces  # noqa: F401 (a fixture)
from test_event_kernel import _contended_spec

from accel_sim import NetworkSpec, Population, Projection, load_hardware
from accel_sim.chip import Chip, steps
from accel_sim.chip.counting import updated_per_core
from accel_sim.chip.soma import SomaTable
from accel_sim.chip.timing import core_load
from snn_frontend.trace import active_stream


def _hand() -> list:
    """reduce_steps' arguments up to read_latency for three steps on two cores: a rate
    group (row 0; its counts are all it reads) and a group of two sources (rows 1, 2)
    whose spikes are src[0:1] and src[1:3]; lanes and ports 1, read latency 1 cycle, a
    neuron phase of 10 cycles."""
    return [np.array([[0, 1, 1, 3], [0, 1, 3, 3]], np.int64),  # ptr
            np.array([0, 1, 0], np.int64),  # src
            np.array([1, 0], np.int8), np.zeros(2, np.int64),  # rate, unit
            np.array([0, 1], np.int64),  # row_base
            np.array([[2, 0], [0, 3], [1, 1]], np.int64),  # syn_tab
            np.array([[1, 0], [0, 1], [1, 1]], np.int64),  # sram_tab
            np.array([-1, 0, 1], np.int64), np.array([0, 2, 1], np.int64),  # msg_core, _count
            np.ones(3, np.int64), np.full((3, 2), 10, np.int64),  # weight, neurons
            1, np.array([1], np.int64), 1, 1]  # lanes, unit_cycles, ports, read_latency


def _modules():
    mods = [steps]
    try:
        from accel_sim.chip import _step_kernels
        mods.append(_step_kernels)
    except ImportError:
        pass
    return mods


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_hand_counted_load(module):
    """Step 0: 1 rate spike + source 0; step 1: sources 1 and 0; step 2: 2 rate spikes.
    Synops [2,3] [1,4] [4,0]; SRAM words [1,1] [1,2] [2,0] (+1 cycle of read latency);
    source 0 sends 2 messages from core 0, source 1 one from core 1."""
    args = _hand()
    service, per_core, most, chain = module.reduce_steps(*args, 0, 0, False)
    assert service.tolist() == [3, 4, 4] and per_core.tolist() == [8, 7]
    assert most.tolist() == [2, 2, 0] and chain is None
    # 5 cycles per delivery (deliveries [1,1] [1,2] [2,0]); the chain: 10 + 3 per message
    service, per_core, most, chain = module.reduce_steps(*args, 5, 3, True)
    assert service.tolist() == [8, 14, 14] and per_core.tolist() == [28, 22]
    assert chain.tolist() == [16, 16, 10]


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("lanes, ports", [(1, 1), (2, 4), (3, 3)])
def test_hand_counted_learning(module, lanes, ports):
    """Two steps on three cores, a write latency of 2 cycles. With 1 lane and 1 port:
    step 0 max(5, 0) | max(0, 1 + 2) | max(4, 4 + 2) = 5 3 6; step 1 max(2, 3 + 2) |
    0 | max(0, 0) = 5 0 0."""
    ops = np.array([[5, 0, 4], [2, 0, 0]], np.int64)
    words = np.array([[0, 1, 4], [3, 0, 0]], np.int64)
    none_n, none_k = np.zeros((0, 2), np.int64), np.zeros((0, 3), np.int64)
    step_max, per_core = module.reduce_learning(ops, words, none_n, none_k, none_n, none_k,
                                                 lanes, ports, 2)
    learn = np.maximum(-(-ops // lanes), -(-words // ports) + 2 * (words > 0))
    assert step_max.tolist() == learn.max(axis=1).tolist()
    assert per_core.tolist() == learn.sum(axis=0).tolist()
    if lanes == ports == 1:
        assert step_max.tolist() == [6, 5] and per_core.tolist() == [10, 3, 6]
    # factors: 2 and 1 presynaptic spikes, each 1 | 3 | 0 operations on the three cores:
    # ops become [[7, 6, 4], [3, 3, 0]]
    pre_n, pre_k = np.array([[2, 1]], np.int64), np.array([[1, 3, 0]], np.int64)
    step_max, per_core = module.reduce_learning(ops, words, pre_n, pre_k, none_n, none_k,
                                                1, 1, 2)
    assert step_max.tolist() == [7, 5] and per_core.tolist() == [12, 9, 6]
    # and words: 1 and 0 rows of 0 | 2 | 1 words: words become [[0, 3, 5], [3, 0, 0]], so
    # step 0 max(7, 0) | max(6, 3 + 2) | max(4, 5 + 2) = 7 6 7
    step_max, per_core = module.reduce_learning(ops, words, pre_n, pre_k, np.array([[1, 0]]),
                                                np.array([[0, 2, 1]], np.int64), 1, 1, 2)
    assert step_max.tolist() == [7, 5] and per_core.tolist() == [12, 9, 7]


@requires_step_kernels
@pytest.mark.parametrize("lanes, ports", [(1, 1), (4, 2), (3, 5)])
def test_compiled_learning_equals_the_reference(lanes, ports):
    from accel_sim.chip import _step_kernels
    rng = np.random.default_rng(lanes * ports)
    ops = rng.integers(0, 50, (300, 77)) * (rng.random((300, 77)) < 0.5)
    words = rng.integers(0, 50, (300, 77)) * (rng.random((300, 77)) < 0.5)
    pre_n, pre_k = rng.integers(0, 4, (2, 300)), rng.integers(0, 9, (2, 77))
    word_n, word_k = rng.integers(0, 3, (3, 300)), rng.integers(0, 20, (3, 77))
    for n, k in ((pre_n, pre_k), (pre_n[:0], pre_k[:0])):
        for wn, wk in ((word_n, word_k), (word_n[:0], word_k[:0])):
            args = (ops, words, n, k, wn, wk, lanes, ports, 3)
            for got, want in zip(_step_kernels.reduce_learning(*args),
                                 steps.reduce_learning(*args)):
                assert got.tolist() == want.tolist()
    empty, none_n, none_k = np.zeros((0, 4), np.int64), np.zeros((0, 0), np.int64), \
        np.zeros((0, 4), np.int64)
    assert [a.tolist() for a in _step_kernels.reduce_learning(
        empty, empty, none_n, none_k, none_n, none_k, 1, 1, 1)] == [[], [0, 0, 0, 0]]
    with pytest.raises(ValueError, match="pre_n and pre_k must be"):
        _step_kernels.reduce_learning(ops, words, pre_n, pre_k[:1], word_n, word_k, lanes,
                                      ports, 3)
    with pytest.raises(ValueError, match="word_n and word_k must be"):
        _step_kernels.reduce_learning(ops, words, pre_n, pre_k, word_n, word_k[:2], lanes,
                                      ports, 3)


def test_alike_steps_are_one_row_weighted_by_their_steps():
    n_rate, n_own = np.array([2, 0, 2, 1, 3, 2]), np.array([0, 0, 1, 0, 2, 0])
    ptr = np.zeros((2, 7), np.int64)
    ptr[0, 1:] = np.cumsum(n_rate)
    ptr[1, 0] = 5
    ptr[1, 1:] = 5 + np.cumsum(n_own)
    row_of, rows, weight = steps.alike_steps(ptr, np.array([1, 0], np.int8))
    # steps 1, 3 and 0 = 5 alike (0, 1, 2 rate spikes), then steps 2 and 4 on their own
    assert row_of.tolist() == [2, 0, 3, 1, 4, 2]
    assert rows.tolist() == [[0, 0, 1, 3, 5, 8], [5, 5, 5, 5, 6, 8]]
    assert weight.tolist() == [1, 1, 2, 1, 1]


@requires_step_kernels
@pytest.mark.parametrize("rate", [[1, 0], [1, 1, 0], [0, 0], [1], [1, 1]])
@pytest.mark.parametrize("scale", [1, 5000])
def test_compiled_alike_steps_equal_the_reference(rate, scale):
    """Classes in the same order; many distinct counts (scale 5000) take the sort."""
    from accel_sim.chip import _step_kernels

    rng = np.random.default_rng(len(rate) * scale)
    rate = np.array(rate, np.int8)
    for T in (0, 1, 40):
        n = np.where(rate[:, None].astype(bool), rng.poisson(2, (len(rate), T)) * scale,
                     rng.random((len(rate), T)) < 0.2)
        ptr = np.zeros((len(rate), T + 1), np.int64)
        ptr[:, 1:] = np.cumsum(n, axis=1)
        ptr += np.arange(len(rate))[:, None] * 3
        for got, want in zip(_step_kernels.alike_steps(ptr, rate), steps.alike_steps(ptr, rate)):
            assert got.tolist() == want.tolist()


def _load_both_ways(chip_, tr, monkeypatch, backend):
    """(core_load with alike steps reduced once, the reference over every step) per
    presentation."""
    monkeypatch.setenv("ACCEL_SIM_BACKEND", backend)
    r, out = chip_.rates, []
    for p in tr:
        _, work = chip_.counter.count(p, learn=False, learning={}, state_reset=True)
        got = core_load(work, r)
        d, t = work.deliveries, work.deliveries.tables
        T = work.shape[0]
        ref = steps.reduce_steps(d.ptr, d.src, t.rate, t.unit, t.row_base, t.syn_tab,
                                 t.sram_tab, t.msg_core, t.msg_count, np.ones(T, np.int64),
                                 r.neuron_phase(work), r.syn_lanes, t.unit_cycles, r.ports,
                                 r.read_lat, r.receive_cycles, r.message_cycles,
                                 not r.soma_blocks)
        out.append((got, ref))
    return out


def _same(got, ref):
    assert got.service.tolist() == ref[0].tolist()
    assert got.synaptic_per_core.tolist() == ref[1].tolist()
    assert got.most_messages.tolist() == ref[2].tolist()
    assert (got.chain is None) == (ref[3] is None)
    if ref[3] is not None:
        assert got.chain.tolist() == ref[3].tolist()


@requires_step_kernels
@pytest.mark.parametrize("over", [
    {},
    {"noc": {"cast": "unicast", "local": "network", "message_cycles": 3}},
    {"cores": {"soma_cycles": {"idle": 2, "active": 1, "spike": 4}, "soma_blocks_synapses": False}},
    {"cores": {"soma_blocks_synapses": False}, "noc": {"message_cycles": 2}},
    {"cores": {"message_receive_cycles": 5, "synop_cycles": 2, "synop_cycles_sparse": 3}},
    {"sram": {"size_kib": 0.25, "banks": 3}},
])
@pytest.mark.parametrize("backend", ["numpy", "cython"])
def test_load_equals_every_step_reduced_on_contended_traces(over, backend, monkeypatch):
    base = {"cores": {"count": 6, "mesh_width": 3, "mesh_height": 2, "neuron_lanes": 2,
                      "synapse_lanes": 2}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    for seed in (0, 1):
        tr = _flood_trace(_contended_spec(), T=12, seed=seed)
        pairs = _load_both_ways(Chip(chip(**base), tr.spec), tr, monkeypatch, backend)
        for got, ref in pairs:
            _same(got, ref)
        assert sum(int(got.service.sum()) for got, _ in pairs) > 0


@requires_step_kernels
@pytest.mark.parametrize("name", ["edge", "loihi_sanafe", "spill"])
def test_compiled_load_equals_reference_on_real_traces(real_traces, name, monkeypatch):
    hw = load_hardware(name)
    tr = real_traces["infer"]
    c = Chip(hw, tr.spec)
    compiled = _load_both_ways(c, tr, monkeypatch, "cython")
    reference = _load_both_ways(c, tr, monkeypatch, "numpy")
    for (got, ref), (got_np, _) in zip(compiled, reference):
        _same(got, ref)
        _same(got_np, ref)
    assert len(compiled) == tr.n_presentations


def _active_mask(counter, p, name: str, n: int, spikes, steps, T: int) -> np.ndarray:
    """(T, n) neurons updated at each step, the step-by-step reference of what counting
    derives from the reached neurons: the trace's `:active` stream, else all when biased,
    else those a synaptic event reached in the previous step, projection by projection."""
    mask = np.zeros((T, n), bool)
    given = active_stream(name)
    if given in p.counts:
        st = np.repeat(np.arange(T), p.counts[given].astype(np.int64))
        mask[st, p.indices[given].astype(np.int64)] = True
        return mask
    if counter.spec.population(name).biased:
        mask[:] = True
        return mask
    for pr in counter.incoming[name]:
        cnt, idx = spikes[pr.src]
        st = steps[pr.src]
        ok = st + 1 < T  # events of the last step reach nothing in this presentation
        if pr.connectivity == "dense":
            mask[np.flatnonzero(cnt[:-1] > 0) + 1] = True
        elif pr.connectivity in ("all_but_self", "lateral"):
            for t, j in zip(st[ok], idx[ok]):
                row = mask[t + 1]
                if cnt[t] >= 2:
                    row[:] = True
                else:
                    keep = row[j]
                    row[:] = True
                    row[j] = keep
        elif pr.connectivity == "one_to_one":
            mask[st[ok] + 1, idx[ok]] = True
        else:
            pre, post = pr.connections
            for t, j in zip(st[ok], idx[ok]):
                mask[t + 1, post[pre == j]] = True
    return mask


def _partial_spec():
    """Neurons reached one by one, all but one, or all (no dense projection)."""
    return NetworkSpec(
        (Population("in", 8, "input"), Population("a", 8, "lif"), Population("b", 8, "lif")),
        (Projection("in", "a", "one_to_one", 8), Projection("a", "b", "all_but_self", 8),
         Projection("b", "a", "lateral"),
         Projection("b", "b", "sparse", 8, pairs=(np.arange(8), (np.arange(8) * 3) % 8))))


@pytest.mark.parametrize("T", [1, 12])
@pytest.mark.parametrize("spec", [_contended_spec, _partial_spec])
def test_active_updates_per_core_equal_the_mask(T, spec):
    """counting.updated_per_core (no (T, n) mask) against the mask of every step."""
    hw = chip(cores={"count": 6, "mesh_width": 3, "mesh_height": 2})
    partial = 0
    for seed in range(6):
        tr = _flood_trace(spec(), T=T, seed=seed)
        c = Chip(hw, tr.spec)
        counter = c.counter
        for p in tr:
            spikes = {q.name: (p.counts[q.name].astype(np.int64), p.indices[q.name].astype(np.int64))
                      for q in tr.spec.populations}
            steps_of = {q: np.repeat(np.arange(T), n) for q, (n, _) in spikes.items()}
            for q in tr.spec.chip_populations:
                core = counter.m.core[q.name]
                mask = _active_mask(counter, p, q.name, q.size, spikes, steps_of, T)
                want = np.bincount(core, weights=mask.sum(axis=0), minlength=6).astype(np.int64)
                got = updated_per_core(q, counter.incoming[q.name], core, 6, p, spikes, steps_of)
                assert got.tolist() == want.tolist()
                partial += int(0 < want.sum() < (T - 1) * q.size)
    assert partial or T == 1


@pytest.mark.parametrize("spec", [_contended_spec, _partial_spec])
def test_soma_work_equals_every_neuron_every_step(spec):
    """Each core's soma cycles per step and each spike's place in them, as the (T, N)
    costs of every neuron at every step give them (idle 2, active 3, spike 7 cycles)."""
    hw = chip(cores={"count": 6, "mesh_width": 3, "mesh_height": 2,
                     "soma_cycles": {"idle": 2, "active": 3, "spike": 7},
                     "soma_blocks_synapses": False})
    T = 12
    for seed in range(4):
        tr = _flood_trace(spec(), T=T, seed=seed)
        counter = Chip(hw, tr.spec).counter
        m = counter.m
        for p in tr:
            _, work = counter.count(p, learn=False, learning={}, state_reset=True)
            spikes = work.fired
            cost = {}  # population -> (T, n) soma cycles of each neuron at each step
            for q in tr.spec.chip_populations:
                mask = _active_mask(counter, p, q.name, q.size, spikes, work.fired_steps, T)
                c = 2 + 3 * mask.astype(np.int64)
                np.add.at(c, (work.fired_steps[q.name], spikes[q.name][1]), 7)
                cost[q.name] = c
            want = np.zeros((T, 6), np.int64)
            for q in tr.spec.chip_populations:
                for j in range(q.size):
                    want[:, m.core[q.name][j]] += cost[q.name][:, j]
            assert work.neuron_cycles.tolist() == want.tolist()
            _same_reads(work.soma, want)
            for q in tr.spec.chip_populations:  # neurons before a spike's on its core, in
                for i, (t, j) in enumerate(zip(work.fired_steps[q.name], spikes[q.name][1])):
                    c, before = m.core[q.name][j], 0  # spec order, then slot
                    for q2 in tr.spec.chip_populations:
                        on = np.flatnonzero(m.core[q2.name] == c)
                        on = on[m.slot[q2.name][on] <= (m.slot[q.name][j] if q2 is q else -1)] \
                            if tr.spec.names.index(q2.name) >= tr.spec.names.index(q.name) else on
                        before += int(cost[q2.name][t, on].sum())
                    assert work.spike_soma[q.name][i] == before


def _same_reads(soma, dense: np.ndarray) -> None:
    """What the timing reads of a SomaSteps, as the dense (T, C) array gives it."""
    assert soma.step_max().tolist() == dense.max(axis=1, initial=0).tolist()
    assert soma.per_core().tolist() == dense.sum(axis=0).tolist()
    ts = np.flatnonzero(np.arange(len(dense)) % 3 != 1)
    assert soma.at(ts).tolist() == dense[ts].tolist()


def test_soma_steps_by_table_and_by_step_agree_with_their_dense_array(monkeypatch):
    """Step t's row is the table's row of its wholly updated populations plus the
    additions; with more populations than the table holds, a row per step: the same."""
    rng = np.random.default_rng(3)
    T, Q, C = 9, 3, 4
    k = rng.integers(0, 4, (Q, C))
    whole = rng.random((T, Q)) < 0.5
    add = (np.array([0, 0, 4, 8]), np.array([1, 1, 3, 0]), np.array([5, 7, -2, 11]))
    want = np.tile(2 * k.sum(axis=0), (T, 1)) + 3 * (whole.astype(np.int64) @ k)
    for t, c, v in zip(*add):
        want[t, c] += v
    by_table = SomaTable(k.sum(axis=0), k, idle=2, active=3).steps(whole, *add)
    assert len(by_table.rows) == 2 ** Q and by_table.dense.tolist() == want.tolist()
    _same_reads(by_table, want)
    monkeypatch.setattr(SomaTable, "TABLE_POPULATIONS", 2)
    by_step = SomaTable(k.sum(axis=0), k, idle=2, active=3).steps(whole, *add)
    assert len(by_step.rows) == T and by_step.dense.tolist() == want.tolist()
    _same_reads(by_step, want)
