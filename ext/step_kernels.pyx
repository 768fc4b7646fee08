# cython: language_level=3
"""Compiled cores' load per step (accel_sim.chip._step_kernels).

Mirror of accel_sim/chip/steps.py (`reduce_steps`), giving the same service, synaptic
cycles per core, busiest network interface and soma chain of every step. The reference
builds (T, C) arrays of synaptic operations (per synapse unit), SRAM words, deliveries and
messages, then reduces them; this kernel fills one C-long row of each for one step at a
time (a step, or a class of alike steps: steps.alike_steps) and reduces it before the
next, each `cdef inline` helper one stage of the reference:
- `clear`: the step's rows start at zero;
- `add_rate`: a rate group's spikes of the step, each its group's one row;
- `add_spikes`: a group's spikes of the step, each its own row;
- `synaptic_row`: per core, max(synapse units' cycles, SRAM ports' cycles) plus the
  receive cost of each delivery;
- `reduce_row`: the row's service and busiest interface (maxima over the cores), the
  chain, and each core's synaptic cycles added to its total, once per step of the row.
`reduce_learning` mirrors steps.reduce_learning, a step's row at a time: the operations'
and the words' rows with their factors' products (`factored_row`), then `learn_row`.
"""
import numpy as np

from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free


cdef inline int shift_of(int64_t b) noexcept nogil:
    """log2(b) when b is a power of two, else -1."""
    cdef int k = 0
    if b <= 0 or (b & (b - 1)):
        return -1
    while (<int64_t>1 << k) < b:
        k += 1
    return k


cdef inline void ceil_div_row(const int64_t* a, int64_t b, int shift, int64_t scale,
                              int64_t* out, Py_ssize_t C) noexcept nogil:
    """out[c] += ceil(a[c] / b) x scale of counts a >= 0: a shift when b = 2**shift (a loop
    that vectorises; dividing a 64-bit integer costs tens of cycles)."""
    cdef Py_ssize_t c
    if shift >= 0:
        for c in range(C):
            out[c] += ((a[c] + b - 1) >> shift) * scale
    else:
        for c in range(C):
            out[c] += ((a[c] + b - 1) // b) * scale


cdef inline void clear(int64_t* rows, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        rows[i] = 0


cdef inline void add_rate(int64_t n, const int64_t* syn, const int64_t* sram,
                          int64_t core, int64_t count, int64_t* synops, int64_t* words,
                          int64_t* deliveries, int64_t* messages, Py_ssize_t C) noexcept nogil:
    """`n` spikes of a rate group: each adds the group's row."""
    cdef Py_ssize_t c
    for c in range(C):
        synops[c] += n * syn[c]
        words[c] += n * sram[c]
        deliveries[c] += n * (syn[c] > 0)
    if core >= 0:
        messages[core] += n * count


cdef inline void add_spikes(const int64_t* syn_tab, const int64_t* sram_tab,
                            const int64_t* msg_core, const int64_t* msg_count,
                            const int64_t* src, int64_t base, int64_t begin, int64_t end,
                            int64_t* synops, int64_t* words, int64_t* deliveries,
                            int64_t* messages, Py_ssize_t C) noexcept nogil:
    """Spikes src[begin:end] of a group: each adds its own row (`base` + its source) of
    the (rows, C) tables."""
    cdef Py_ssize_t j, c
    cdef int64_t row
    cdef const int64_t* syn
    cdef const int64_t* sram
    for j in range(begin, end):
        row = base + src[j]
        syn, sram = syn_tab + row * C, sram_tab + row * C
        for c in range(C):
            synops[c] += syn[c]
            words[c] += sram[c]
            deliveries[c] += syn[c] > 0
        if msg_core[row] >= 0:
            messages[msg_core[row]] += msg_count[row]


cdef inline void synaptic_row(const int64_t* synops, Py_ssize_t n_units,
                              const int64_t* unit_cycles, int64_t lanes,
                              const int64_t* words, const int64_t* deliveries, int64_t ports,
                              int64_t read_latency, int64_t receive_cycles, int64_t* out,
                              Py_ssize_t C) noexcept nogil:
    """Each core's synaptic cycles in the step (`out` starts at zero)."""
    cdef Py_ssize_t c, u
    cdef int64_t mem, syn
    cdef int lanes_shift = shift_of(lanes), ports_shift = shift_of(ports)
    for u in range(n_units):  # the synapse units' cycles, summed
        ceil_div_row(synops + u * C, lanes, lanes_shift, unit_cycles[u], out, C)
    for c in range(C):
        mem = read_latency * (words[c] > 0)
        if ports_shift >= 0:
            mem += (words[c] + ports - 1) >> ports_shift
        else:
            mem += (words[c] + ports - 1) // ports
        syn = out[c]
        out[c] = (syn if syn > mem else mem) + receive_cycles * deliveries[c]


cdef inline void reduce_row(const int64_t* synaptic, const int64_t* messages,
                            const int64_t[:, :] neurons, Py_ssize_t t, int64_t message_cycles,
                            bint chain, int64_t weight, int64_t* per_core, int64_t* service,
                            int64_t* most, int64_t* longest, Py_ssize_t C) noexcept nogil:
    """The row's maxima over the cores; each core's synaptic cycles added to its total,
    `weight` times (the steps the row stands for); `neurons`: (rows, C) neuron-phase
    cycles, any strides, read for the chain only."""
    cdef Py_ssize_t c
    cdef int64_t s = 0, m = 0, ch = 0, v
    for c in range(C):
        per_core[c] += weight * synaptic[c]
        s = synaptic[c] if synaptic[c] > s else s
        m = messages[c] if messages[c] > m else m
    if chain:
        for c in range(C):
            v = neurons[t, c] + messages[c] * message_cycles
            ch = v if v > ch else ch
    service[0], most[0], longest[0] = s, m, ch


def reduce_steps(const int64_t[:, ::1] ptr, const int64_t[::1] src, const signed char[::1] rate,
                 const int64_t[::1] unit, const int64_t[::1] row_base,
                 const int64_t[:, ::1] syn_tab, const int64_t[:, ::1] sram_tab,
                 const int64_t[::1] msg_core, const int64_t[::1] msg_count,
                 const int64_t[::1] weight, const int64_t[:, :] neurons, int64_t lanes, const int64_t[::1] unit_cycles,
                 int64_t ports, int64_t read_latency, int64_t receive_cycles,
                 int64_t message_cycles, bint chain):
    """(service, synaptic_per_core, most_messages, chain or None) row by row of `ptr`
    (steps, or classes of alike steps): steps.reduce_steps."""
    cdef Py_ssize_t G = ptr.shape[0], T = ptr.shape[1] - 1, C = syn_tab.shape[1]
    cdef Py_ssize_t U = unit_cycles.shape[0], t, g
    service_a = np.zeros(T, np.int64)
    per_core_a = np.zeros(C, np.int64)
    most_a = np.zeros(T, np.int64)
    chain_a = np.zeros(T, np.int64)
    cdef int64_t[::1] service = service_a, per_core = per_core_a, most = most_a
    cdef int64_t[::1] longest = chain_a
    # one block: synops per unit (U x C), SRAM words, deliveries, messages, synaptic
    cdef int64_t* rows = <int64_t*>calloc((U + 4) * C + 1, sizeof(int64_t))
    if rows == NULL:
        raise MemoryError()
    cdef int64_t* synops = rows
    cdef int64_t* words = rows + U * C
    cdef int64_t* deliveries = words + C
    cdef int64_t* messages = deliveries + C
    cdef int64_t* synaptic = messages + C
    cdef int64_t row
    # raw pointers to the tables (rows x C, C-contiguous); no memoryview slice per step
    cdef const int64_t* syn = &syn_tab[0, 0] if syn_tab.shape[0] else NULL
    cdef const int64_t* sram = &sram_tab[0, 0] if sram_tab.shape[0] else NULL
    cdef const int64_t* core = &msg_core[0] if msg_core.shape[0] else NULL
    cdef const int64_t* count = &msg_count[0] if msg_count.shape[0] else NULL
    cdef const int64_t* sources = &src[0] if src.shape[0] else NULL
    try:
        with nogil:
            for t in range(T):
                clear(rows, (U + 4) * C)
                for g in range(G):
                    if ptr[g, t + 1] == ptr[g, t]:
                        continue
                    if rate[g]:
                        row = row_base[g]
                        add_rate(ptr[g, t + 1] - ptr[g, t], syn + row * C, sram + row * C,
                                 core[row], count[row], synops + unit[g] * C, words,
                                 deliveries, messages, C)
                    else:
                        add_spikes(syn, sram, core, count, sources, row_base[g], ptr[g, t],
                                   ptr[g, t + 1], synops + unit[g] * C, words, deliveries,
                                   messages, C)
                synaptic_row(synops, U, &unit_cycles[0], lanes, words, deliveries, ports,
                             read_latency, receive_cycles, synaptic, C)
                reduce_row(synaptic, messages, neurons, t, message_cycles, chain, weight[t],
                           &per_core[0], &service[t], &most[t], &longest[t], C)
    finally:
        free(rows)
    return service_a, per_core_a, most_a, (chain_a if chain else None)


def alike_steps(const int64_t[:, ::1] ptr, const signed char[::1] rate):
    """(row of each step, the rows' ptr, each row's steps): steps.alike_steps, its classes
    in the same order (by their counts' mixed-radix key); where the keys do not fit a table
    (more than 4 x steps + 1024 of them, or 62 bits) the reference's sort does it."""
    cdef Py_ssize_t G = ptr.shape[0], T = ptr.shape[1] - 1, g, t, j
    cdef int64_t n_alike = 0, K = 0, top = 1, key, v
    own_a = np.zeros(T, np.int8)
    radix_a = np.ones(G, np.int64)
    cdef signed char[::1] own = own_a
    cdef int64_t[::1] radix = radix_a
    cdef double span = 1.0
    for t in range(T):  # steps with spikes of their own rows; each rate group's largest count
        for g in range(G):
            if not rate[g] and ptr[g, t + 1] > ptr[g, t]:
                own[t] = 1
                break
        if not own[t]:
            n_alike += 1
            for g in range(G):
                if rate[g] and ptr[g, t + 1] - ptr[g, t] + 1 > radix[g]:
                    radix[g] = ptr[g, t + 1] - ptr[g, t] + 1
    place_a = np.zeros(G, np.int64)
    cdef int64_t[::1] place = place_a
    for g in range(G):
        if rate[g]:
            place[g] = top
            span *= radix[g]
            top *= radix[g]
    if n_alike and span >= 4.0 * n_alike + 1024:  # too many keys for a table
        from accel_sim.chip import steps

        return steps.alike_steps(np.asarray(ptr), np.asarray(rate))
    keys_a = np.zeros(T, np.int64)
    first_a = np.full(top, -1, np.int64)
    cdef int64_t[::1] keys = keys_a, first = first_a
    for t in range(T):  # each alike step's key; the first step of each key
        if own[t]:
            continue
        key = 0
        for g in range(G):
            if rate[g]:
                key += (ptr[g, t + 1] - ptr[g, t]) * place[g]
        keys[t] = key
        if first[key] < 0:
            first[key] = t
    rank_a = np.zeros(top, np.int64)
    cdef int64_t[::1] rank = rank_a
    for key in range(top):  # classes in key order
        if first[key] >= 0:
            rank[key] = K
            K += 1
    n_own = T - n_alike
    row_of_a = np.zeros(T, np.int64)
    rows_a = np.zeros((G, K + n_own + 1), np.int64)
    weight_a = np.zeros(K + n_own, np.int64)
    cdef int64_t[::1] row_of = row_of_a, weight = weight_a
    cdef int64_t[:, ::1] rows = rows_a
    j = K
    for t in range(T):
        if own[t]:
            row_of[t] = j
            weight[j] = 1
            j += 1
        else:
            row_of[t] = rank[keys[t]]
            weight[rank[keys[t]]] += 1
    for g in range(G):
        if rate[g]:  # the classes' counts, then the own steps', cumulated
            for key in range(top):
                if first[key] >= 0:
                    t = first[key]
                    rows[g, rank[key] + 1] = ptr[g, t + 1] - ptr[g, t]
            j = K
            for t in range(T):
                if own[t]:
                    rows[g, j + 1] = ptr[g, t + 1] - ptr[g, t]
                    j += 1
            for j in range(1, K + n_own + 1):
                rows[g, j] += rows[g, j - 1]
        else:  # no spikes in the classes; each own step its range of src
            for j in range(K + 1):
                rows[g, j] = ptr[g, 0]
            j = K
            for t in range(T):
                if own[t]:
                    rows[g, j + 1] = ptr[g, t + 1]
                    j += 1
    return row_of_a, rows_a, weight_a


cdef inline void factored_row(const int64_t* dense, const int64_t[:, ::1] fac_n,
                              const int64_t[:, ::1] fac_k, Py_ssize_t t, int64_t* out,
                              Py_ssize_t C) noexcept nogil:
    """One step's row per core: `dense`'s row plus each factor pair's fac_n[p, t] x
    fac_k[p]."""
    cdef Py_ssize_t c, p
    cdef int64_t n
    for c in range(C):
        out[c] = dense[c]
    for p in range(fac_n.shape[0]):
        n = fac_n[p, t]
        if n:
            for c in range(C):
                out[c] += n * fac_k[p, c]


cdef inline int64_t learn_row(const int64_t* ops, const int64_t* words, int64_t lanes,
                              int lanes_shift, int64_t ports, int ports_shift,
                              int64_t write_latency, int64_t* per_core,
                              Py_ssize_t C) noexcept nogil:
    """One step: each core's learning cycles, max(ceil(ops / lanes), ceil(words / ports) +
    the write latency when it writes), added to its total; returns the row's maximum."""
    cdef Py_ssize_t c
    cdef int64_t o, w, v, most = 0
    for c in range(C):
        o = (ops[c] + lanes - 1) >> lanes_shift if lanes_shift >= 0 else (ops[c] + lanes - 1) // lanes
        w = (words[c] + ports - 1) >> ports_shift if ports_shift >= 0 else (words[c] + ports - 1) // ports
        w += write_latency * (words[c] > 0)
        v = o if o > w else w
        per_core[c] += v
        most = v if v > most else most
    return most


cdef inline void check_factors(const int64_t[:, ::1] fac_n, const int64_t[:, ::1] fac_k,
                               Py_ssize_t T, Py_ssize_t C, str names) except *:
    if fac_n.shape[0] != fac_k.shape[0] or (fac_n.shape[0] and (fac_n.shape[1] != T
                                                                or fac_k.shape[1] != C)):
        raise ValueError(f"{names} must be (P, T) and (P, C)")


def reduce_learning(const int64_t[:, ::1] ops, const int64_t[:, ::1] words,
                    const int64_t[:, ::1] pre_n, const int64_t[:, ::1] pre_k,
                    const int64_t[:, ::1] word_n, const int64_t[:, ::1] word_k, int64_t lanes,
                    int64_t ports, int64_t write_latency):
    """(slowest core's learning cycles per step, each core's summed over the steps):
    steps.reduce_learning, one pass over the (T, C) arrays, a step's row at a time
    (`factored_row` for the operations and for the words, then `learn_row`)."""
    cdef Py_ssize_t T = ops.shape[0], C = ops.shape[1], t
    if words.shape[0] != T or words.shape[1] != C:
        raise ValueError("ops and words must have the same shape")
    check_factors(pre_n, pre_k, T, C, "pre_n and pre_k")
    check_factors(word_n, word_k, T, C, "word_n and word_k")
    step_a = np.zeros(T, np.int64)
    per_core_a = np.zeros(C, np.int64)
    cdef int64_t[::1] step = step_a, per_core = per_core_a
    cdef int lanes_shift = shift_of(lanes), ports_shift = shift_of(ports)
    cdef int64_t* row = <int64_t*>calloc(2 * (C + 1), sizeof(int64_t))
    cdef int64_t* word_row
    if row == NULL:
        raise MemoryError()
    word_row = row + C + 1
    try:
        if T and C:
            with nogil:
                for t in range(T):
                    factored_row(&ops[t, 0], pre_n, pre_k, t, row, C)
                    factored_row(&words[t, 0], word_n, word_k, t, word_row, C)
                    step[t] = learn_row(row, word_row, lanes, lanes_shift, ports,
                                        ports_shift, write_latency, &per_core[0], C)
    finally:
        free(row)
    return step_a, per_core_a
