"""`govfacts extract --engine ray`: the same batch extraction on Ray Data actors.

The files (found exactly as the local engine finds them) are grouped into the local engine's units
(`govfacts.infer.batch.units_of`: about `long_chars` characters each, a bigger file a unit of its own), and
each unit becomes one row of a Ray dataset (`ray.data.from_items`). `map_batches` runs `ExtractUnit`, a
stateful actor class that loads the extractor once and turns a unit into journal records with the local
engine's own function (`govfacts.infer.batch.process_unit`): short documents in groups, a long one part by
part, parts an interrupted run journalled taken from the journal. The driver appends each unit's records to
the same journal (`OUTPUT.journal.jsonl`, fsynced) as the unit finishes, so an interruption loses at most the
units in flight and `--resume` works across engines; the output and errors files are written atomically in
file order by `finish_batch`: the facts are those of the local engine.

Ray: a local instance (`ray.init(address=None, include_dashboard=False, num_cpus=<CPUs>)`) unless
`address` names a cluster (`ray://host:10001`, `host:6379` or `auto`). On a cluster every node needs
govfacts installed and the model directory at the same path (or a hub name), and the input files
must be readable from the workers at the paths given.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable, Optional

from govfacts.factsio import output_format
from govfacts.infer.api import batch_functions
from govfacts.infer.batch import (UNIT_BYTES_PER_CHAR, BatchResult, append_records, discover, finish_batch,
                                  open_journal, process_unit, units_of)
from govfacts.infer.loader import InferSettings, extractor_id, has_tagger, load
from govfacts.infer.tagger import available_cpus

INSTALL = "pip install 'ray[data]>=2.9'  (or: pip install -e '.[ray]')"


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ImportError(f"the ray engine needs Ray Data, which is not installed ({e}): {INSTALL}") from None
    return ray


class ExtractUnit:
    """Ray Data actor: one extractor per actor process; a unit of paths (one row) → its journal records (JSON)."""

    def __init__(self, spec: Optional[str], settings: InferSettings, long_chars: int):
        self.fns = batch_functions(spec, settings)
        self.long_chars = long_chars

    def __call__(self, batch: dict) -> dict:
        out: list[str] = []
        for unit, have_json in zip(batch["unit"], batch["have"]):
            recs: list[dict] = []
            have = {p: {int(k): r for k, r in got.items()} for p, got in json.loads(have_json).items()}  # keys: str
            process_unit(json.loads(unit), self.fns, have, recs.extend, self.long_chars)
            out.append(json.dumps(recs, ensure_ascii=False))
        return {"records": out}


def run_ray(paths: Iterable[str | Path], output: str | Path, spec: Optional[str] = None,
            settings: Optional[InferSettings] = None, *, errors: Optional[str | Path] = None, resume: bool = False,
            progress: bool = True, address: Optional[str] = None, workers: Optional[int] = None,
            long_chars: int = 100_000, num_cpus: Optional[int] = None):
    """Extract facts from every file under `paths` into `output` with Ray Data.

    Returns (BatchResult, extractor id). `workers` = extractor actors (default: one per CPU for
    the rules, one using all CPUs for a tagger); each actor asks for CPUs/workers CPUs and runs
    that many torch threads.
    """
    ray = require_ray()
    settings = settings or InferSettings.load()
    output = Path(output)
    output_format(output)
    probe = load(spec, settings)  # fail early on a bad model spec, and name the extractor
    name, tagger = extractor_id(probe), has_tagger(probe)
    del probe
    files, skipped = discover(paths)
    done, parts, jpath = open_journal(output, resume)
    result = BatchResult(output=output, skipped=skipped, resumed=len(done))
    todo = [f for f in files if str(f) not in done]
    started = False
    if todo and not ray.is_initialized():
        kw = dict(address=address, include_dashboard=False, logging_level=logging.WARNING,
                  configure_logging=True, log_to_driver=True)
        if address is None:
            kw["num_cpus"] = num_cpus or available_cpus()
        ray.init(**kw)
        started = True
    try:
        if todo:
            _run(ray, units_of(todo, UNIT_BYTES_PER_CHAR * long_chars), spec, settings, workers, tagger, long_chars,
                 progress, jpath, done, parts)
    finally:
        if started:
            ray.shutdown()
    return finish_batch(result, files, done, errors, jpath), name


def _run(ray, units, spec, settings, workers, tagger, long_chars, progress, jpath, done, parts):
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    ctx.enable_operator_progress_bars = progress
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False
    node_cpus = max([int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")] or [1])
    total_cpus = int(ray.cluster_resources().get("CPU", node_cpus))
    n = int(workers or (1 if tagger else total_cpus))
    n = max(1, n)
    actor_cpus = max(1, min(node_cpus, total_cpus // n)) if tagger else 1
    rows = [{"unit": json.dumps([str(p) for p in unit], ensure_ascii=False),
             "have": json.dumps({str(p): parts[str(p)] for p in unit if str(p) in parts}, ensure_ascii=False)}
            for unit in units]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    ds = ds.map_batches(ExtractUnit, batch_size=1, num_cpus=actor_cpus, batch_format="numpy",
                        fn_constructor_kwargs={"spec": spec, "long_chars": long_chars,
                                               "settings": settings.replace(num_threads=actor_cpus if tagger else None)},
                        **_actor_pool(ray, n))
    with open(jpath, "a", encoding="utf-8") as journal:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for recs in batch["records"]:
                append_records(journal, json.loads(recs), done, parts)


def _actor_pool(ray, n: int) -> dict:
    """`compute=ActorPoolStrategy(size=n)` (Ray >= 2.51 deprecates `concurrency=`), else `concurrency=n`."""
    import inspect

    strategy = getattr(ray.data, "ActorPoolStrategy", None)
    if strategy is not None and "size" in inspect.signature(strategy).parameters:
        return {"compute": strategy(size=n)}
    return {"concurrency": n}
