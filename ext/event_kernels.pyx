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
"""
import numpy as np

from libc.stdint cimport int64_t
from libc.stdlib cimport qsort

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


cdef inline void serve(Item* it, Py_ssize_t n, const int64_t* service,
                       int64_t* start) noexcept nogil:
    """One FIFO server: sort its items (they usually come in order), then start[idx] of
    each: max(arrival, the previous one's finish)."""
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
        busy_until = s + service[it[i].idx]


cdef inline void serve_many(Py_ssize_t n, const int64_t* server, const int64_t* arrive,
                            const int64_t* key, const int64_t* service, Py_ssize_t n_servers,
                            int64_t* fill, Item* items, int64_t* start) noexcept nogil:
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
        serve(&items[k], fill[i] - k, service, start)
        k = fill[i]


cdef struct Plan:
    # static (DeliveryPlan.flat)
    const int64_t* unit_base
    const int64_t* unit_ptr
    const int64_t* unit_kind
    const int64_t* unit_what
    const int64_t* src_base
    const int64_t* src_core
    const int64_t* tab_base
    const int64_t* tab_stride
    const int64_t* alike
    const int64_t* service
    const int64_t* read
    const int64_t* dram_service
    const int64_t* tl_ptr
    const int64_t* tl_links
    const int64_t* tl_parents
    const int64_t* td_ptr
    const int64_t* td_dests
    const int64_t* td_leaves
    const int64_t* link_rank
    const int64_t* link_lat
    Py_ssize_t P, C, L
    # rates
    int64_t out_service, message_cycles, flits, barrier
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
    # scratch
    int64_t* fill
    Item* items
    int64_t* order_pos
    int64_t* end


cdef inline void step_units(const Plan* pl, Step* s, Py_ssize_t t, int64_t* key) noexcept nogil:
    """The units of step t in key order (messages.DeliveryPlan.presentation)."""
    cdef Py_ssize_t o, k, u, d, tpl, T1 = pl.T + 1
    cdef int64_t idx, src, soma
    s.M = 0
    s.J = 0
    s.N = 0
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
                        add_job(pl, s, o, idx, pl.td_dests[d], key[0], s.M, pl.td_leaves[d], src, soma)
                    s.M += 1
                else:  # a local delivery
                    add_job(pl, s, o, idx, pl.unit_what[u], key[0], -1, -1, src, soma)
                key[0] += 1


cdef inline void add_job(const Plan* pl, Step* s, Py_ssize_t o, int64_t idx, int64_t core,
                         int64_t key, int64_t msg, int64_t leaf, int64_t src,
                         int64_t soma) noexcept nogil:
    """One job: its service cycles (HwRates.service_cycles of its synaptic work), read
    latency and DRAM channel cycles, from the plan's tables."""
    cdef int64_t at = pl.tab_base[o] + core * pl.tab_stride[o] + (0 if pl.alike[o] else idx)
    cdef int64_t j = s.J
    s.j_core[j], s.j_key[j], s.j_msg[j], s.j_leaf[j] = core, key, msg, leaf
    s.j_src[j], s.j_soma[j] = src, soma
    s.j_service[j], s.j_read[j] = pl.service[at], pl.read[at]
    s.j_dram[j] = pl.dram_service[at]
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
        s.t_arrive[i] = pl.out_service  # the interfaces' service (scratch)
    serve_many(s.M, s.m_src, s.m_ready, s.m_key, s.t_arrive, pl.C + 1, s.fill, s.items,
               s.m_depart)
    for i in range(s.M):
        s.m_depart[i] += pl.message_cycles


cdef inline void links(const Plan* pl, Step* s) noexcept nogil:
    """Every link in topological order serves the messages that reach it (each from its
    parent link, or from its interface): departure = start + router and link latency."""
    cdef Py_ssize_t i, pos, k, a, b, r, tpl, n
    cdef int64_t par, lat
    if not s.N:
        return
    for r in range(pl.L + 1):
        s.fill[r] = 0
    for i in range(s.M):  # every traversal, bucketed by its link's rank
        tpl = s.m_tpl[i]
        for pos in range(pl.tl_ptr[tpl + 1] - pl.tl_ptr[tpl]):
            s.fill[pl.link_rank[pl.tl_links[pl.tl_ptr[tpl] + pos]] + 1] += 1
    for r in range(pl.L):
        s.fill[r + 1] += s.fill[r]
    for i in range(s.M):
        tpl = s.m_tpl[i]
        for pos in range(pl.tl_ptr[tpl + 1] - pl.tl_ptr[tpl]):
            r = pl.link_rank[pl.tl_links[pl.tl_ptr[tpl] + pos]]
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
            s.t_key[k - a] = pl.flits  # the link's service (scratch)
        serve(s.items, n, s.t_key, s.t_arrive)
        lat = pl.link_lat[pl.tl_links[pl.tl_ptr[s.m_tpl[s.t_msg[a]]] + s.t_pos[a]]]
        for k in range(a, b):
            i = s.t_msg[k]
            s.t_dep[s.m_trav[i] + s.t_pos[k]] = s.t_arrive[k - a] + lat
        a = b


cdef inline int64_t jobs(const Plan* pl, Step* s, const int64_t* nc, const int64_t* learn,
                         int64_t most) noexcept nogil:
    """Each core serves its jobs (its neuron phase first where a job arrives before it is
    over), the DRAM channel the spilled words; the step's end: the last core's, learnt."""
    cdef Py_ssize_t i, j, c, C = pl.C, E = 0, n
    cdef int64_t arrive, done, step_end = 0, v
    cdef int64_t* early = s.order_pos  # per core: 1 when its neuron phase is a job
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
    serve_many(n, s.t_rank, s.t_arrive, s.t_key, s.t_msg, C, s.fill, s.items, s.t_pos)
    for i in range(n):
        done = s.t_pos[i] + s.t_msg[i] + (s.j_read[i - E] if i >= E else 0)
        c = s.t_rank[i]
        if done > s.end[c]:
            s.end[c] = done
    # the DRAM channel, in (arrival at the core, key, core) order
    n = 0
    for j in range(s.J):
        if s.j_dram[j] > 0:
            s.t_rank[n], s.t_arrive[n], s.t_key[n] = 0, s.j_arrive[j], s.j_key[j] * C + s.j_core[j]
            s.t_msg[n] = s.j_dram[j]
            s.t_pos[n] = j  # which job (scratch, read back below)
            n += 1
    if n:
        serve_many(n, s.t_rank, s.t_arrive, s.t_key, s.t_msg, 1, s.fill, s.items, s.j_start)
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


cdef void run(const Plan* pl, Step* s, int64_t* cycles) noexcept nogil:
    cdef Py_ssize_t t, c
    cdef int64_t key = 0, most
    cdef const int64_t* nc
    for t in range(pl.T):
        nc = &pl.nc[t * pl.C]
        most = nc[0]
        for c in range(1, pl.C):
            if nc[c] > most:
                most = nc[c]
        step_units(pl, s, t, &key)
        interfaces(pl, s, nc, most)
        links(pl, s)
        cycles[t] = jobs(pl, s, nc, &pl.learn[t * pl.C], most) + pl.barrier


cdef inline const int64_t* ptr(const int64_t[::1] a) noexcept:
    return &a[0] if a.shape[0] else <const int64_t*>0


def event_cycles(p, work, plan, r, levels=None):
    """Cycles of each step (T,) of one presentation: event.event_cycles, compiled
    (`levels` is the reference's; the kernel follows the links' topological rank)."""
    f = plan.flat
    spec, m = plan.cc.spec, plan.cc.m
    T, C = p.n_steps, m.n_cores
    firsts, idx, soma = [], [], []
    base = 0
    spike_soma = work.spike_soma or {}
    for pr in spec.projections:
        n = p.counts[pr.src].astype(np.int64)
        firsts.append(base + np.concatenate([[0], np.cumsum(n)]))
        i = p.indices[pr.src].astype(np.int64)
        idx.append(i)
        soma.append(np.asarray(spike_soma[pr.src], np.int64) if pr.src in spike_soma
                    else np.zeros(len(i), np.int64))
        base += len(i)
    cdef const int64_t[::1] spike_first = np.concatenate(firsts).astype(np.int64) if firsts else np.zeros(1, np.int64)
    cdef const int64_t[::1] spike_idx = np.concatenate(idx) if idx else np.zeros(0, np.int64)
    cdef const int64_t[::1] spike_soma_v = np.concatenate(soma) if soma else np.zeros(0, np.int64)
    cdef const int64_t[::1] nc = np.ascontiguousarray(r.neuron_phase(work), np.int64).ravel()
    cdef const int64_t[::1] learn = np.ascontiguousarray(learn_cycles_per_core(work, r), np.int64).ravel()
    # the largest step's messages, link traversals and jobs bound the scratch
    cdef Py_ssize_t M, N, J
    msgs = np.zeros(T, np.int64)
    trav = np.zeros(T, np.int64)
    jb = np.zeros(T, np.int64)
    for o, pr in enumerate(spec.projections):
        if len(idx[o]):
            st = np.repeat(np.arange(T), p.counts[pr.src].astype(np.int64))
            at = f["src_base"][o] + idx[o]
            msgs += np.bincount(st, f["src_messages"][at], T).astype(np.int64)
            trav += np.bincount(st, f["src_traversals"][at], T).astype(np.int64)
            jb += np.bincount(st, f["src_jobs"][at], T).astype(np.int64)
    M, N, J = int(msgs.max(initial=0)), int(trav.max(initial=0)), int(jb.max(initial=0))
    width = max(M, N, J + C, 1)
    buf = {k: np.zeros(max(M, 1), np.int64) for k in ("m_key", "m_src", "m_from_core", "m_tpl",
                                                       "m_soma", "m_ready", "m_depart", "m_trav")}
    buf.update({k: np.zeros(width, np.int64) for k in ("t_arrive", "t_key", "t_rank", "t_msg",
                                                         "t_pos", "j_start")})
    buf["t_dep"] = np.zeros(max(N, 1), np.int64)
    buf.update({k: np.zeros(max(J, 1), np.int64) for k in (
        "j_core", "j_key", "j_msg", "j_leaf", "j_src", "j_soma", "j_arrive", "j_service",
        "j_read", "j_dram")})
    buf["fill"] = np.zeros(max(C, plan.n_links) + 2, np.int64)
    buf["order_pos"] = np.zeros(max(C, 1), np.int64)
    buf["end"] = np.zeros(max(C, 1), np.int64)
    items = np.zeros(width * 3, np.int64)  # Item: three int64
    cycles = np.zeros(T, np.int64)

    cdef Plan pl
    cdef Step s
    cdef int64_t[::1] v
    cdef int64_t[::1] items_v = items
    cdef int64_t[::1] cycles_v = cycles
    kv = {k: np.ascontiguousarray(a, np.int64) for k, a in f.items()}
    pl.unit_base = ptr(kv["unit_base"]); pl.unit_ptr = ptr(kv["unit_ptr"])
    pl.unit_kind = ptr(kv["unit_kind"]); pl.unit_what = ptr(kv["unit_what"])
    pl.src_base = ptr(kv["src_base"]); pl.src_core = ptr(kv["src_core"])
    pl.tab_base = ptr(kv["tab_base"]); pl.tab_stride = ptr(kv["tab_stride"])
    pl.alike = ptr(kv["alike"])
    pl.service, pl.read = ptr(kv["service"]), ptr(kv["read"])
    pl.dram_service = ptr(kv["dram_service"])
    pl.tl_ptr = ptr(kv["tl_ptr"]); pl.tl_links = ptr(kv["tl_links"])
    pl.tl_parents = ptr(kv["tl_parents"]); pl.td_ptr = ptr(kv["td_ptr"])
    pl.td_dests = ptr(kv["td_dests"]); pl.td_leaves = ptr(kv["td_leaves"])
    pl.link_rank = ptr(kv["link_rank"]); pl.link_lat = ptr(kv["link_lat"])
    pl.P, pl.C, pl.L, pl.T = len(spec.projections), C, plan.n_links, T
    pl.out_service, pl.message_cycles, pl.flits = r.out_service, r.message_cycles, r.flits
    pl.barrier = r.barrier
    pl.soma_blocks = bool(r.soma_blocks)
    pl.spike_first, pl.spike_idx, pl.spike_soma = ptr(spike_first), ptr(spike_idx), ptr(spike_soma_v)
    pl.nc, pl.learn = ptr(nc), ptr(learn)
    v = buf["m_key"]; s.m_key = &v[0]
    v = buf["m_src"]; s.m_src = &v[0]
    v = buf["m_from_core"]; s.m_from_core = &v[0]
    v = buf["m_tpl"]; s.m_tpl = &v[0]
    v = buf["m_soma"]; s.m_soma = &v[0]
    v = buf["m_ready"]; s.m_ready = &v[0]
    v = buf["m_depart"]; s.m_depart = &v[0]
    v = buf["m_trav"]; s.m_trav = &v[0]
    v = buf["t_dep"]; s.t_dep = &v[0]
    v = buf["t_arrive"]; s.t_arrive = &v[0]
    v = buf["t_key"]; s.t_key = &v[0]
    v = buf["t_rank"]; s.t_rank = &v[0]
    v = buf["t_msg"]; s.t_msg = &v[0]
    v = buf["t_pos"]; s.t_pos = &v[0]
    v = buf["j_start"]; s.j_start = &v[0]
    v = buf["j_core"]; s.j_core = &v[0]
    v = buf["j_key"]; s.j_key = &v[0]
    v = buf["j_msg"]; s.j_msg = &v[0]
    v = buf["j_leaf"]; s.j_leaf = &v[0]
    v = buf["j_src"]; s.j_src = &v[0]
    v = buf["j_soma"]; s.j_soma = &v[0]
    v = buf["j_arrive"]; s.j_arrive = &v[0]
    v = buf["j_service"]; s.j_service = &v[0]
    v = buf["j_read"]; s.j_read = &v[0]
    v = buf["j_dram"]; s.j_dram = &v[0]
    v = buf["fill"]; s.fill = &v[0]
    v = buf["order_pos"]; s.order_pos = &v[0]
    v = buf["end"]; s.end = &v[0]
    s.items = <Item*>&items_v[0]
    with nogil:
        run(&pl, &s, &cycles_v[0])
    if T:
        cycles[0] += pass_cycles(work, r)
    return cycles
