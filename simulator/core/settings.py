"""How a device setting is declared: one pydantic field with its unit, range, default and the
source document section the default comes from (issue 10: one settings schema per device).

::

    class Timing(StrictModel):
        response_timeout_ms: float = setting(1000, unit="ms", gt=0, le=60_000,
                                             source="seed 004 §6.25.2")

The unit is in the name (``_ms``, ``_s``) and in the metadata; ranges are pydantic
constraints; :func:`describe` reads all of it back for the generated docs table
(docs/settings.md, :mod:`simulator.commands.settings_doc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import Field
from pydantic_core import PydanticUndefined


def setting(
    default: Any = PydanticUndefined,
    *,
    source: str,
    unit: str = "",
    doc: str = "",
    prop: str = "",
    **constraints: Any,
) -> Any:
    """A pydantic ``Field`` carrying ``source`` (e.g. ``"seed 004 §6.25.2"`` or
    ``"bench"`` for the bench's own choice), ``unit`` (``ms``, ``s``, ``bit/s``) and a one-line
    ``doc``; ``prop``: the device's own name for it (a Stream Plugin property);
    ``constraints`` are pydantic's (``ge``, ``le``, ``gt``, ``default_factory``...)."""
    extra = {"source": source, "unit": unit, "doc": doc, "property": prop}
    return Field(default, json_schema_extra=extra, **constraints)


@dataclass(frozen=True)
class SettingRow:
    """One setting as the docs table shows it."""

    name: str
    default: str
    unit: str
    range: str
    source: str
    doc: str


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _range(info: pydantic.fields.FieldInfo) -> str:
    parts = [
        f"{sym} {getattr(m, key)}"
        for m in info.metadata
        for key, sym in _BOUNDS
        if getattr(m, key, None) is not None
    ]
    args = getattr(info.annotation, "__args__", None)
    if not parts and args and all(isinstance(a, str | int) for a in args):
        parts = [" / ".join(str(a) for a in args)]  # a Literal: its values
    return ", ".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "(none)"
    if value == ():
        return "(empty)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def describe(
    model: type[pydantic.BaseModel],
    values: pydantic.BaseModel | None = None,
    source: str | None = None,
) -> list[SettingRow]:
    """Rows for every field declared with :func:`setting`; ``values`` (and their ``source``)
    replace the defaults, e.g. a second set of defaults for the same knobs."""
    rows = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if not isinstance(extra, dict) or "source" not in extra:
            continue
        default = (
            getattr(values, name)
            if values is not None
            else info.get_default(call_default_factory=True)
        )
        rows.append(
            SettingRow(
                name=str(extra.get("property") or name),
                default=_text(default),
                unit=str(extra.get("unit", "")),
                range=_range(info),
                source=source or str(extra["source"]),
                doc=str(extra.get("doc", "")),
            )
        )
    return rows


def markdown_table(rows: list[SettingRow]) -> str:
    """``| setting | default | unit | range | source | meaning |`` rows."""
    out = ["| setting | default | unit | range | source | meaning |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = (f"`{r.name}`", f"`{r.default}`", r.unit, r.range, r.source, r.doc)
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"
