"""Schema of the `hardware` section: the chip a network is mapped onto (describe only).

A chip is a 2-D mesh of tiles; each tile has one router and `cores_per_tile` cores (Loihi:
4); each core has neuron and synapse lanes, an optional learning unit and a private
weight SRAM; weights that do not fit in SRAM live in (and are streamed from) off-chip
DRAM; a barrier ends every time step (or none: cores wait only for the spikes they
depend on). Core c sits on tile c // cores_per_tile; tile t is at (t % mesh_width,
t // mesh_width). Units are in key names.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from .base import Section

__all__ = ["HardwareConfig", "CoresConfig", "SomaCyclesConfig", "SRAMConfig", "DRAMConfig",
           "NoCConfig", "FormatsConfig", "SyncConfig", "PowerConfig", "SystemConfig",
           "DRAM_KINDS", "DRAM_PRESETS"]

PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Pos = Annotated[float, Field(gt=0)]

#: DRAM kinds with a per-bit energy in the shipped tables (anchors-sim.md 3c).
DRAM_KINDS = ("lpddr4", "lpddr2", "ddr3", "ddr4", "gddr5", "hbm2")


class SomaCyclesConfig(Section):
    """Per-neuron soma time (SANA-FE's model): every neuron costs `idle` cycles per step,
    plus `active` when it is updated and `spike` more when it fires."""

    idle: NonNegInt = 0
    active: NonNegInt = 0
    spike: NonNegInt = 0


class CoresConfig(Section):
    count: PosInt = 16
    cores_per_tile: PosInt = 1  # cores sharing one router
    mesh_width: PosInt = 4  # tiles
    mesh_height: PosInt = 4  # tiles
    neurons_per_core: PosInt = 256  # excitatory + inhibitory neurons a core can hold
    synapse_lanes: PosInt = 8  # synaptic accumulates per cycle
    neuron_lanes: PosInt = 4  # neuron updates per cycle
    learning_unit: bool = True  # on-chip STDP (training needs it)
    learning_lanes: PosInt = 4  # weight updates (read-modify-write arithmetic) per cycle
    synop_cycles: PosInt = 1  # cycles a synapse lane spends on one synaptic operation
    # the same for a sparse and a conv projection's operations (None: synop_cycles)
    synop_cycles_sparse: Optional[PosInt] = None
    synop_cycles_conv: Optional[PosInt] = None
    message_receive_cycles: NonNegInt = 0  # fixed cost of every message a core receives
    # None: the neuron phase is ceil(neurons / neuron_lanes) cycles; else per neuron
    soma_cycles: Optional[SomaCyclesConfig] = None
    # True: the neuron phase comes first and incoming messages wait for it; False
    # (SANA-FE): the soma and the synapse pipeline run independently, and a core's
    # messages leave as its neurons fire
    soma_blocks_synapses: bool = True
    # when a neuron's update counts as active: `input` when a synaptic event reached it in
    # the step before (or it has a bias); `state` when its state changed (SANA-FE: |v| > 0,
    # input or bias), which only the frontend knows: the trace's `<population>:active`
    # stream (without it the chip counts by `input`, and pricing warns)
    update_rule: Literal["input", "state"] = "input"

    @model_validator(mode="after")
    def _mesh(self):
        if self.count % self.cores_per_tile:
            raise ValueError(f"count = {self.count} is not a whole number of tiles of "
                             f"cores_per_tile = {self.cores_per_tile}")
        tiles = self.count // self.cores_per_tile
        if self.mesh_width * self.mesh_height != tiles:
            raise ValueError(f"mesh_width x mesh_height = {self.mesh_width * self.mesh_height} "
                             f"must equal the {tiles} tiles (count / cores_per_tile)")
        return self


class SRAMConfig(Section):
    size_kib: Annotated[float, Field(gt=0, le=1 << 20)] = 128.0  # per core
    word_bits: Annotated[int, Field(ge=1, le=4096)] = 64
    banks: PosInt = 4
    ports_per_bank: PosInt = 1
    read_latency_cycles: PosInt = 1
    write_latency_cycles: PosInt = 1
    layout: Literal["row_major", "column_major"] = "row_major"  # row = one presynaptic neuron
    # conv weights: expanded (a synapse per connection, target index and weight: Loihi 1,
    # SANA-FE) or shared (each core holds the kernels of the output channels it maps once)
    conv_weights: Literal["expanded", "shared"] = "expanded"


#: Timings and geometry of the DRAM kinds with a sourced preset (docs/chip.md, "DRAM row
#: buffers"): a field a config leaves out comes from its kind's entry. `row_hit_ns` is the
#: read latency plus one burst; `row_miss_ns` adds a precharge (`precharge_ns`, tRP) and an
#: activation (tRCD); rows are a rank's (all its dies in lockstep).
DRAM_PRESETS: dict[str, dict] = {
    # tukl-msd/DRAMPower memspecs/MICRON_6Gb_LPDDR4-3200_32bit_A.json, two x16 dies (x32):
    # tCK 0.625 ns, RL 28 + BL16 (8 cycles) = 22.5 ns; tRCD 29, tRP 29; 8 banks; 2 KiB
    # page per die
    "lpddr4": dict(bandwidth_gb_s=12.8, row_hit_ns=22.5, row_miss_ns=58.75, precharge_ns=18.125,
                   burst_bytes=64, row_bytes=4096, banks=8),
    # umd-memsys/DRAMsim3 configs/DDR4_8Gb_x16_3200.ini, four x16 chips (a 64-bit rank):
    # tCK 0.625 ns, CL 22 + BL8 (4 cycles) = 16.25 ns; tRCD 22, tRP 22; 2 bank groups x 4
    # banks; 1024 columns x 16 b = 2 KiB page per chip
    "ddr4": dict(bandwidth_gb_s=25.6, row_hit_ns=16.25, row_miss_ns=43.75, precharge_ns=13.75,
                 burst_bytes=64, row_bytes=8192, banks=8),
    # DRAMsim3 configs/DDR3_8Gb_x8_1600.ini, eight x8 chips (a 64-bit rank): tCK 1.25 ns,
    # CL 11 + BL8 (4 cycles) = 18.75 ns; tRCD 11, tRP 11; 8 banks; 2048 columns x 8 b
    "ddr3": dict(bandwidth_gb_s=12.8, row_hit_ns=18.75, row_miss_ns=46.25, precharge_ns=13.75,
                 burst_bytes=64, row_bytes=16384, banks=8),
    # DRAMsim3 configs/HBM2_8Gb_x128.ini, one 128-bit channel: tCK 1 ns (2 GT/s x 16 B),
    # CL 14 + BL4 (2 cycles) = 16 ns; tRCD 14, tRP 14; 4 bank groups x 4 banks; 64 columns
    # x 128 b = 1 KiB page
    "hbm2": dict(bandwidth_gb_s=32.0, row_hit_ns=16.0, row_miss_ns=44.0, precharge_ns=14.0,
                 burst_bytes=64, row_bytes=1024, banks=16),
}
_DRAM_FIELDS = tuple(DRAM_PRESETS["lpddr4"])


class DRAMConfig(Section):
    """The off-chip DRAM spilled weights live in: its kind (prices per bit, activation and
    precharge), bandwidth, latencies, geometry and page policy. `open`: a bank's row stays
    open until another row of the bank is needed (or the step ends); `closed`: every
    access stream closes the rows it opened."""

    kind: Literal[DRAM_KINDS] = "lpddr4"  # type: ignore[valid-type]
    bandwidth_gb_s: Pos  # GB/s (1e9 bytes/s)
    row_hit_ns: Pos
    row_miss_ns: Pos
    precharge_ns: Pos
    burst_bytes: PosInt
    row_bytes: PosInt
    banks: PosInt
    page_policy: Literal["open", "closed"] = "open"

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data):
        if not isinstance(data, dict):
            return data
        kind = data.get("kind", "lpddr4")
        missing = [f for f in _DRAM_FIELDS if f not in data]
        if missing and kind in DRAM_PRESETS:
            return {**{f: DRAM_PRESETS[kind][f] for f in missing}, **data}
        if missing and kind in DRAM_KINDS:
            raise ValueError(f"dram.kind {kind!r} has no timing preset (presets: "
                             f"{', '.join(DRAM_PRESETS)}): give {', '.join(missing)}")
        return data

    @model_validator(mode="after")
    def _latencies(self):
        if self.row_miss_ns < self.row_hit_ns + self.precharge_ns:
            raise ValueError(f"dram.row_miss_ns ({self.row_miss_ns}) is a hit plus a precharge "
                             f"plus an activation: at least row_hit_ns + precharge_ns "
                             f"({self.row_hit_ns + self.precharge_ns})")
        return self


class NoCConfig(Section):
    router_latency_cycles: NonNegInt = 1
    link_latency_cycles: PosInt = 1  # east-west links (and north-south unless set below)
    link_latency_ns_cycles: Optional[PosInt] = None  # north-south links, if they differ
    link_width_bits: PosInt = 32
    packet_bits: PosInt = 32
    cast: Literal["multicast", "unicast"] = "multicast"  # unicast: a message per destination core
    local: Literal["free", "network"] = "free"  # same-tile destinations: free delivery or a message
    message_cycles: NonNegInt = 0  # time a core spends generating each message it sends
    input_port: Annotated[list[NonNegInt], Field(min_length=2, max_length=2)] = [0, 0]  # tile [x, y]


class FormatsConfig(Section):
    weight_bits: Optional[Annotated[int, Field(ge=1, le=64)]] = None  # None: the network's
    state_bits: Annotated[int, Field(ge=1, le=64)] = 16
    # BPTT training: weight gradients and both Adam moments, per weight
    grad_bits: Annotated[int, Field(ge=1, le=64)] = 32
    trace_bits: Annotated[int, Field(ge=1, le=64)] = 8


class SyncConfig(Section):
    barrier: bool = True  # a mesh-wide barrier ends every time step
    barrier_cycles: NonNegInt = 100
    # the barrier's cycles by tiles in use (SANA-FE's sync table: the entry of the largest
    # key <= tiles holding neurons, the input port's tile included); None: barrier_cycles
    barrier_cycles_by_tiles: Optional[dict[PosInt, NonNegInt]] = None


class PowerConfig(Section):
    """Power states of each core's weight SRAM banks (docs/chip.md, "SRAM power states").
    `always_on`: every bank leaks for the whole simulated time; `gate_unused`: the banks
    that hold no word of the mapping are off (no leakage, contents lost); and
    `retention_when_idle`: besides, a used bank that no access touches for a stretch of
    whole steps at least `retention_after_cycles` long spends it in retention (state
    kept, leakage reduced by the energy table's `sram.retention_ratio`) and wakes before
    the step that reads it, which `wake_cycles` lengthens."""

    sram: Literal["always_on", "gate_unused", "retention_when_idle"] = "always_on"
    retention_after_cycles: NonNegInt = 0  # the break-even stretch (docs/chip.md)
    wake_cycles: NonNegInt = 0  # a bank's wake-up from retention


class SystemConfig(Section):
    """Chips on a board (docs/chip.md, "Systems of chips"): `chips` [x, y] copies of this
    chip on a board mesh, chip k at (k % x, k // x), their tile meshes side by side as one
    mesh; a hop between two chips crosses a chip-to-chip link with its own latency and
    width (its energy: the table's `router.hop_chip`). Cores are numbered chip by chip;
    input spikes enter at `noc.input_port` of chip 0 over the host link (its energy:
    `chip.input_spike`; its width and latency below, for one chip too)."""

    chips: Annotated[list[PosInt], Field(min_length=2, max_length=2)] = [1, 1]
    link_latency_cycles: PosInt = 1  # a chip-to-chip hop's link (the router's comes on top)
    link_width_bits: PosInt = 32  # bits a chip-to-chip link moves per cycle
    # the host link input spikes arrive by, into the input port: bits per cycle (None: as
    # an on-chip link, `noc.link_width_bits`) and cycles from the host to the port
    host_link_width_bits: Optional[PosInt] = None
    host_latency_cycles: NonNegInt = 0


class HardwareConfig(Section):
    name: str = "edge"
    clock_mhz: Annotated[float, Field(gt=0, le=100_000)] = 200.0
    mapping: Literal["contiguous", "balanced", "explicit"] = "balanced"
    # how a map (a population with a shape) is split over cores: by channel (whole channels
    # per core, the flattened order) or by spatial tile (every channel of a patch per core)
    map_split: Literal["channel", "tile"] = "channel"
    placement_file: Optional[str] = None  # explicit mapping: .npz/.json, population -> core per neuron
    cores: CoresConfig = CoresConfig()
    sram: SRAMConfig = SRAMConfig()
    dram: DRAMConfig = DRAMConfig.model_validate({})
    noc: NoCConfig = NoCConfig()
    formats: FormatsConfig = FormatsConfig()
    sync: SyncConfig = SyncConfig()
    power: PowerConfig = PowerConfig()
    system: SystemConfig = SystemConfig()

    @property
    def n_chips(self) -> int:
        return self.system.chips[0] * self.system.chips[1]

    @property
    def n_cores(self) -> int:
        """Cores of the whole system (`cores.count` per chip)."""
        return self.cores.count * self.n_chips

    @model_validator(mode="after")
    def _retention(self):
        if self.power.sram != "retention_when_idle":
            return self
        if not self.sync.barrier:
            raise ValueError("power.sram: retention_when_idle decides per time step, which a "
                             "chip without a barrier (sync.barrier: false) does not have: "
                             "use gate_unused or always_on")
        if self.sram.banks > 63:
            raise ValueError(f"power.sram: retention_when_idle follows up to 63 banks per core "
                             f"(sram.banks = {self.sram.banks})")
        return self

    @model_validator(mode="after")
    def _placement(self):
        if (self.mapping == "explicit") != (self.placement_file is not None):
            raise ValueError("placement_file is given exactly when mapping is explicit (the API "
                             "can also pass a placement to simulate())")
        return self

    @model_validator(mode="after")
    def _port(self):
        x, y = self.noc.input_port
        if x >= self.cores.mesh_width or y >= self.cores.mesh_height:
            raise ValueError(f"noc.input_port {list(self.noc.input_port)} is outside the "
                             f"{self.cores.mesh_width}x{self.cores.mesh_height} mesh")
        return self
