"""QR codes as inline SVG (rendered server-side, no JavaScript)."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(text: str, scale: int = 4) -> Markup:
    svg = segno.make(text, micro=False).svg_inline(scale=scale, dark="#111", light="#fff")
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code" ', 1))
