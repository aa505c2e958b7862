"""``rfdiff check SPEC`` (validate, print the resolved spec) and ``rfdiff schema`` (the schema reference)."""

from __future__ import annotations

import json

from ._common import load

__all__ = ["check", "schema"]


def check(args) -> int:
    spec = load(args)
    print(json.dumps(spec.to_dict(), indent=2, ensure_ascii=False))
    return 0


def schema(args) -> int:
    from ..spec import describe_schema

    print(describe_schema())
    return 0
