"""Schemathesis hooks (loaded by schemathesis.toml): the two rules of the API's spec that
a JSON Schema cannot carry.

The spec states them in words (the parameters' descriptions, each route's 422), but a
schema cannot relate two parameters, nor list the values a server has handed out. So
schemathesis' *positive* cases break them, the API rightly answers 422, and the
``positive_data_acceptance`` check reports "schema-valid request rejected". For positive
cases only, these hooks make the request keep the two rules:

- ``date_to`` is not before ``date_from``: the two dates are swapped;
- ``cursor`` is opaque, only a ``next_cursor`` of this API: a generated one never is, so
  it is dropped (the page is then the first one).

Negative cases are left as generated, and every other rule still counts: a valid date,
limit, code or body refused with 422 is still a failure.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    query = case.query
    if meta is None or not meta.generation.mode.is_positive or not isinstance(query, dict):
        return case
    start, end = query.get("date_from"), query.get("date_to")
    if isinstance(start, str) and isinstance(end, str) and end < start:
        # Positive values are YYYY-MM-DD, so text order is date order.
        query["date_from"], query["date_to"] = end, start
    query.pop("cursor", None)
    return case
