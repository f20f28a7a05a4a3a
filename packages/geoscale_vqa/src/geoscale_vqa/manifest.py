"""Counting what a build produced, and merging the records of its parts into manifest.json + rejects.jsonl.

Each shard job returns a record with its counts (per source, split, tier, origin, GSD origin and a
log10-GSD histogram) and its rejects. The manifest is the sum of those records in shard order, so it
is the same whatever order workers or machines finished in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._version import __version__
from .gsd import is_plausible
from .records import SCHEMA
from .shards import TMP_MARK, fsync_dir, sha256_file

STATE_DIR = ".geoscale"
HIST_EDGES = [round(-2 + 0.25 * i, 2) for i in range(25)]  # log10(GSD / m) from 0.01 m to 10 km


class BuildError(RuntimeError):
    """The build cannot start or finish (non-empty OUT without --resume, changed plan, missing parts)."""


def write_json_atomic(path: Path, data, *, lines: bool = False) -> None:
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        if lines:
            for row in data:
                f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        else:
            json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)
            f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def empty_stats() -> dict:
    return {
        "by_source": {},
        "by_split": {},
        "by_tier": {},
        "by_origin": {},
        "by_gsd_origin": {},
        "gsd_hist": [0] * (len(HIST_EDGES) - 1),
        "gsd_below": 0,
        "gsd_above": 0,
        "gsd_none": 0,
        "implausible_gsd": 0,
    }


def _bump(table: dict, key: str, field_name: str | None = None, n: int = 1) -> None:
    if field_name is None:
        table[key] = table.get(key, 0) + n
    else:
        row = table.setdefault(key, {"samples": 0, "qa": 0})
        row[field_name] += n


def add_sample_stats(stats: dict, record: dict) -> None:
    n_qa = len(record["qa"])
    for table, key in (("by_source", record["source"]), ("by_split", record["split"])):
        _bump(stats[table], key, "samples")
        _bump(stats[table], key, "qa", n_qa)
    for qa in record["qa"]:
        _bump(stats["by_tier"], qa["tier"])
        _bump(stats["by_origin"], qa["origin"])
    _bump(stats["by_gsd_origin"], record["gsd_origin"])
    s = record["log10_gsd"]
    if s is None:
        stats["gsd_none"] += 1
        return
    if not is_plausible(record["gsd_m"]):
        stats["implausible_gsd"] += 1
    if s < HIST_EDGES[0]:
        stats["gsd_below"] += 1
    elif s >= HIST_EDGES[-1]:
        stats["gsd_above"] += 1
    else:
        stats["gsd_hist"][min(int((s - HIST_EDGES[0]) / 0.25), len(HIST_EDGES) - 2)] += 1


def _sum_into(total: dict, stats: dict) -> None:
    for table in ("by_source", "by_split"):
        for key, row in stats[table].items():
            _bump(total[table], key, "samples", row["samples"])
            _bump(total[table], key, "qa", row["qa"])
    for table in ("by_tier", "by_origin", "by_gsd_origin"):
        for key, n in stats[table].items():
            _bump(total[table], key, n=n)
    total["gsd_hist"] = [a + b for a, b in zip(total["gsd_hist"], stats["gsd_hist"])]
    for name in ("gsd_below", "gsd_above", "gsd_none", "implausible_gsd"):
        total[name] += stats[name]


def _sorted(table: dict) -> dict:
    return {k: table[k] for k in sorted(table)}


SHARD_FIELDS = {"index": int, "name": str, "split": str, "items": int, "samples": int, "qa": int, "bytes": int,
                "sha256": str, "stats": dict, "rejects": list}  # fmt: skip


def is_shard_record(record) -> bool:
    """Whether a completed-shard record (done log, part file) has every field with its type."""
    return isinstance(record, dict) and all(isinstance(record.get(k), t) for k, t in SHARD_FIELDS.items())


_PART_FIELDS = {"digest": str, "config": dict, "part": int, "parts": int, "jobs": int, "shards": list,
                "plan_rejects": list}  # fmt: skip


def _read_part(path: Path) -> dict:
    """One part record; a damaged one is a BuildError naming the file (its part must be run again)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError(f"expected an object, got {type(record).__name__}")
        bad = [k for k, t in _PART_FIELDS.items() if not isinstance(record.get(k), t)]
        if bad:
            raise ValueError(f"missing or malformed {', '.join(bad)}")
        if not all(is_shard_record(shard) for shard in record["shards"]):
            raise ValueError("a malformed shard record")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BuildError(f"build state file {path} is damaged ({err}); run that part again with --resume") from None
    return record


def _check_shard(out: Path, shard: dict, verify: bool) -> None:
    path = out / shard["name"]
    if not path.is_file() or path.stat().st_size != shard["bytes"]:
        raise BuildError(f"shard {path} is missing or has the wrong size; resume its part")
    if verify and sha256_file(path) != shard["sha256"]:
        raise BuildError(
            f"shard {path} does not match its recorded sha256 (changed or damaged since it was written); "
            "run its part again with --resume to rebuild it"
        )


def merge_parts(out: str | os.PathLike, *, verify: bool = True) -> dict:
    """Merge the part records in `out/.geoscale` into `out/manifest.json` and `out/rejects.jsonl`.

    Checks that every part of one plan is present, that together they cover each shard job once and
    (with `verify`) that every shard still has the sha256 recorded when it was written.
    Returns the manifest. For a single-machine build this runs automatically at the end.
    """
    out = Path(out)
    state = out / STATE_DIR
    records = [_read_part(p) for p in sorted(state.glob("part-*-of-*[0-9].json"))]
    if not records:
        raise BuildError(f"no completed parts in {state}; build the parts (--part i/N) first")
    parts = {r["parts"] for r in records}
    digests = {r["digest"] for r in records}
    if len(parts) != 1 or len(digests) != 1:
        raise BuildError(
            f"{state} mixes parts of different builds (parts {sorted(parts)}, "
            f"{len(digests)} plan digests); remove the stale part files"
        )
    n_parts = parts.pop()
    present = sorted(r["part"] for r in records)
    if present != list(range(n_parts)):
        missing = sorted(set(range(n_parts)) - set(present))
        raise BuildError(f"parts {missing} of {n_parts} have not finished; run them (with --resume) first")
    shards = sorted((s for r in records for s in r["shards"]), key=lambda s: s["index"])
    n_jobs = records[0]["jobs"]
    if [s["index"] for s in shards] != list(range(n_jobs)):
        raise BuildError(f"the parts cover {len(shards)} of {n_jobs} shard jobs; resume the unfinished parts")
    for s in shards:
        _check_shard(out, s, verify)

    totals = empty_stats()
    rejects = [rj for r in sorted(records, key=lambda r: r["part"]) for rj in r["plan_rejects"]]
    for s in shards:
        _sum_into(totals, s["stats"])
        rejects += s["rejects"]
    rejects_by_reason, rejects_by_source = {}, {}
    for rj in rejects:
        _bump(rejects_by_reason, rj["reason"])
        _bump(rejects_by_source, rj["source"])
    manifest = {
        "schema": SCHEMA,
        "builder": f"geoscale-vqa {__version__}",
        "plan_digest": records[0]["digest"],
        "config": records[0]["config"],
        "totals": {
            "samples": sum(s["samples"] for s in shards),
            "qa": sum(s["qa"] for s in shards),
            "rejects": len(rejects),
            "shards": len(shards),
            "bytes": sum(s["bytes"] for s in shards),
        },
        "counts": {
            name: _sorted(totals[name]) for name in ("by_source", "by_split", "by_tier", "by_origin", "by_gsd_origin")
        }
        | {
            "rejects_by_reason": _sorted(rejects_by_reason),
            "rejects_by_source": _sorted(rejects_by_source),
            "implausible_gsd": totals["implausible_gsd"],
        },
        "gsd_histogram": {
            "log10_gsd_edges": HIST_EDGES,
            "counts": totals["gsd_hist"],
            "below": totals["gsd_below"],
            "above": totals["gsd_above"],
            "no_gsd": totals["gsd_none"],
        },
        "shards": [
            {
                "path": s["name"],
                "split": s["split"],
                "samples": s["samples"],
                "qa": s["qa"],
                "bytes": s["bytes"],
                "sha256": s["sha256"],
            }
            for s in shards
        ],
    }
    write_json_atomic(out / "rejects.jsonl", rejects, lines=True)
    write_json_atomic(out / "manifest.json", manifest)
    return manifest
