"""One bounded memo for lookups of inputs as written (drug names, routes, lab codes, units).

Every order asks the same few questions with the same few spellings, so the answers are kept
per knowledge object (a reloaded knowledge starts empty). Inputs come from producers, so a
memo is bounded: it is cleared when it holds `limit` entries.
"""
from __future__ import annotations

from typing import Any, Callable


def memoised(memo: dict, key: Any, compute: Callable[..., Any], *args: Any,
             limit: int = 10_000) -> Any:
    """memo[key], computed once as compute(*args) (no closure to build on the hot path)."""
    try:
        return memo[key]
    except KeyError:
        pass
    if len(memo) >= limit:
        memo.clear()
    found = memo[key] = compute(*args)
    return found
