"""JSON-ready values: the one rule every written .json file of the package follows. No torch."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sanitize"]


def sanitize(obj):
    """NaN/inf -> None, numpy -> Python, recursively."""
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [sanitize(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return sanitize(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
