"""Energy: tables (how much) and pricing (counts x table + static power x time)."""
from .price import price_instances, price_phase
from .table import EnergyTable, ResolvedTable, message_model_warning

__all__ = ["EnergyTable", "ResolvedTable", "price_instances", "price_phase", "message_model_warning"]
