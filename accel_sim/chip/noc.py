"""Mesh geometry and XY routing: hop counts of unicast and multicast packets.

Routers sit on a W x H mesh, core c at (c % W, c // W). XY routing goes along x
first, then y. A multicast packet follows the union of the XY routes to its
destinations (a tree: each link is crossed once); a unicast packet is sent
once per destination. Hops are split east-west / north-south because energy
tables price them differently (Loihi: 3.0 vs 4.0 pJ).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Mesh", "Route"]


@dataclass(frozen=True)
class Route:
    """Hop counts of one packet from a source router to a set of destination cores."""

    hops_ew: int
    hops_ns: int
    packets: int  # injected packets: 1 for multicast, one per remote destination for unicast
    local: int  # destinations on the source router's own core (no hop)
    max_hops: int  # longest path in hops (latency)
    links: tuple[tuple[int, int, int, int], ...]  # (x0, y0, x1, y1) per crossed link, tree order


class Mesh:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height

    def xy(self, core: int) -> tuple[int, int]:
        return core % self.width, core // self.width

    def path(self, src: tuple[int, int], dst: tuple[int, int]) -> list[tuple[int, int, int, int]]:
        """Links (x0, y0, x1, y1) of the XY route from src to dst."""
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

    def route(self, src: tuple[int, int], dests: list[int], multicast: bool) -> Route:
        local = 0
        seen: dict[tuple[int, int, int, int], None] = {}
        ew = ns = packets = longest = 0
        for d in dests:
            dxy = self.xy(d)
            if dxy == src:
                local += 1
                continue
            links = self.path(src, dxy)
            longest = max(longest, len(links))
            if multicast:
                for link in links:
                    seen.setdefault(link, None)
            else:
                packets += 1
                for link in links:
                    seen[link] = None  # order only; unicast counts every link crossing below
                ew += sum(1 for a in links if a[1] == a[3])
                ns += sum(1 for a in links if a[0] == a[2])
        if multicast:
            ew = sum(1 for a in seen if a[1] == a[3])
            ns = sum(1 for a in seen if a[0] == a[2])
            packets = 1 if seen else 0
        return Route(ew, ns, packets, local, longest, tuple(seen))
