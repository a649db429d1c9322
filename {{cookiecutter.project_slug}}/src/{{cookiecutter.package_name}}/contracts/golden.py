"""Whether a prediction reproduces a golden sample: one rule for the server's self-check and for ``probe``.

Standard library only (``probe`` runs without the serving runtime). Labels must be equal; probabilities and values
must be within ``GOLDEN_ATOL + GOLDEN_RTOL * |expected|`` of the expected ones (numpy's ``allclose`` rule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

GOLDEN_RTOL = 1e-4
GOLDEN_ATOL = 1e-6


def _close(got: Any, expected: Any) -> bool:
    try:
        a, b = float(got), float(expected)
    except (TypeError, ValueError):
        return False
    return math.isfinite(a) and abs(a - b) <= GOLDEN_ATOL + GOLDEN_RTOL * abs(b)


def reproduces(got: Any, expected: Mapping[str, Any], classes: list[str]) -> bool:
    """Whether ``got`` (one prediction as the server answers it) matches a golden sample's ``expected`` output."""
    if not isinstance(got, dict):
        return False
    if "label" in expected:
        probabilities = got.get("probabilities")
        want = expected["probabilities"]
        return (
            got.get("label") == str(expected["label"])
            and isinstance(probabilities, dict)
            and len(want) == len(classes) == len(probabilities)
            and all(_close(probabilities.get(c), p) for c, p in zip(classes, want, strict=True))
        )
    return _close(got.get("value"), expected["value"])
