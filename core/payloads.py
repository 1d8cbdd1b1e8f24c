"""JSON from outside, bounded (design §16): never a RecursionError, never unbounded.

Every JSON document the service accepts (API bodies, and messages from other
services) is read through `load_json`, so a body nested a thousand levels deep
is refused as invalid input instead of exhausting the stack, and a string no
database or response can hold (a lone UTF-16 surrogate, which JSON's \\u escapes
can express but UTF-8 cannot) is refused before it reaches a field.
"""

import json
from collections.abc import Callable

# Deeper than any document the service accepts (its bodies nest three levels).
MAX_JSON_DEPTH = 32


class JsonRefused(ValueError):
    """Not acceptable JSON: malformed, nested too deeply, or a forbidden constant."""


def _no_constants(name: str):
    raise JsonRefused(f"{name} is not valid JSON")


def load_json(
    text: str | bytes,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    parse_constant: Callable | None = _no_constants,
):
    """Parse `text`; JsonRefused when it is not JSON or nests deeper than `max_depth`."""
    try:
        value = json.loads(text, parse_constant=parse_constant)
    except RecursionError:
        raise JsonRefused(f"JSON nested more than {max_depth} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRefused(str(exc)) from None
    check_structure(value, max_depth)
    return value


def check_structure(value, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise JsonRefused if lists/objects nest deeper than `max_depth`, or a string
    (key or value) is not valid Unicode text. Walked iteratively."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if isinstance(item, dict):
            for key in item:
                _check_text(key)
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise JsonRefused(f"JSON nested more than {max_depth} levels deep")
        stack.extend((child, depth + 1) for child in children)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused("a string holds a lone UTF-16 surrogate (not Unicode text)") from None
