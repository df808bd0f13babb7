"""``summary.json``: the keys every run writes, and one JSON Schema for every kind.

Every run's summary starts with :class:`CommonSummary` (written by the skeleton, the same for
every kind) followed by the kind's own figures (its ``DeviceKind.summary`` model), flat in one
object. :func:`schema` composes one JSON Schema (draft 2020-12) from the common model and each
registered kind's figures, selected by ``kind``; it is shipped as ``docs/summary.schema.json``
and a test keeps the file equal to the generated one.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pydantic

from simulator.devices import registry

#: Version of the summary.json layout; raised when a common key changes meaning or goes away.
SUMMARY_SCHEMA_VERSION = 1


class CommonSummary(pydantic.BaseModel):
    """The keys every ``summary.json`` starts with, whatever the kind."""

    model_config = pydantic.ConfigDict(extra="forbid")

    schema_version: int = pydantic.Field(description="layout version of summary.json")
    kind: str = pydantic.Field(description="the scenario's kind (device registry name)")
    scenario: str = pydantic.Field(description="the scenario's name (its `name`, else file stem)")
    scenario_path: str = pydantic.Field(description="the scenario file as given to the run")
    scenario_sha256: str = pydantic.Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the scenario file's bytes"
    )
    seed: int = pydantic.Field(description="root of every random stream of the run")
    sim_seconds: float = pydantic.Field(ge=0, description="simulated duration (s)")
    wall_seconds: float = pydantic.Field(ge=0, description="wall-clock duration of the run (s)")
    trace_events: int = pydantic.Field(ge=0, description="events recorded in the trace")
    meterbench_version: str = pydantic.Field(description="version of meterbench that ran it")


COMMON_KEYS = tuple(CommonSummary.model_fields)


def meterbench_version() -> str:
    """The installed meterbench version (``"unknown"`` when run from a bare source tree)."""
    try:
        return version("meterbench")
    except PackageNotFoundError:
        return "unknown"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check(summary: dict[str, Any]) -> None:
    """Validate a summary dict: common keys, then the kind's figures.

    Raises ``pydantic.ValidationError`` naming the key, or ``KeyError`` for an unknown kind.
    """
    common = {k: summary[k] for k in COMMON_KEYS if k in summary}
    CommonSummary.model_validate(common)
    figures = {k: v for k, v in summary.items() if k not in COMMON_KEYS}
    registry.get(summary["kind"]).summary.model_validate(figures)


def schema() -> dict[str, Any]:
    """One JSON Schema for summary.json of every registered kind (draft 2020-12)."""
    common = CommonSummary.model_json_schema()
    branches = []
    defs: dict[str, Any] = {}
    for device in registry.kinds():
        fig = device.summary.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(fig.pop("$defs", {}))
        props = {**common["properties"], **fig.get("properties", {})}
        props["kind"] = {**common["properties"]["kind"], "const": device.name}
        branches.append(
            {
                "title": f"{device.name}: {device.title}",
                "type": "object",
                "properties": props,
                "required": [*common["required"], *fig.get("required", [])],
                "additionalProperties": False,
            }
        )
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://meterbench.example/summary.schema.json",
        "title": "meterbench summary.json",
        "description": (
            f"Layout version {SUMMARY_SCHEMA_VERSION}: the common keys of every run, then the "
            "kind's own figures (one branch per registered kind, selected by `kind`)."
        ),
        "oneOf": branches,
    }
    if defs:
        out["$defs"] = defs
    return out


def schema_text() -> str:
    """:func:`schema` as the text shipped in docs/summary.schema.json."""
    import json

    return json.dumps(schema(), indent=2) + "\n"
