"""Energy: tables (how much) and pricing (counts x table + static power x time)."""
from .price import price_phase
from .table import EnergyTable, ResolvedTable

__all__ = ["EnergyTable", "ResolvedTable", "price_phase"]
