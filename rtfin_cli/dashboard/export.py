"""Turn a Superset dashboard export (zip) back into the templated files of superset_assets/.

Volatile parts are made stable so a UI edit shows up as a small diff: file names lose their ids,
chart ids in the dashboard become the stable ids already committed (new charts get the next ones),
datasource ids become 0, the connection and schema become placeholders, query_context becomes YAML.
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

from rtfin_cli.dashboard.assets import KINDS, SCHEMA_TEMPLATE, URI_TEMPLATE, _slug, dump_yaml
from rtfin_cli.errors import DataError

VOLATILE_FORM_KEYS = ("slice_id", "dashboards", "dashboardId", "url_params")


@dataclass
class ExportResult:
    """What `write` did to the assets dir: files written (new or changed), removed, and left as they were."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0


def read_zip(data: bytes) -> dict[str, dict[str, Any]]:
    """YAML documents of an export zip, keyed by path without the root folder."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError("the dashboard export is not a zip file") from None
    docs = {}
    for name in zf.namelist():
        if name.endswith((".yaml", ".yml")):
            rel = name.split("/", 1)[1] if "/" in name else name
            docs[rel] = yaml.safe_load(zf.read(name).decode("utf-8"))
    return docs


def _is_chart(node: Any) -> bool:
    """A chart node of a dashboard's position tree (it carries the chart's id and uuid)."""
    return isinstance(node, dict) and node.get("type") == "CHART" and "chartId" in node.get("meta", {})


def _committed_ids(assets_dir: Path) -> dict[str, int]:
    """Chart uuid -> chart id in the dashboards already committed to the assets dir."""
    committed: dict[str, int] = {}
    for path in (assets_dir / "dashboards").glob("*.yaml"):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        for node in (doc.get("position") or {}).values():
            if _is_chart(node):
                committed[str(node["meta"]["uuid"])] = int(node["meta"]["chartId"])
    return committed


def _stable_ids(assets_dir: Path, position: dict[str, Any]) -> dict[int, int]:
    """Map the server's chart ids to the ids committed in the assets (by chart uuid); new charts count on."""
    committed = _committed_ids(assets_dir)
    mapping: dict[int, int] = {}
    next_id = max(committed.values(), default=0) + 1
    for key in sorted(position, key=str):
        node = position[key]
        if _is_chart(node):
            uuid, server_id = str(node["meta"]["uuid"]), int(node["meta"]["chartId"])
            if uuid not in committed:
                committed[uuid] = next_id
                next_id += 1
            mapping[server_id] = committed[uuid]
    return mapping


def _remap_ids(value: Any, ids: dict[int, int]) -> Any:
    """The chart ids in a (nested) list replaced by their stable ids; anything else unchanged."""
    if isinstance(value, list):
        return [ids.get(v, v) if isinstance(v, int) else _remap_ids(v, ids) for v in value]
    return value


def _remap_scope(holder: dict[str, Any], ids: dict[int, int]) -> None:
    """A filter's or chart configuration's ``chartsInScope`` (sorted) and ``scope.excluded``, in place."""
    if "chartsInScope" in holder:
        holder["chartsInScope"] = sorted(_remap_ids(holder["chartsInScope"], ids))
    if isinstance(holder.get("scope"), dict) and "excluded" in holder["scope"]:
        holder["scope"]["excluded"] = _remap_ids(holder["scope"]["excluded"], ids)


def _remap_chart_configuration(config: dict[str, Any], ids: dict[int, int]) -> dict[str, Any]:
    """Per-chart cross-filter settings keyed and tagged by stable id, in id order."""
    fixed = {}
    for key, conf in config.items():
        new = ids.get(int(key), int(key))
        if isinstance(conf, dict):
            conf["id"] = new
            _remap_scope(conf.get("crossFilters") or {}, ids)
        fixed[str(new)] = conf
    return dict(sorted(fixed.items(), key=lambda kv: int(kv[0])))


def normalize_dashboard(doc: dict[str, Any], ids: dict[int, int], refresh_s: int) -> dict[str, Any]:
    """A dashboard with stable chart ids everywhere they appear and the refresh period as a placeholder."""
    for node in (doc.get("position") or {}).values():
        if _is_chart(node):
            node["meta"]["chartId"] = ids.get(int(node["meta"]["chartId"]), node["meta"]["chartId"])
    meta = doc.get("metadata") or {}
    if meta.get("refresh_frequency") == refresh_s:
        meta["refresh_frequency"] = "${{ refresh_s }}"
    if "timed_refresh_immune_slices" in meta:
        meta["timed_refresh_immune_slices"] = _remap_ids(meta["timed_refresh_immune_slices"], ids)
    if isinstance(meta.get("expanded_slices"), dict):
        meta["expanded_slices"] = {str(ids.get(int(k), k)): v for k, v in meta["expanded_slices"].items()}
    for flt in meta.get("native_filter_configuration") or []:
        _remap_scope(flt, ids)
    if isinstance(meta.get("chart_configuration"), dict):
        meta["chart_configuration"] = _remap_chart_configuration(meta["chart_configuration"], ids)
    _remap_scope(meta.get("global_chart_configuration") or {}, ids)
    return doc


def _clean_form(form: dict[str, Any]) -> dict[str, Any]:
    """Chart form data without the keys that change on every save, pointing at datasource 0."""
    form = {k: v for k, v in form.items() if k not in VOLATILE_FORM_KEYS}
    if "datasource" in form:
        form["datasource"] = "0__table"
    return form


def normalize_chart(doc: dict[str, Any]) -> dict[str, Any]:
    """A chart with stable form data and its query_context as a mapping (written as YAML, not a JSON string)."""
    if isinstance(doc.get("params"), dict):
        doc["params"] = _clean_form(doc["params"])
    qc = doc.get("query_context")
    if isinstance(qc, str) and qc.strip():
        try:
            qc = json.loads(qc)
        except ValueError:
            qc = None
    if isinstance(qc, dict):
        qc["datasource"] = {"id": 0, "type": "table"}
        if isinstance(qc.get("form_data"), dict):
            qc["form_data"] = _clean_form(qc["form_data"])
        for query in qc.get("queries") or []:
            if isinstance(query, dict) and "datasource" in query:
                query["datasource"] = qc["datasource"]
            if isinstance(query, dict):
                query.pop("url_params", None)
    doc["query_context"] = qc
    return doc


def normalize_dataset(doc: dict[str, Any], schema: str) -> dict[str, Any]:
    """A dataset with sorted columns and metrics, and the profile's schema turned back into a placeholder."""
    for key, name in (("columns", "column_name"), ("metrics", "metric_name")):
        if isinstance(doc.get(key), list):
            doc[key] = sorted(doc[key], key=lambda item: str(item.get(name, "")))
    if doc.get("schema") == schema:
        doc["schema"] = SCHEMA_TEMPLATE
    if isinstance(doc.get("sql"), str):
        doc["sql"] = re.sub(rf"(?<![\w.`\"]){re.escape(schema)}\.", SCHEMA_TEMPLATE + ".", doc["sql"])
    return doc


def normalize(
    docs: dict[str, dict[str, Any]], assets_dir: Path, schema: str, refresh_s: int
) -> dict[str, str]:
    """Export documents → {relative path: templated YAML text} in the assets layout."""
    out: dict[str, str] = {}
    db_names = {
        str(d["uuid"]): str(d["database_name"]) for p, d in docs.items() if p.startswith("databases/")
    }
    for path, doc in sorted(docs.items()):
        kind = path.split("/", 1)[0]
        if kind == "databases":
            doc["sqlalchemy_uri"] = URI_TEMPLATE
            doc.pop("password", None)
            rel = f"databases/{_slug(doc['database_name'])}.yaml"
        elif kind == "datasets":
            doc = normalize_dataset(doc, schema)
            db_name = db_names.get(str(doc.get("database_uuid")), "database")
            rel = f"datasets/{_slug(db_name)}/{_slug(doc['table_name'])}.yaml"
        elif kind == "charts":
            doc = normalize_chart(doc)
            rel = f"charts/{_slug(doc['slice_name'])}.yaml"
        elif kind == "dashboards":
            ids = _stable_ids(assets_dir, doc.get("position") or {})
            doc = normalize_dashboard(doc, ids, refresh_s)
            rel = f"dashboards/{_slug(doc['dashboard_title'])}.yaml"
        else:
            continue
        out[rel] = dump_yaml(doc)
    return out


def write(assets_dir: Path, files: dict[str, str]) -> ExportResult:
    """Write the files; remove asset files the export no longer has. metadata.yaml is kept."""
    result = ExportResult()
    assets_dir.mkdir(parents=True, exist_ok=True)
    meta = assets_dir / "metadata.yaml"
    if not meta.exists():
        meta.write_text(
            dump_yaml({"version": "1.0.0", "type": "assets", "timestamp": "2026-01-01T00:00:00+00:00"})
        )
        result.written.append("metadata.yaml")
    for rel, text in sorted(files.items()):
        path = assets_dir / rel
        if path.exists() and path.read_text(encoding="utf-8") == text:
            result.unchanged += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.written.append(rel)
    for kind in KINDS:
        for path in sorted((assets_dir / kind).rglob("*.y*ml")):
            rel = path.relative_to(assets_dir).as_posix()
            if rel not in files:
                path.unlink()
                result.removed.append(rel)
    return result
