"""The Databricks Jobs API request contract, checked with databricks-sdk's own dataclasses.

Derived from databricks-sdk (``databricks/sdk/service/jobs.py`` and ``compute.py``): a request body is
checked against the dataclass the SDK sends it as (``JobSettings`` for create and reset): a key the
dataclass does not have is unknown, a field without a default is required, an ``Enum`` field takes only
its values, and nested dataclasses, lists and maps are checked the same way. The Jobs API's own rules
that the dataclasses cannot express (a task runs on exactly one kind of compute; ``max_retries`` >= -1)
come from the field docs in the same file.

``problem(JobSettings, body)`` returns ``"<path>: <problem>"`` or None; the fake answers a problem with
400 ``INVALID_PARAMETER_VALUE`` (the Jobs API's error code for a bad request field).
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any

from databricks.sdk.service import jobs

_COMPUTE = ("existing_cluster_id", "new_cluster", "job_cluster_key", "environment_key")


def _check_value(tp: Any, value: Any, path: str) -> str | None:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        return None if value is None else _check_value(inner[0], value, path)
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            return f"{path}: must be a list"
        for i, item in enumerate(value):
            if p := _check_value(args[0], item, f"{path}[{i}]"):
                return p
        return None
    if origin in (dict, typing.Dict):  # noqa: UP006
        return None if isinstance(value, dict) else f"{path}: must be an object"
    if dataclasses.is_dataclass(tp):
        return problem(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        allowed = [e.value for e in tp]
        return None if value in allowed else f"{path}: must be one of {', '.join(map(str, allowed))}"
    if tp is bool:
        return None if isinstance(value, bool) else f"{path}: must be a boolean"
    if tp is int:
        return (
            None if isinstance(value, int) and not isinstance(value, bool) else f"{path}: must be an integer"
        )
    if tp is str:
        return None if isinstance(value, str) else f"{path}: must be a string"
    return None


def problem(cls: Any, body: Any, path: str = "body") -> str | None:
    """The first way ``body`` does not fit the SDK dataclass ``cls`` (unknown, missing, wrong kind)."""
    if not isinstance(body, dict):
        return f"{path}: must be an object"
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in body:
        if key not in fields:
            return f"{path}.{key}: unknown field"
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in body:
            if required:
                return f"{path}.{name}: required"
            continue
        if p := _check_value(hints[name], body[name], f"{path}.{name}"):
            return p
    if cls is jobs.Task:
        return _task_rules(body, path)
    return None


def _task_rules(task: dict[str, Any], path: str) -> str | None:
    compute = [k for k in _COMPUTE if k in task]
    if "spark_python_task" in task and len(compute) != 1:
        return f"{path}: a spark_python_task runs on exactly one of {', '.join(_COMPUTE)}"
    if task.get("max_retries", -1) < -1:
        return f"{path}.max_retries: must be -1 (retry forever) or more"
    return None


def job_settings_problem(body: Any) -> str | None:
    """A ``jobs/create`` body or a ``jobs/reset`` ``new_settings``: ``JobSettings``."""
    return problem(jobs.JobSettings, body)
