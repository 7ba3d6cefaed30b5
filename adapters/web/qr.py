"""The QR code of a session's page, for a slide or a poster: the in-person channel."""

from __future__ import annotations

import io
from functools import lru_cache

import segno


@lru_cache(maxsize=256)
def qr_svg(url: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="svg", scale=8, border=4, xmldecl=True)
    return buffer.getvalue()


@lru_cache(maxsize=256)
def qr_png(url: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=12, border=4)
    return buffer.getvalue()
