"""superset_assets/: load, render (Jinja, ``${{ ... }}`` placeholders), validate, bundle, and turn an export
back into templates.

Placeholders use ``${{ }}`` / ``${% %}`` so they never clash with Superset's own Jinja (``{{ }}``) in
dataset SQL. The context is the profile's ClickHouse connection (no password: Superset's import API
takes passwords separately) and ``schema`` (clickhouse.database).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rtfin_cli.errors import DataError

KINDS = ("databases", "datasets", "charts", "dashboards")
MASKED_PASSWORD = "XXXXXXXXXX"  # what Superset writes in place of a password in exports
BUNDLE_ROOT = "rtfin_dashboard"
# The templated connection, written back into databases/*.yaml by `rtfin dashboard export`.
URI_TEMPLATE = (
    "clickhousedb://${{ clickhouse.user }}${% if clickhouse.has_password %}:"
    + MASKED_PASSWORD
    + "${% endif %}"
    "@${{ clickhouse.host }}:${{ clickhouse.port }}/${{ clickhouse.database }}"
    "${% if clickhouse.secure %}?secure=true${% endif %}"
)
SCHEMA_TEMPLATE = "${{ schema }}"


@dataclass
class Bundle:
    """Rendered asset files (path relative to the assets dir → YAML text) and their parsed documents."""

    files: dict[str, str]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        """The documents of one kind (databases, datasets, charts, dashboards), by path."""
        return {p: d for p, d in self.docs.items() if p.startswith(kind + "/")}

    @property
    def database_files(self) -> list[str]:
        """Paths of the database files: Superset's import API takes their passwords by these keys."""
        return sorted(self.of_kind("databases"))

    def summary(self) -> list[tuple[str, str, str]]:
        """(kind, name, path) of every asset, for --dry-run."""
        names = {"databases": "database_name", "datasets": "table_name", "charts": "slice_name",
                 "dashboards": "dashboard_title"}  # fmt: skip
        rows = []
        for path, doc in sorted(self.docs.items()):
            kind = path.split("/", 1)[0]
            if kind in names:
                rows.append((kind[:-1], str(doc.get(names[kind], "?")), path))
        return rows

    def zip_bytes(self) -> bytes:
        """The bundle as Superset's import API expects it: one root folder, YAML files under it."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, text in sorted(self.files.items()):
                zf.writestr(f"{BUNDLE_ROOT}/{path}", text)
        return buf.getvalue()


def _jinja_env() -> Any:
    """Jinja with ``${{ }}`` / ``${% %}`` delimiters, failing on any undefined placeholder."""
    import jinja2

    return jinja2.Environment(
        variable_start_string="${{",
        variable_end_string="}}",
        block_start_string="${%",
        block_end_string="%}",
        comment_start_string="${#",
        comment_end_string="#}",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def context_from_settings(settings: Any, has_password: bool) -> dict[str, Any]:
    """Template context from RtfinSettings: the ClickHouse connection (never its password) and schema."""
    ch = settings.clickhouse
    return {
        "clickhouse": {
            "host": ch.host,
            "port": ch.port,
            "user": ch.user,
            "database": ch.database,
            "secure": ch.secure,
            "has_password": has_password,
        },  # fmt: skip
        "schema": ch.database,
        "refresh_s": settings.dashboard.refresh_s,
    }


def asset_files(assets_dir: Path) -> dict[str, str]:
    """The raw (templated) YAML files of the assets dir, keyed by relative POSIX path."""
    root = Path(assets_dir)
    if not (root / "metadata.yaml").is_file():
        raise DataError(
            f"{root}: not a Superset assets folder (no metadata.yaml)",
            "Run from the repository root or set dashboard.assets_dir.",
        )
    out = {}
    for path in sorted(root.rglob("*.y*ml")):
        rel = path.relative_to(root).as_posix()
        if rel == "metadata.yaml" or rel.split("/", 1)[0] in KINDS:
            out[rel] = path.read_text(encoding="utf-8")
    return out


def _parse(label: str, text: str) -> dict[str, Any]:
    """One YAML mapping; DataError naming the file, line and column of a syntax error."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DataError(
            f"{label}{where}: invalid YAML ({problem})", "Fix the syntax at the position shown."
        ) from None
    if not isinstance(doc, dict):
        raise DataError(
            f"{label}: expected a YAML mapping", "Each asset file is one Superset export document."
        )
    return doc


def render(assets_dir: Path, context: dict[str, Any]) -> Bundle:
    """Render every template with ``context`` and parse it. Errors name the file (and line)."""
    import jinja2

    env = _jinja_env()
    root = Path(assets_dir)
    bundle = Bundle(files={})
    for rel, text in asset_files(root).items():
        label = str(root / rel)
        _parse(label, text)  # syntax errors point at the template's own lines
        try:
            rendered = env.from_string(text).render(**context)
        except jinja2.TemplateError as exc:
            lineno = getattr(exc, "lineno", None)
            line = f":{lineno}" if lineno else ""
            raise DataError(
                f"{label}{line}: template error ({exc})", "Placeholders look like ${{ schema }}."
            ) from None
        doc = _parse(label, rendered)
        if rel.startswith("charts/") and isinstance(doc.get("query_context"), dict):
            # committed as YAML for readable diffs; Superset stores it as a JSON string
            doc["query_context"] = json.dumps(doc["query_context"], separators=(",", ":"))
            rendered = dump_yaml(doc)
        bundle.files[rel] = rendered
        bundle.docs[rel] = doc
    validate(bundle, root)
    return bundle


def validate(bundle: Bundle, root: Path) -> None:
    """Cross-references between assets (uuids), so a broken bundle fails before anything is imported."""
    meta = bundle.docs.get("metadata.yaml", {})
    if meta.get("type") != "assets":
        raise DataError(
            f"{root / 'metadata.yaml'}: type must be 'assets'", "Use Superset's asset export layout."
        )
    uuids: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for kind in KINDS:
        for path, doc in bundle.of_kind(kind).items():
            _check_fields(root / path, doc, kind)
            uuids[kind].add(str(doc["uuid"]))
    refs = (("datasets", "database_uuid", "databases"), ("charts", "dataset_uuid", "datasets"))
    for kind, key, target in refs:
        for path, doc in bundle.of_kind(kind).items():
            if str(doc.get(key)) not in uuids[target]:
                raise DataError(f"{root / path}: {key} {doc.get(key)} matches no file in {target}/")
    for path, doc in bundle.of_kind("dashboards").items():
        for node in (doc.get("position") or {}).values():
            if isinstance(node, dict) and node.get("type") == "CHART":
                ref = str(node.get("meta", {}).get("uuid"))
                if ref not in uuids["charts"]:
                    raise DataError(f"{root / path}: chart {ref} in position matches no file in charts/")
    if not bundle.of_kind("dashboards"):
        raise DataError(f"{root}: no dashboard in dashboards/")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (dataset SQL) as literal blocks; no anchors/aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """A multi-line string as a literal block (SQL diffs line by line), unless a line ends in blanks."""
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


# The fields Superset's import schemas require, and their types: checked here so a mistake is reported
# with its file name before anything is sent (Superset's import API reports most schema errors as a bare 500).
REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "databases": {"database_name": str, "sqlalchemy_uri": str, "uuid": str, "version": str},
    "datasets": {"table_name": str, "uuid": str, "database_uuid": str, "columns": list, "version": str},
    "charts": {
        "slice_name": str,
        "viz_type": str,
        "params": dict,
        "uuid": str,
        "dataset_uuid": str,
        "version": str,
    },
    "dashboards": {"dashboard_title": str, "uuid": str, "position": dict, "metadata": dict, "version": str},
}
OPTIONAL_INT = ("cache_timeout", "offset")
FIELD_HINT = "Compare with a file `rtfin dashboard export` wrote."


def _check_fields(path: Path, doc: dict[str, Any], kind: str) -> None:
    """The required fields of one asset and their types, and the optional integers, or DataError."""
    for key, typ in REQUIRED[kind].items():
        if key not in doc:
            raise DataError(f"{path}: missing '{key}'", FIELD_HINT)
        if not isinstance(doc[key], typ):
            raise DataError(
                f"{path}: '{key}' must be a {getattr(typ, '__name__', typ)}, got {doc[key]!r:.60}", FIELD_HINT
            )
    for key in OPTIONAL_INT:
        if doc.get(key) is not None and (not isinstance(doc[key], int) or isinstance(doc[key], bool)):
            raise DataError(f"{path}: '{key}' must be an integer or null, got {doc[key]!r:.60}", FIELD_HINT)


def dump_yaml(doc: dict[str, Any]) -> str:
    """Stable YAML: insertion order, block style, wide lines, SQL as literal blocks (small diffs)."""
    return yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096, default_flow_style=False
    )


def _slug(name: str) -> str:
    """A file name for an asset: every run of characters other than letters, digits, ``_.-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "asset"
