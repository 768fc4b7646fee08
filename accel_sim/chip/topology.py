"""Where things are on the chip: cores on tiles, tiles on a mesh, and routes between them.

Core `c` sits on tile `c // cores_per_tile`; tile `t` is at mesh position `(t % W,
t // W)` of a W x H tile mesh, and every tile has one router (Loihi: 4 cores per tile,
8 x 4 tiles). External input spikes enter at the router of tile `noc.input_port`.
Routing is XY (x first, then y); a hop is one link between neighbouring tiles, split
east-west / north-south because tables price them differently (Loihi: 3.0 / 4.0 pJ).

A system of chips (`hardware.system`) puts `chips` [X, Y] copies of the chip's W x H tile
mesh side by side as one XW x YH mesh: chip k at (k % X, k // X), its tiles numbered after
those of chips 0 .. k-1; a hop between two chips' edge tiles is a chip-to-chip hop.

A spike of one projection is sent to the cores that hold its targets:
- `multicast`: one packet follows the union of the XY routes (a tree: each link once);
- `unicast`: one message per destination core, each over its own XY route.
Destinations on the source's own tile use no link. With `noc.local: free` they are a
local delivery (no message); with `network` (SANA-FE's model) they are a message like
any other, with zero hops.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ROUTER_COUNTS", "Link", "Route", "Topology"]

Link = tuple[int, int, int, int]  # (x0, y0, x1, y1) between neighbouring tiles
#: the router actions a route makes (registry: router) and the Route fields that count them
ROUTER_COUNTS = (("inject", "packets"), ("hop_ew", "hops_ew"), ("hop_ns", "hops_ns"),
                 ("hop_chip", "hops_chip"), ("local_delivery", "local"))


@dataclass(frozen=True)
class Route:
    """What one spike of one projection costs the network, and the path it takes."""

    packets: int  # messages injected into the network
    hops_ew: int
    hops_ns: int
    hops_chip: int  # links between chips (counted apart from hops_ew / hops_ns)
    local: int  # deliveries inside the source tile without a message
    max_hops: int  # longest path in hops (latency)
    max_chip_hops: int  # chip-to-chip hops on the path with the most of them
    # per message: (destination cores, links in order with their parent index (-1: first),
    # and for each destination core the index of the link it leaves from (-1: no link))
    messages: tuple[tuple[tuple[int, ...], tuple[tuple[Link, int], ...], tuple[int, ...]], ...]
    local_cores: tuple[int, ...]  # destinations served by local delivery


class Topology:
    def __init__(self, hw):
        c = hw.cores
        self.cores_per_tile = c.cores_per_tile
        self.chip_width, self.chip_height = c.mesh_width, c.mesh_height  # one chip's tiles
        self.chips_x, self.chips_y = hw.system.chips
        self.tiles_per_chip = c.count // c.cores_per_tile
        self.n_cores = hw.n_cores
        # the mesh of the whole system
        self.width, self.height = self.chips_x * c.mesh_width, self.chips_y * c.mesh_height
        self.port = tuple(int(v) for v in hw.noc.input_port)
        self.multicast = hw.noc.cast == "multicast"
        self.local_free = hw.noc.local == "free"
        self._cache: dict[tuple, Route] = {}

    @property
    def n_tiles(self) -> int:
        return self.n_cores // self.cores_per_tile

    def tile_of(self, core) -> np.ndarray | int:
        return np.asarray(core) // self.cores_per_tile if not isinstance(core, int) else (
            core // self.cores_per_tile)

    def xy(self, tile: int) -> tuple[int, int]:
        chip, t = divmod(tile, self.tiles_per_chip)
        return ((chip % self.chips_x) * self.chip_width + t % self.chip_width,
                (chip // self.chips_x) * self.chip_height + t // self.chip_width)

    def tile_at(self, x: int, y: int) -> int:
        """The tile at mesh position (x, y) (the inverse of `xy`)."""
        chip = (y // self.chip_height) * self.chips_x + x // self.chip_width
        return (chip * self.tiles_per_chip + (y % self.chip_height) * self.chip_width
                + x % self.chip_width)

    def crosses_chips(self, link: Link) -> bool:
        """Whether a link joins two chips."""
        x0, y0, x1, y1 = link
        return (x0 // self.chip_width != x1 // self.chip_width
                or y0 // self.chip_height != y1 // self.chip_height)

    @staticmethod
    def path(src: tuple[int, int], dst: tuple[int, int]) -> list[Link]:
        """Links of the XY route from tile src to tile dst."""
        (x, y), (tx, ty) = src, dst
        links = []
        while x != tx:
            nx = x + (1 if tx > x else -1)
            links.append((x, y, nx, y))
            x = nx
        while y != ty:
            ny = y + (1 if ty > y else -1)
            links.append((x, y, x, ny))
            y = ny
        return links

    @staticmethod
    def _tree(src: tuple[int, int], ends: list[tuple[int, int]]
              ) -> tuple[tuple[tuple[Link, int], ...], tuple[int, ...]]:
        """The multicast tree of the XY routes from src to every end: each link once, in
        the order walking the routes end after end meets it, with the index of the link
        before it (-1: the first), and each end's last link (-1: none). A route runs
        along src's row, then along its end's column, so the links walked so far are a
        stretch of the row each way and a stretch of each column each way: each end
        adds only the links past them."""
        sx, sy = src
        tree: list[tuple[Link, int]] = []
        at = {(sx, sy): -1}  # a tile walked to -> the index of the link that reached it
        reach = {}  # (column or None for the row, direction) -> the farthest tile walked
        leaves = []

        def walk(key, x, y, dx, dy, to):
            """Extend the stretch from (x, y) in direction (dx, dy) to coordinate `to`."""
            far = reach.get(key, x if dx else y)
            while (far - to) * (dx + dy) < 0:
                x0, y0 = (far, y) if dx else (x, far)
                link = (x0, y0, x0 + dx, y0 + dy)
                at[(x0 + dx, y0 + dy)] = len(tree)
                tree.append((link, at[(x0, y0)]))
                far += dx + dy
            reach[key] = far

        for tx, ty in ends:
            if (tx, ty) not in at:  # a tile not walked to yet
                if (tx, sy) not in at:
                    d = 1 if tx > sx else -1
                    walk((None, d), sx, sy, d, 0, tx)
                if ty != sy:
                    d = 1 if ty > sy else -1
                    walk((tx, d), tx, sy, 0, d, ty)
            leaves.append(at[(tx, ty)])
        return tuple(tree), tuple(leaves)

    def route(self, src_core: int | None, dests) -> Route:
        """The route of one spike from `src_core` (None: the input port) to the cores
        `dests` (ascending, unique). Cached: spikes of one source share it."""
        key = (src_core, tuple(np.asarray(dests, np.int64).tolist()))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._route(src_core, key[1])
        return hit

    def _route(self, src_core: int | None, dests: tuple[int, ...]) -> Route:
        src_xy = self.port if src_core is None else self.xy(self.tile_of(src_core))
        local = tuple(d for d in dests if self.local_free and self.xy(self.tile_of(d)) == src_xy)
        near = set(local)
        remote = [d for d in dests if d not in near]
        ends = [self.xy(self.tile_of(d)) for d in remote]
        longest = max((abs(x - src_xy[0]) + abs(y - src_xy[1]) for x, y in ends), default=0)
        messages = []
        if self.multicast and remote:
            messages.append((tuple(remote), *self._tree(src_xy, ends)))
        else:
            for d, end in zip(remote, ends):
                p = self.path(src_xy, end)
                messages.append(((d,), tuple((link, i - 1) for i, link in enumerate(p)),
                                 (len(p) - 1,)))
        links = np.array([link for _, tree, _ in messages for (link, _) in tree],
                         np.int64).reshape(-1, 4)
        w, h = self.chip_width, self.chip_height
        chip = ((links[:, 0] // w != links[:, 2] // w) | (links[:, 1] // h != links[:, 3] // h))
        ew = int(((links[:, 1] == links[:, 3]) & ~chip).sum())
        ns = int(((links[:, 0] == links[:, 2]) & ~chip).sum())
        # an XY route crosses the chip boundaries between its ends' chips once each
        most_chip = max((abs(src_xy[0] // w - x // w) + abs(src_xy[1] // h - y // h)
                         for x, y in ends), default=0)
        return Route(len(messages), ew, ns, int(chip.sum()), len(local), longest, most_chip,
                     tuple(messages), local)
