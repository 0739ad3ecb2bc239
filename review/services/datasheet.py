"""The datasheet of a snapshot (what is in it and where it came from) and its README card.

The README is a dataset card whose YAML header tells `datasets.load_dataset(<folder>)`
which file holds which split and the type of every column, so the folder loads as it is.
"""

from __future__ import annotations

import json
from typing import Any

from models import DatasetSnapshot
from review.domain.datasets import EVAL_FRACTION, SCHEMA, DatasheetStats
from review.services.dataset_writers import WrittenFile

CONTENT_HASH_METHOD = (
    "SHA-256 over every row in review_id order, each row as one line of compact JSON "
    "(keys in schema order, timestamps in ISO 8601, UTF-8, newline-terminated): exactly "
    "the lines of the JSONL format. The same rows give the same hash in every format."
)
SPLIT_METHOD = (
    f"eval when the first 8 bytes of SHA-256('split:<item_id>'), as a big-endian integer "
    f"modulo 10000, are below {int(EVAL_FRACTION * 10000)}; train otherwise. Stable across "
    "snapshots."
)
# datasets' dtype names; JSONL and CSV keep timestamps as ISO 8601 text.
_HF_DTYPES = {
    "int64": "int64",
    "float64": "float64",
    "bool": "bool",
    "string": "string",
    "json": "string",
}


def build_datasheet(
    snapshot: DatasetSnapshot,
    stats: DatasheetStats,
    content_sha256: str,
    files: list[WrittenFile],
) -> dict[str, Any]:
    """Everything a model card needs to cite and reproduce the snapshot."""
    queue = snapshot.queue
    base = snapshot.since_snapshot
    return {
        "title": f"{queue.slug} feedback v{snapshot.version}",
        "queue": {"slug": queue.slug, "name": queue.name, "labels": list(queue.labels)},
        "snapshot_id": snapshot.id,
        "version": snapshot.version,
        "format": snapshot.format,
        "created_at": snapshot.created_at.isoformat(),
        "incremental_since": (
            {"snapshot_id": base.id, "version": base.version} if base is not None else None
        ),
        "watermark": {
            "low_review_id_exclusive": snapshot.low_review_id,
            "high_review_id": snapshot.high_review_id,
            "high_routing_id": snapshot.high_routing_id,
        },
        "filters": snapshot.filters,
        "reviewer_identity": snapshot.reviewer_identity,
        "counts": stats.as_dict(),
        "split": {"eval_fraction": EVAL_FRACTION, "method": SPLIT_METHOD},
        "schema": [
            {"name": f.name, "type": f.type, "nullable": f.nullable, "meaning": f.meaning}
            for f in SCHEMA
        ],
        "content_sha256": content_sha256,
        "content_hash_method": CONTENT_HASH_METHOD,
        "files": [f.as_dict() for f in files],
    }


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid ones)."""
    return json.dumps(value)


def _features(fmt: str) -> list[str]:
    lines = ["  features:"]
    for field in SCHEMA:
        if field.type == "timestamp":
            dtype = "timestamp[us, tz=UTC]" if fmt == "parquet" else "string"
        else:
            dtype = _HF_DTYPES[field.type]
        lines += [f"  - name: {field.name}", f"    dtype: {_q(dtype)}"]
    return lines


def card_header(fmt: str, files: list[WrittenFile]) -> list[str]:
    """The YAML front matter: one config whose splits map to the data files."""
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for f in files:
        lines += [f"  - split: {f.split}", f"    path: {_q(f.path)}"]
    lines += ["dataset_info:", *_features(fmt)]
    # `datasets` ignores the whole splits list unless every entry has all three keys; with
    # them it checks each split's row count on load, so a truncated copy fails loudly.
    # num_bytes is the data file's size: the Arrow size it means is only known once loaded.
    lines += ["  splits:"]
    for f in files:
        lines += [
            f"  - name: {f.split}",
            f"    num_bytes: {f.bytes}",
            f"    num_examples: {f.rows}",
        ]
    lines.append("---")
    return lines


def _table(rows: dict[str, Any], head: tuple[str, str]) -> list[str]:
    if not rows:
        return ["(none)"]
    lines = [f"| {head[0]} | {head[1]} |", "| --- | ---: |"]
    return lines + [f"| {key} | {value} |" for key, value in rows.items()]


def render_card(datasheet: dict[str, Any]) -> str:
    """The README.md of a snapshot folder: YAML header, then the datasheet in prose."""
    counts = datasheet["counts"]
    files = [WrittenFile(**f) for f in datasheet["files"]]
    rate = counts["override_rate"]
    lines = card_header(datasheet["format"], files)
    lines += [
        "",
        f"# {datasheet['title']}",
        "",
        f"Human decisions from the Review Workbench queue `{datasheet['queue']['slug']}` "
        f"({datasheet['queue']['name']}): {counts['row_count']} rows, "
        f"{counts['override_count']} overrides"
        + (f" (override rate {rate:.1%})." if rate is not None else "."),
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("path/to/this/folder")',
        "```",
        "",
        "## Provenance",
        "",
        f"- Snapshot id {datasheet['snapshot_id']}, version v{datasheet['version']}, "
        f"created {datasheet['created_at']}.",
        f"- Content SHA-256: `{datasheet['content_sha256']}` ({datasheet['content_hash_method']})",
        f"- Reviews with id above {datasheet['watermark']['low_review_id_exclusive']} and up "
        f"to {datasheet['watermark']['high_review_id']}"
        + (
            f" (everything since v{datasheet['incremental_since']['version']})."
            if datasheet["incremental_since"]
            else "."
        ),
        f"- Filters: `{json.dumps(datasheet['filters'], sort_keys=True)}`.",
        f"- Decided between {counts['decided_from']} and {counts['decided_to']}.",
        f"- Reviewers: {counts['reviewer_count']}, identified {datasheet['reviewer_identity']}ly.",
        f"- Split: {datasheet['split']['method']}",
        "",
        "## Counts per final label",
        "",
        *_table(counts["counts_per_final_label"], ("final label", "rows")),
        "",
        "## Counts per AI label",
        "",
        *_table(counts["counts_per_ai_label"], ("AI label", "rows")),
        "",
        "## Policy versions",
        "",
        *_table(counts["policy_versions"], ("policy version", "rows")),
        "",
        "## Model versions",
        "",
        *_table(counts["model_versions"], ("model", "rows")),
        "",
        "## Schema",
        "",
        "| column | type | nullable | meaning |",
        "| --- | --- | --- | --- |",
        *[
            f"| {f['name']} | {f['type']} | {'yes' if f['nullable'] else 'no'} | {f['meaning']} |"
            for f in datasheet["schema"]
        ],
        "",
    ]
    return "\n".join(lines)
