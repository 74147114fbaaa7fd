"""The suppression list: addresses that get no automatic mail, as every serious sender keeps
one (a complaint is the recipient's last word on our automatic mail)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.models import Suppression
from mailflow.db.upsert import insert_if_new
from mailflow.mail.addresses import normalise


async def suppress(session: AsyncSession, address: str, reason: str, now: datetime) -> bool:
    """Add the address; False when it was listed already (the first reason stands)."""
    return await insert_if_new(
        session,
        Suppression,
        ["address"],
        address=normalise(address)[:320],
        reason=reason,
        created_at=now,
    )


async def held(session: AsyncSession, address: str) -> str | None:
    """Why automatic mail to this address is held back, or None."""
    row = await session.scalar(
        select(Suppression).where(Suppression.address == normalise(address)).limit(1)
    )
    if row is None:
        return None
    return f"on the suppression list since {row.created_at:%Y-%m-%d}: {row.reason}"


async def lift(session: AsyncSession, address: str) -> bool:
    result = await session.execute(
        delete(Suppression).where(Suppression.address == normalise(address))
    )
    return bool(getattr(result, "rowcount", 0))
