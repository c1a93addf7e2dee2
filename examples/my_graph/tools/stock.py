"""A user's own tools: stock levels and reorders for a small warehouse (kept in a JSON file under the home)."""

import json
from pathlib import Path

from agentmesh import PolicyViolation, ToolContext, tool

MAX_REORDER = 30  # a buyer signs off anything larger


def _stock(ctx: ToolContext) -> tuple[Path, dict]:
    path = Path(ctx.settings.resolved_home) / "stock.json"
    return path, json.loads(path.read_text()) if path.exists() else {"SKU-1": 4, "SKU-2": 30, "SKU-3": 15}


@tool
def stock_level(sku: str, ctx: ToolContext) -> dict:
    """Units in stock for one SKU.

    Args:
        sku: The stock-keeping unit, e.g. "SKU-1".
    """
    return {"sku": sku, "units": _stock(ctx)[1].get(sku, 0)}


@tool(risk="write", roles=["optimizer"])
def reorder_stock(sku: str, quantity: int, ctx: ToolContext) -> dict:
    """Order more units of a SKU from the supplier.

    Args:
        sku: The stock-keeping unit.
        quantity: Units to order (at most 30 without a buyer).
    """
    if quantity > MAX_REORDER:
        raise PolicyViolation(f"reorders above {MAX_REORDER} units need a buyer's sign-off (asked {quantity})")
    path, stock = _stock(ctx)
    stock[sku] = stock.get(sku, 0) + quantity
    path.write_text(json.dumps(stock))
    return {"sku": sku, "ordered": quantity, "units": stock[sku]}
