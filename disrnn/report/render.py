"""Rendering primitives of the HTML reports: the Jinja2 environment, number formatting,
figures as embedded PNG, and the atomic write of a page."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import numpy as np

from disrnn._atomic import atomic_file
from disrnn.report.glossary import describe

# figure failures are logged under the report's logger, as before this module was split off
log = logging.getLogger("disrnn.report.html")


def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("disrnn.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["meaning"] = describe  # a metric key's hover title
    return env


def fmt(value, digits: int = 4) -> str:
    """A number for a table cell: 4 significant digits, '–' for missing."""
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(v):
        return "–"
    return f"{v:.{digits}g}"


def figure_to_png(fig, palette: bool = True) -> bytes:
    """PNG bytes of a matplotlib Figure at its own dpi.

    With ``palette`` the image is reduced to an adaptive 256-colour palette (Pillow),
    which keeps plots visually unchanged and makes them about 3x smaller, so a report
    of 7 methods stays a few MB.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    fig.clear()
    if not palette:
        return buf.getvalue()
    from PIL import Image

    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(
        out, format="PNG", optimize=True
    )
    return out.getvalue()


def figure_to_data_uri(fig) -> str:
    """Encode a matplotlib Figure as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(figure_to_png(fig)).decode("ascii")


def _fig(title: str, make, *args, caption: str = "", **kwargs) -> dict:
    """Run a plotting function; a failure becomes a note in the report, not a crash."""
    try:
        uri = figure_to_data_uri(make(*args, **kwargs))
        return {"title": title, "src": uri, "caption": caption, "error": "", "note": ""}
    except Exception as err:  # a report must still render when one figure cannot
        log.warning("figure %r failed: %s", title, err, exc_info=True)
        return {
            "title": title,
            "src": "",
            "caption": caption,
            "error": f"{type(err).__name__}: {err}",
            "note": "",
        }


def _note(title: str, note: str) -> dict:
    """A figure slot that holds only a sentence (the figure does not apply)."""
    return {"title": title, "src": "", "caption": "", "error": "", "note": note}


def _plain(value) -> str:
    if isinstance(value, np.ndarray):
        return ", ".join(str(v) for v in value.tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _write(out, html: str) -> Path:
    out = Path(out)
    with atomic_file(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
