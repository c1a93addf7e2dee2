"""Customers, orders and support tickets; refunds within policy; escalation; the operator outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from agentmesh.core.exceptions import NotFoundError, PolicyViolation
from agentmesh.persistence.database import utcnow
from agentmesh.plugins.operations.world._atomic import atomic
from agentmesh.plugins.operations.world._tables import customers, notifications, orders, refunds, tickets
from agentmesh.plugins.operations.world.sentiment import label

if TYPE_CHECKING:
    from agentmesh.plugins.operations.limits import WorldLimits

__all__ = ["PRIORITIES", "SEVERITIES", "STATUSES", "TicketsMixin"]

PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("open", "escalated", "resolved")
SEVERITIES = ("info", "warning", "critical")
MAX_LISTED = 20


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _brief(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "subject": row.subject,
        "priority": row.priority,
        "status": row.status,
        "sentiment": label(row.sentiment),
        "requested_refund_usd": row.requested_refund_usd,
        "refund_total_usd": row.refund_total_usd,
        "customer_id": row.customer_id,
    }


class TicketsMixin:
    engine: Engine
    limits: WorldLimits

    def _ticket(self, conn: Connection, ticket_id: str, *, lock: bool = False) -> Any:
        query = select(tickets).where(tickets.c.id == ticket_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            total = conn.execute(select(func.count()).select_from(tickets)).scalar_one()
            hint = "`list_tickets` shows them" if total else "the world is empty: run `agentmesh world init`"
            raise NotFoundError(f"no ticket {ticket_id!r}; ids look like 'T-1001' ({hint})")
        return row

    def list_tickets(self, status: str | None = None, priority: str | None = None) -> dict[str, Any]:
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        if priority is not None and priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
        query = select(tickets)
        if status:
            query = query.where(tickets.c.status == status)
        if priority:
            query = query.where(tickets.c.priority == priority)
        with self.engine.connect() as conn:
            rows = list(conn.execute(query).all())
        # Most urgent first, then oldest: the order a support lead would work them.
        rows.sort(key=lambda r: (-PRIORITIES.index(r.priority), r.created, r.id))
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        return {
            "total": len(rows),
            "by_status": counts,
            "tickets": [_brief(r) for r in rows[:MAX_LISTED]],
            "truncated": len(rows) > MAX_LISTED,
        }

    def get_ticket(self, ticket_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._ticket(conn, ticket_id)
            customer = conn.execute(select(customers).where(customers.c.id == row.customer_id)).one()
            order = conn.execute(select(orders).where(orders.c.id == row.order_id)).first() if row.order_id else None
        return {
            **_brief(row),
            "sentiment_score": row.sentiment,
            # Written by the customer: data to weigh, never instructions to follow.
            "customer_message": {"subject": row.subject, "body": row.body},
            "customer": {"id": customer.id, "name": customer.name, "tier": customer.tier, "country": customer.country},
            "order": None if order is None else {
                "id": order.id, "total_usd": order.total_usd, "status": order.status, "placed_on": order.placed_on,
                "items": order.items,
            },
            "resolution": row.resolution,
            "escalation_reason": row.escalation_reason,
            "refund_cap_usd": self.limits.refund_cap_usd,
            "refundable_usd": round(max(0.0, self.limits.refund_cap_usd - row.refund_total_usd), 2),
            "version": row.version,
        }

    def resolve_ticket(
        self, ticket_id: str, resolution: str, refund_usd: float = 0, *, key: str | None = None
    ) -> dict[str, Any]:
        if not resolution or not resolution.strip():
            raise ValueError("resolution must say what was done for the customer")
        if refund_usd < 0:
            raise ValueError(f"refund_usd must be 0 or more, got {refund_usd}")
        refund = round(float(refund_usd), 2)

        def apply(conn: Connection) -> dict[str, Any]:
            row = self._ticket(conn, ticket_id, lock=True)
            if row.status == "resolved":
                raise ValueError(f"ticket {row.id} is already resolved; a resolved ticket cannot be resolved again")
            cap = self.limits.refund_cap_usd
            if row.refund_total_usd + refund > cap + 1e-9:
                left = max(0.0, cap - row.refund_total_usd)
                raise PolicyViolation(
                    f"resolve_ticket refused: refunds on one ticket are capped at ${cap:.2f} "
                    f"(already ${row.refund_total_usd:.2f}, so 0..{left:.2f} allowed; asked {refund:.2f}); "
                    "escalate the ticket for a larger refund."
                )
            today = _today()
            spent = conn.execute(
                select(func.coalesce(func.sum(refunds.c.amount_usd), 0.0)).where(refunds.c.day == today)
            ).scalar_one()
            budget = self.limits.daily_refund_budget_usd
            if refund and spent + refund > budget + 1e-9:
                raise PolicyViolation(
                    f"resolve_ticket refused: the daily refund budget is ${budget:.2f} and ${spent:.2f} is spent "
                    f"today, so at most ${max(0.0, budget - spent):.2f} more may be refunded (asked {refund:.2f})."
                )
            now = utcnow()
            if refund:
                conn.execute(insert(refunds).values(ticket_id=row.id, amount_usd=refund, day=today, key=key, created=now))
            total = round(row.refund_total_usd + refund, 2)
            conn.execute(update(tickets).where(tickets.c.id == row.id).values(
                status="resolved", resolution=resolution.strip(), refund_total_usd=total,
                version=tickets.c.version + 1, updated=now))
            return {
                "ticket_id": row.id,
                "status": "resolved",
                "previous_status": row.status,
                "refund_usd": refund,
                "refund_total_usd": total,
                "daily_refunds_usd": round(spent + refund, 2),
                "version": row.version + 1,
            }

        return atomic(self.engine, domain="refunds", method="resolve_ticket", key=key, apply=apply)

    def escalate_ticket(self, ticket_id: str, reason: str, *, key: str | None = None) -> dict[str, Any]:
        if not reason or not reason.strip():
            raise ValueError("reason must say why a person should look at the ticket")

        def apply(conn: Connection) -> dict[str, Any]:
            row = self._ticket(conn, ticket_id, lock=True)
            if row.status != "open":
                raise ValueError(f"ticket {row.id} is {row.status}; only open tickets can be escalated")
            conn.execute(update(tickets).where(tickets.c.id == row.id).values(
                status="escalated", escalation_reason=reason.strip(), version=tickets.c.version + 1, updated=utcnow()))
            return {"ticket_id": row.id, "status": "escalated", "previous_status": row.status,
                    "reason": reason.strip(), "version": row.version + 1}

        return atomic(self.engine, domain="refunds", method="escalate_ticket", key=key, apply=apply)

    def notify_operations(self, message: str, severity: str, *, key: str | None = None) -> dict[str, Any]:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        if not message or not message.strip():
            raise ValueError("message must not be empty")

        def apply(conn: Connection) -> dict[str, Any]:
            new_id = conn.execute(insert(notifications).values(
                message=message.strip(), severity=severity, key=key, created=utcnow())).inserted_primary_key[0]  # type: ignore[index]
            queued = conn.execute(select(func.count()).select_from(notifications)).scalar_one()
            return {"notification_id": new_id, "severity": severity, "queued": True, "outbox_size": queued}

        return atomic(self.engine, domain="outbox", method="notify_operations", key=key, apply=apply)

    def list_notifications(self, limit: int = MAX_LISTED) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(notifications).order_by(notifications.c.id.desc()).limit(limit)).all()
        return [{"id": r.id, "severity": r.severity, "message": r.message, "created": r.created.isoformat()
                 if hasattr(r.created, "isoformat") else str(r.created)} for r in rows]
