# cython: language_level=3
"""Compiled `event` fidelity (accel_sim.chip._event_kernels).

Mirror of accel_sim/chip/event.py (`event_cycles`) and the units of
accel_sim/chip/messages.py (`DeliveryPlan.presentation`), giving the same cycles of every
step. Steps are independent between barriers (the reference lays them out on one time
axis, each after an upper bound of the one before, so no resource carries work from one
step into the next): this kernel solves one step at a time, its times counted from the
step's start. Per step, each `cdef inline` helper is one stage of the reference:
- `step_units`: the step's units in key order (projection in spec order, spike in trace
  order, the source's local deliveries then messages in route order): messages, and jobs
  (one per local delivery, one per destination of a message);
- `interfaces`: each message's departure from its core's network interface (or the port's);
- `links`: every link, in the routes' topological order, serves the messages reaching it;
- `jobs`: each core serves its jobs (after its neuron phase where one comes early), then
  the DRAM channel its spilled words;
- the step ends when the last core has learnt; the barrier follows.
Every resource is a FIFO server taking its work in (arrival, key) order (`serve`):
start_p = max(arrival_p, finish_{p-1}), finish_p = start_p + service_p.
The scratch is one block, sized for the largest step (`largest_step`) and reused by every
step; the whole presentation runs without the GIL.
"""
import numpy as np

from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc, qsort

from accel_sim.chip.timing import learn_cycles_per_core, pass_cycles


cdef struct Item:
    int64_t arrive
    int64_t key
    int64_t idx


cdef int item_cmp(const void* a, const void* b) noexcept nogil:
    """(arrival, key, index) order; the index breaks no tie the reference would not
    (it sorts stably in the same listing order)."""
    cdef const Item* x = <const Item*>a
    cdef const Item* y = <const Item*>b
    if x.arrive != y.arrive:
        return -1 if x.arrive < y.arrive else 1
    if x.key != y.key:
        return -1 if x.key < y.key else 1
    return -1 if x.idx < y.idx else (1 if x.idx > y.idx else 0)


cdef inline bint before(const Item* x, const Item* y) noexcept nogil:
    """x comes before y in (arrival, key, index) order (item_cmp < 0)."""
    if x.arrive != y.arrive:
        return x.arrive < y.arrive
    if x.key != y.key:
        return x.key < y.key
    return x.idx < y.idx


cdef inline void order(Item* it, Py_ssize_t n) noexcept nogil:
    """Sort items in (arrival, key, index) order: insertion for a few, else qsort."""
    cdef Py_ssize_t i, j
    cdef Item x
    if n > 24:
        qsort(it, n, sizeof(Item), item_cmp)
        return
    for i in range(1, n):
        x = it[i]
        j = i
        while j > 0 and before(&x, &it[j - 1]):
            it[j] = it[j - 1]
            j -= 1
        it[j] = x


cdef inline void serve(Item* it, Py_ssize_t n, const int64_t* service, int64_t fixed,
                       int64_t* start) noexcept nogil:
    """One FIFO server: sort its items (they usually come in order), then start[idx] of
    each: max(arrival, the previous one's finish); service[idx] cycles each, or `fixed`
    when `service` is NULL."""
    cdef Py_ssize_t i
    cdef int64_t busy_until = 0, s
    for i in range(1, n):
        if before(&it[i], &it[i - 1]):
            order(it, n)
            break
    for i in range(n):
        s = it[i].arrive
        if i and busy_until > s:
            s = busy_until
        start[it[i].idx] = s
        busy_until = s + (service[it[i].idx] if service != NULL else fixed)


cdef inline void serve_many(Py_ssize_t n, const int64_t* server, const int64_t* arrive,
                            const int64_t* key, const int64_t* service, int64_t fixed,
                            Py_ssize_t n_servers, int64_t* fill, Item* items,
                            int64_t* start) noexcept nogil:
    """Items 0..n-1 on their servers (each a FIFO, see `serve`): bucketed by server,
    then served server by server. `fill`: n_servers + 1 scratch counters."""
    cdef Py_ssize_t i, k
    for k in range(n_servers + 1):
        fill[k] = 0
    for i in range(n):
        fill[server[i] + 1] += 1
    for k in range(n_servers):
        fill[k + 1] += fill[k]
    for i in range(n):
        k = fill[server[i]]
        items[k].arrive, items[k].key, items[k].idx = arrive[i], key[i], i
        fill[server[i]] += 1
    k = 0
    for i in range(n_servers):  # fill[i]: the end of server i's bucket
        serve(&items[k], fill[i] - k, service, fixed, start)
        k = fill[i]


cdef struct Plan:
    # static (DeliveryPlan.flat)
    const int64_t* unit_base
    const int64_t* unit_ptr
    const int64_t* unit_kind
    const int64_t* unit_what
    const int64_t* src_base
    const int64_t* src_core
    const int64_t* src_messages
    const int64_t* src_traversals
    const int64_t* src_jobs
    const int64_t* tab_base
    const int64_t* tab_stride
    const int64_t* alike
    const int64_t* service
    const int64_t* read
    const int64_t* dram_service
    # this presentation's row-buffer cycles per DRAM stream, CSR by spike (dram.DramSteps)
    const int64_t* dx_ptr
    const int64_t* dx_core
    const int64_t* dx_cycles
    bint dx
    const int64_t* tl_ptr
    const int64_t* tl_links
    const int64_t* tl_parents
    const int64_t* td_ptr
    const int64_t* td_dests
    const int64_t* td_leaves
    const int64_t* tl_rank
    const int64_t* link_lat
    const int64_t* link_flits
    Py_ssize_t P, C, L
    # rates
    int64_t out_service, message_cycles, port_service, port_delay, barrier
    bint soma_blocks
    # this presentation: spikes of each projection's source, from `spike_first` (P, T+1)
    const int64_t* spike_first
    const int64_t* spike_idx
    const int64_t* spike_soma
    const int64_t* nc  # (T, C) neuron phase
    const int64_t* learn  # (T, C)
    Py_ssize_t T


cdef struct Step:
    # messages
    int64_t* m_key
    int64_t* m_src  # server: the source core, or C (the input port)
    int64_t* m_from_core
    int64_t* m_tpl
    int64_t* m_soma
    int64_t* m_ready
    int64_t* m_depart
    int64_t* m_service  # its network interface's (a core's, or the input port's)
    int64_t* m_trav  # first traversal of each message (its template's first link)
    Py_ssize_t M
    # link traversals
    int64_t* t_dep  # departure from each link of each message
    int64_t* t_arrive
    int64_t* t_key
    int64_t* t_rank
    int64_t* t_msg
    int64_t* t_pos
    Py_ssize_t N
    # jobs (after up to C neuron-phase jobs: `early`)
    int64_t* j_core
    int64_t* j_key
    int64_t* j_msg
    int64_t* j_leaf
    int64_t* j_src
    int64_t* j_soma
    int64_t* j_arrive
    int64_t* j_service
    int64_t* j_read
    int64_t* j_dram
    int64_t* j_start
    Py_ssize_t J
    bint spills  # a job of the step reads spilled words from DRAM
    # scratch
    int64_t* fill
    Item* items
    int64_t* early
    int64_t* end


cdef inline void step_units(const Plan* pl, Step* s, Py_ssize_t t, int64_t* key) noexcept nogil:
    """The units of step t in key order (messages.DeliveryPlan.presentation)."""
    cdef Py_ssize_t o, k, u, d, tpl, T1 = pl.T + 1
    cdef int64_t idx, src, soma
    s.M = 0
    s.J = 0
    s.N = 0
    s.spills = False
    for o in range(pl.P):
        for k in range(pl.spike_first[o * T1 + t], pl.spike_first[o * T1 + t + 1]):
            idx = pl.spike_idx[k]
            src = pl.src_core[pl.src_base[o] + idx]
            soma = pl.spike_soma[k]
            for u in range(pl.unit_ptr[pl.unit_base[o] + idx], pl.unit_ptr[pl.unit_base[o] + idx + 1]):
                if pl.unit_kind[u] == 1:  # a message, and a job per destination
                    tpl = pl.unit_what[u]
                    s.m_key[s.M] = key[0]
                    s.m_src[s.M] = src if src >= 0 else pl.C
                    s.m_from_core[s.M] = src >= 0
                    s.m_tpl[s.M] = tpl
                    s.m_soma[s.M] = soma
                    s.m_trav[s.M] = s.N
                    s.N += pl.tl_ptr[tpl + 1] - pl.tl_ptr[tpl]
                    for d in range(pl.td_ptr[tpl], pl.td_ptr[tpl + 1]):
                        add_job(pl, s, o, k, idx, pl.td_dests[d], key[0], s.M, pl.td_leaves[d],
                                src, soma)
                    s.M += 1
                else:  # a local delivery
                    add_job(pl, s, o, k, idx, pl.unit_what[u], key[0], -1, -1, src, soma)
                key[0] += 1


cdef inline int64_t row_cycles(const Plan* pl, Py_ssize_t k, int64_t core) noexcept nogil:
    """The activation and precharge cycles of spike k's DRAM stream on a core
    (dram.DramSteps.job_cycles); 0 when it has none."""
    cdef Py_ssize_t e
    if not pl.dx:
        return 0
    for e in range(pl.dx_ptr[k], pl.dx_ptr[k + 1]):
        if pl.dx_core[e] == core:
            return pl.dx_cycles[e]
    return 0


cdef inline void add_job(const Plan* pl, Step* s, Py_ssize_t o, Py_ssize_t k, int64_t idx,
                         int64_t core, int64_t key, int64_t msg, int64_t leaf, int64_t src,
                         int64_t soma) noexcept nogil:
    """One job (of spike k): its service cycles (HwRates.service_cycles of its synaptic
    work), read latency and DRAM channel cycles, from the plan's tables and the
    presentation's row buffers."""
    cdef int64_t at = pl.tab_base[o] + core * pl.tab_stride[o] + (0 if pl.alike[o] else idx)
    cdef int64_t j = s.J
    s.j_core[j], s.j_key[j], s.j_msg[j], s.j_leaf[j] = core, key, msg, leaf
    s.j_src[j], s.j_soma[j] = src, soma
    s.j_service[j], s.j_read[j] = pl.service[at], pl.read[at]
    s.j_dram[j] = pl.dram_service[at] + (row_cycles(pl, k, core) if pl.dram_service[at] else 0)
    s.spills |= pl.dram_service[at] > 0
    s.J += 1


cdef inline void interfaces(const Plan* pl, Step* s, const int64_t* nc, int64_t most) noexcept nogil:
    """Each message's departure from its network interface (event.py: `depart`)."""
    cdef Py_ssize_t i
    cdef int64_t* sent = s.fill  # messages so far per server, for the soma's chain
    if not pl.soma_blocks:
        for i in range(pl.C + 1):
            sent[i] = 0
    for i in range(s.M):
        if pl.soma_blocks:  # a core's messages leave after its neuron phase, the port's after all
            s.m_ready[i] = nc[s.m_src[i]] if s.m_from_core[i] else most
        else:  # as each neuron fires, the soma waiting while its core sends
            s.m_ready[i] = s.m_soma[i] + pl.message_cycles * sent[s.m_src[i]]
            sent[s.m_src[i]] += 1
    for i in range(s.M):
        s.m_service[i] = pl.out_service if s.m_from_core[i] else pl.port_service
    serve_many(s.M, s.m_src, s.m_ready, s.m_key, s.m_service, 0, pl.C + 1, s.fill,
               s.items, s.m_depart)
    for i in range(s.M):
        s.m_depart[i] += pl.message_cycles if s.m_from_core[i] else pl.port_delay


cdef inline void links(const Plan* pl, Step* s) noexcept nogil:
    """Every link in topological order serves the messages that reach it (each from its
    parent link, or from its interface): departure = start + router and link latency."""
    cdef Py_ssize_t i, pos, k, a, b, r, tpl, n
    cdef int64_t par, lat, lid
    if not s.N:
        return
    for r in range(pl.L + 1):
        s.fill[r] = 0
    for i in range(s.M):  # every traversal, bucketed by its link's rank
        tpl = s.m_tpl[i]
        for pos in range(pl.tl_ptr[tpl + 1] - pl.tl_ptr[tpl]):
            s.fill[pl.tl_rank[pl.tl_ptr[tpl] + pos] + 1] += 1
    for r in range(pl.L):
        s.fill[r + 1] += s.fill[r]
    for i in range(s.M):
        tpl = s.m_tpl[i]
        for pos in range(pl.tl_ptr[tpl + 1] - pl.tl_ptr[tpl]):
            r = pl.tl_rank[pl.tl_ptr[tpl] + pos]
            k = s.fill[r]
            s.t_msg[k], s.t_pos[k] = i, pos
            s.fill[r] += 1
    a = 0
    for r in range(pl.L):  # s.fill[r]: the end of rank r's bucket
        b = s.fill[r]
        if b == a:
            continue
        n = b - a
        for k in range(a, b):
            i = s.t_msg[k]
            par = pl.tl_parents[pl.tl_ptr[s.m_tpl[i]] + s.t_pos[k]]
            s.items[k - a].arrive = s.m_depart[i] if par < 0 else s.t_dep[s.m_trav[i] + par]
            s.items[k - a].key = s.m_key[i]
            s.items[k - a].idx = k - a
        lid = pl.tl_links[pl.tl_ptr[s.m_tpl[s.t_msg[a]]] + s.t_pos[a]]
        serve(s.items, n, NULL, pl.link_flits[lid], s.t_arrive)
        lat = pl.link_lat[lid]
        for k in range(a, b):
            i = s.t_msg[k]
            s.t_dep[s.m_trav[i] + s.t_pos[k]] = s.t_arrive[k - a] + lat
        a = b


cdef inline int64_t jobs(const Plan* pl, Step* s, const int64_t* nc, const int64_t* learn,
                         int64_t most) noexcept nogil:
    """Each core serves its jobs (its neuron phase first where a job arrives before it is
    over), the DRAM channel the spilled words; the step's end: the last core's, learnt."""
    cdef Py_ssize_t i, j, c, C = pl.C, E, n
    cdef int64_t done, step_end = 0, v
    cdef int64_t* early = s.early  # per core: 1 when its neuron phase is a job
    for j in range(s.J):  # arrivals
        if s.j_msg[j] < 0:
            if pl.soma_blocks:
                s.j_arrive[j] = nc[s.j_src[j]] if s.j_src[j] >= 0 else most
            else:
                s.j_arrive[j] = s.j_soma[j]
        elif s.j_leaf[j] < 0:
            s.j_arrive[j] = s.m_depart[s.j_msg[j]]
        else:
            s.j_arrive[j] = s.t_dep[s.m_trav[s.j_msg[j]] + s.j_leaf[j]]
    for c in range(C):
        early[c] = 0
        s.end[c] = nc[c]
    if pl.soma_blocks:
        for j in range(s.J):
            if s.j_arrive[j] < nc[s.j_core[j]]:
                early[s.j_core[j]] = 1
    else:  # the soma's chain of sends ends its core's neuron work
        for i in range(s.M):
            if s.m_from_core[i]:
                s.end[s.m_src[i]] += pl.message_cycles
    # the neuron-phase jobs (key -1, from the step's start), then the jobs, on their cores
    n = 0
    for c in range(C):
        if early[c]:
            s.t_rank[n], s.t_arrive[n], s.t_key[n], s.t_msg[n] = c, 0, -1, nc[c]
            n += 1
    E = n
    for j in range(s.J):
        s.t_rank[n], s.t_arrive[n], s.t_key[n], s.t_msg[n] = (
            s.j_core[j], s.j_arrive[j], s.j_key[j], s.j_service[j])
        n += 1
    serve_many(n, s.t_rank, s.t_arrive, s.t_key, s.t_msg, 0, C, s.fill, s.items, s.t_pos)
    for i in range(n):
        done = s.t_pos[i] + s.t_msg[i] + (s.j_read[i - E] if i >= E else 0)
        c = s.t_rank[i]
        if done > s.end[c]:
            s.end[c] = done
    # the DRAM channel, in (arrival at the core, key, core) order
    n = 0
    for j in range(s.J if s.spills else 0):
        if s.j_dram[j] > 0:
            s.t_rank[n], s.t_arrive[n], s.t_key[n] = 0, s.j_arrive[j], s.j_key[j] * C + s.j_core[j]
            s.t_msg[n] = s.j_dram[j]
            s.t_pos[n] = j  # which job (scratch, read back below)
            n += 1
    if n:
        serve_many(n, s.t_rank, s.t_arrive, s.t_key, s.t_msg, 0, 1, s.fill, s.items, s.j_start)
        for i in range(n):
            c = s.j_core[s.t_pos[i]]
            done = s.j_start[i] + s.t_msg[i]
            if done > s.end[c]:
                s.end[c] = done
    for c in range(C):
        v = s.end[c] + learn[c]
        if c == 0 or v > step_end:
            step_end = v
    return step_end


cdef void largest_step(const Plan* pl, Py_ssize_t* M, Py_ssize_t* N, Py_ssize_t* J) noexcept nogil:
    """The most messages, link traversals and jobs of any step (the scratch's sizes)."""
    cdef Py_ssize_t t, o, k, at, T1 = pl.T + 1
    cdef int64_t m, n, j
    M[0] = N[0] = J[0] = 0
    for t in range(pl.T):
        m = n = j = 0
        for o in range(pl.P):
            for k in range(pl.spike_first[o * T1 + t], pl.spike_first[o * T1 + t + 1]):
                at = pl.src_base[o] + pl.spike_idx[k]
                m += pl.src_messages[at]
                n += pl.src_traversals[at]
                j += pl.src_jobs[at]
        M[0], N[0], J[0] = max(M[0], m), max(N[0], n), max(J[0], j)


cdef int64_t* carve(int64_t** block, Py_ssize_t n) noexcept nogil:
    """The next n int64 of a scratch block."""
    cdef int64_t* out = block[0]
    block[0] += n
    return out


cdef int run(const Plan* pl, int64_t* cycles) noexcept nogil:
    """Every step's cycles (barrier included); -1 when scratch memory cannot be had."""
    cdef Py_ssize_t t, c, M, N, J, W
    cdef int64_t key = 0, most
    cdef const int64_t* nc
    cdef Step s
    largest_step(pl, &M, &N, &J)
    M, N, J = M + 1, N + 1, J + 1
    W = max(M, max(N, J + pl.C))
    cdef Py_ssize_t words = 9 * M + N + 6 * W + 10 * J + 3 * (pl.C + pl.L + 2)
    cdef int64_t* mem = <int64_t*>malloc(sizeof(int64_t) * words + sizeof(Item) * W)
    if mem == NULL:
        return -1
    cdef int64_t* at = mem
    s.m_key, s.m_src, s.m_from_core, s.m_tpl = carve(&at, M), carve(&at, M), carve(&at, M), carve(&at, M)
    s.m_soma, s.m_ready, s.m_depart, s.m_trav = carve(&at, M), carve(&at, M), carve(&at, M), carve(&at, M)
    s.m_service = carve(&at, M)
    s.t_dep = carve(&at, N)
    s.t_arrive, s.t_key, s.t_rank = carve(&at, W), carve(&at, W), carve(&at, W)
    s.t_msg, s.t_pos, s.j_start = carve(&at, W), carve(&at, W), carve(&at, W)
    s.j_core, s.j_key, s.j_msg, s.j_leaf = carve(&at, J), carve(&at, J), carve(&at, J), carve(&at, J)
    s.j_src, s.j_soma, s.j_arrive = carve(&at, J), carve(&at, J), carve(&at, J)
    s.j_service, s.j_read, s.j_dram = carve(&at, J), carve(&at, J), carve(&at, J)
    s.fill = carve(&at, pl.C + pl.L + 2)
    s.early, s.end = carve(&at, pl.C + pl.L + 2), carve(&at, pl.C + pl.L + 2)
    s.items = <Item*>at
    if at - mem != words:  # the carving and the size above disagree
        free(mem)
        return -2
    for t in range(pl.T):
        nc = &pl.nc[t * pl.C]
        most = nc[0]
        for c in range(1, pl.C):
            if nc[c] > most:
                most = nc[c]
        step_units(pl, &s, t, &key)
        interfaces(pl, &s, nc, most)
        links(pl, &s)
        cycles[t] = jobs(pl, &s, nc, &pl.learn[t * pl.C], most) + pl.barrier
    free(mem)
    return 0


cdef inline const int64_t* ptr(const int64_t[::1] a) noexcept:
    return &a[0] if a.shape[0] else <const int64_t*>0


def event_cycles(p, work, plan, r, levels=None):
    """Cycles of each step (T,) of one presentation: event.event_cycles, compiled
    (`levels` is the reference's; the kernel follows the links' topological rank)."""
    f = plan.flat
    spec = plan.cc.spec
    T, C = p.n_steps, plan.cc.m.n_cores
    firsts, idx, soma = [], [], []
    base = 0
    spike_soma = work.spike_soma or {}
    for pr in spec.projections:
        i = p.indices[pr.src].astype(np.int64)
        firsts.append(np.cumsum(p.counts[pr.src], dtype=np.int64) + base)
        idx.append(i)
        if pr.src in spike_soma:
            soma.append(np.asarray(spike_soma[pr.src], np.int64))
        else:
            soma.append(np.zeros(len(i), np.int64))
        base += len(i)
    first = np.zeros((len(firsts), T + 1), np.int64)  # (P, T + 1): each step's first spike
    if len(firsts):
        first[:, 1:] = firsts
        first[:, 0] = first[:, -1] - [len(i) for i in idx]
    cdef const int64_t[::1] spike_first = first.ravel()
    cdef const int64_t[::1] spike_idx = np.concatenate(idx) if idx else np.zeros(0, np.int64)
    cdef const int64_t[::1] spike_soma_v = np.concatenate(soma) if soma else np.zeros(0, np.int64)
    cdef const int64_t[::1] nc = np.ascontiguousarray(r.neuron_phase(work), np.int64).ravel()
    cdef const int64_t[::1] learn = np.ascontiguousarray(learn_cycles_per_core(work, r), np.int64).ravel()
    rows = work.dram_rows
    empty = np.zeros(0, np.int64)
    cdef const int64_t[::1] dx_ptr = empty if rows is None else rows.spike_ptr
    cdef const int64_t[::1] dx_core = empty if rows is None else rows.core
    cdef const int64_t[::1] dx_cycles = empty if rows is None else rows.stream_cycles(r)
    cycles = np.zeros(max(T, 1), np.int64)  # a first element to point at
    cdef int64_t[::1] cycles_v = cycles
    cdef Plan pl
    pl.unit_base, pl.unit_ptr = ptr(f["unit_base"]), ptr(f["unit_ptr"])
    pl.unit_kind, pl.unit_what = ptr(f["unit_kind"]), ptr(f["unit_what"])
    pl.src_base, pl.src_core = ptr(f["src_base"]), ptr(f["src_core"])
    pl.src_messages, pl.src_traversals = ptr(f["src_messages"]), ptr(f["src_traversals"])
    pl.src_jobs = ptr(f["src_jobs"])
    pl.tab_base, pl.tab_stride, pl.alike = ptr(f["tab_base"]), ptr(f["tab_stride"]), ptr(f["alike"])
    pl.service, pl.read = ptr(f["service"]), ptr(f["read"])
    pl.dram_service = ptr(f["dram_service"])
    pl.dx = rows is not None
    pl.dx_ptr, pl.dx_core, pl.dx_cycles = ptr(dx_ptr), ptr(dx_core), ptr(dx_cycles)
    pl.tl_ptr, pl.tl_links, pl.tl_parents = ptr(f["tl_ptr"]), ptr(f["tl_links"]), ptr(f["tl_parents"])
    pl.td_ptr, pl.td_dests, pl.td_leaves = ptr(f["td_ptr"]), ptr(f["td_dests"]), ptr(f["td_leaves"])
    pl.tl_rank, pl.link_lat, pl.link_flits = ptr(f["tl_rank"]), ptr(f["link_lat"]), ptr(f["link_flits"])
    pl.P, pl.C, pl.L, pl.T = len(spec.projections), C, plan.n_links, T
    pl.out_service, pl.message_cycles = r.out_service, r.message_cycles
    pl.port_service, pl.port_delay = r.port_service, r.port_delay
    pl.barrier = r.barrier
    pl.soma_blocks = bool(r.soma_blocks)
    pl.spike_first, pl.spike_idx, pl.spike_soma = ptr(spike_first), ptr(spike_idx), ptr(spike_soma_v)
    pl.nc, pl.learn = ptr(nc), ptr(learn)
    cdef int ok
    with nogil:
        ok = run(&pl, &cycles_v[0])
    if ok == -1:
        raise MemoryError("no memory for the event kernel's scratch")
    if ok < 0:
        raise RuntimeError("the event kernel's scratch is carved wrongly")
    cycles = cycles[:T]
    if T:
        cycles[0] += pass_cycles(work, r)
    return cycles
