"""The build plan: every item of every source, in a fixed order, cut into fixed-size shard jobs.

The plan depends only on the sources, the seed and the shard size, never on the number of workers or
machines, so shard `train-000007.tar` holds the same samples in every build. Items are shuffled per
split with the build seed (each shard mixes sources and GSDs, which training wants) and then cut into
jobs of `shard_size` items. `--part i/N` takes every N-th job, so parts are disjoint and complete.

Two digests guard `--resume`: the plan digest (settings, every item's path, labels and QA) must match
for a build to continue at all, and is what the parts of one build share; each job's `inputs` digest
(size, mtime and, for small files, the sha256 of every file it reads: `inputs.fingerprint`) is recorded
with its shard, so a shard whose input files changed since it was written is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass, field

from .inputs import fingerprint, first_existing
from .pipeline import SampleSettings
from .records import Item, Reject
from .sources import SourceOptions, SourceSpec, get_adapter

_SPLIT_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class ShardJob:
    index: int  # position in the plan's job list (all splits), which `--part` slices
    split: str
    name: str  # relative path under OUT: "<split>/<split>-000003.tar"
    items: list[Item]
    inputs: str = ""  # digest of the fingerprints of every file its items read


@dataclass
class Plan:
    sources: list[SourceSpec]
    shard_size: int
    settings: SampleSettings
    options: SourceOptions
    jobs: list[ShardJob] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    digest: str = ""

    def config(self) -> dict:
        """What the output depends on (recorded in the manifest, compared on --resume and merge)."""
        settings = asdict(self.settings)
        if self.settings.teacher is not None:
            settings["teacher"] = asdict(self.settings.teacher)
        return {
            "sources": [str(s) for s in self.sources],
            "shard_size": self.shard_size,
            "seed": self.settings.seed,
            "synthetic_size": self.options.synthetic_size,
            **{k: v for k, v in settings.items() if k != "seed"},
        }

    def part_jobs(self, part: int, parts: int) -> list[ShardJob]:
        return [job for job in self.jobs if job.index % parts == part]


def _item_fingerprint(item: Item) -> bytes:
    """Everything of an item that reaches its sample, so --resume notices changed inputs."""
    content = [
        item.key,
        item.image,
        item.gsd_m,
        item.gsd_origin,
        item.dataset_gsd_m,
        item.gsd_required,
        [q.to_json() for q in item.qa],
        item.labels,
        item.root,
    ]
    return json.dumps(content, sort_keys=True, default=str).encode() + b"\0"


def _files(item: Item) -> list[str]:
    if "path" in item.image:
        found = first_existing(item.image["path"])
        return [found or item.image["path"][0]]
    return list(item.image.get("bands", []))


def inputs_digest(items: list[Item], allow_outside: bool) -> str:
    """What the files of `items` are now (see `inputs.fingerprint`), as one digest."""
    digest = hashlib.sha256()
    for item in items:
        for path in _files(item):
            stamp = fingerprint(path, root=item.root, allow_outside=allow_outside)
            digest.update(json.dumps([path, stamp]).encode() + b"\0")
    return digest.hexdigest()


def make_plan(
    sources: list[SourceSpec],
    *,
    shard_size: int = 1000,
    settings: SampleSettings | None = None,
    synthetic_size: int = 96,
) -> Plan:
    if shard_size <= 0:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    settings = settings or SampleSettings()
    options = SourceOptions(seed=settings.seed, synthetic_size=synthetic_size, limits=settings.limits)
    plan = Plan(sources=list(sources), shard_size=shard_size, settings=settings, options=options)
    by_split: dict[str, list[Item]] = {}
    seen: set[str] = set()
    for spec in sources:
        for entry in get_adapter(spec.kind).items(spec.arg, options):
            if isinstance(entry, Reject):
                plan.rejects.append(entry)
            elif not _SPLIT_NAME.fullmatch(entry.split):  # it becomes a folder name under OUT
                plan.rejects.append(
                    Reject(entry.source, "invalid split name", split=entry.split, image_id=entry.image_id)
                )
            elif entry.key in seen:
                plan.rejects.append(
                    Reject(
                        entry.source,
                        "duplicate image id",
                        split=entry.split,
                        image_id=entry.image_id,
                        detail="an earlier item has the same key",
                    )
                )
            else:
                seen.add(entry.key)
                by_split.setdefault(entry.split, []).append(entry)
    digest = hashlib.sha256(json.dumps(plan.config(), sort_keys=True).encode())
    for split in sorted(by_split):
        items = by_split[split]
        random.Random(f"{settings.seed}|shuffle|{split}").shuffle(items)
        for start in range(0, len(items), shard_size):
            chunk = items[start : start + shard_size]
            name = f"{split}/{split}-{start // shard_size:06d}.tar"
            inputs = inputs_digest(chunk, settings.limits.allow_outside_root)
            plan.jobs.append(ShardJob(index=len(plan.jobs), split=split, name=name, items=chunk, inputs=inputs))
            digest.update(name.encode())
            for item in chunk:
                digest.update(_item_fingerprint(item))
    for reject in plan.rejects:
        digest.update(json.dumps(reject.to_json(), sort_keys=True).encode())
    plan.digest = digest.hexdigest()
    return plan
