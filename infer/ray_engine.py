"""`govfacts extract --engine ray`: the same batch extraction on Ray Data actors.

The file list (found exactly as the local engine finds it) becomes a Ray dataset
(`ray.data.from_items`); `map_batches` runs `ExtractBatch`, a stateful actor class that loads the
extractor once and turns each batch of paths into the same journal records as the local engine
(`govfacts.infer.batch.read_record` + `chunk_records` + `govfacts.infer.api.extract_documents`).
The driver streams the records into the same journal (`OUTPUT.journal.jsonl`, fsynced per batch),
so `--resume` works across engines, and writes the output and errors files atomically in file order
with `finish_batch`: the facts are those of the local engine.

Ray: a local instance (`ray.init(address=None, include_dashboard=False, num_cpus=<CPUs>)`) unless
`address` names a cluster (`ray://host:10001`, `host:6379` or `auto`). On a cluster every node needs
govfacts installed and the model directory at the same path (or a hub name), and the input files
must be readable from the workers at the paths given.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Iterable, Optional

from govfacts.factsio import output_format
from govfacts.infer.api import extract_documents
from govfacts.infer.batch import BatchResult, append_records, chunk_records, discover, finish_batch, open_journal, read_record
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


class ExtractBatch:
    """Ray Data actor: one extractor per actor process, a batch of paths → journal records (JSON)."""

    def __init__(self, spec: Optional[str], settings: InferSettings):
        self.extractor = load(spec, settings)

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        read = [read_record(p) for p in paths]
        recs = chunk_records(paths, read, lambda d: extract_documents(self.extractor, [d])[0],
                             lambda docs: extract_documents(self.extractor, docs))
        return {"path": paths, "record": [json.dumps(r, ensure_ascii=False) for r in recs]}


def run_ray(paths: Iterable[str | Path], output: str | Path, spec: Optional[str] = None,
            settings: Optional[InferSettings] = None, *, errors: Optional[str | Path] = None, resume: bool = False,
            progress: bool = True, address: Optional[str] = None, workers: Optional[int] = None,
            batch_docs: int = 8, num_cpus: Optional[int] = None):
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
    done, _, jpath = open_journal(output, resume)  # parts of long documents are redone whole here
    result = BatchResult(output=output, skipped=skipped, resumed=len(done))
    todo = [str(f) for f in files if str(f) not in done]
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
            _run(ray, todo, spec, settings, workers, tagger, batch_docs, progress, jpath, done)
    finally:
        if started:
            ray.shutdown()
    return finish_batch(result, files, done, errors, jpath), name


def _run(ray, todo, spec, settings, workers, tagger, batch_docs, progress, jpath, done):
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
    ds = ray.data.from_items([{"path": p} for p in todo],
                             override_num_blocks=max(1, min(len(todo), math.ceil(len(todo) / batch_docs))))
    ds = ds.map_batches(ExtractBatch, batch_size=batch_docs, num_cpus=actor_cpus, batch_format="numpy",
                        fn_constructor_kwargs={"spec": spec,
                                               "settings": settings.replace(num_threads=actor_cpus if tagger else None)},
                        **_actor_pool(ray, n))
    with open(jpath, "a", encoding="utf-8") as journal:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            append_records(journal, [json.loads(r) for r in batch["record"]], done)


def _actor_pool(ray, n: int) -> dict:
    """`compute=ActorPoolStrategy(size=n)` (Ray >= 2.51 deprecates `concurrency=`), else `concurrency=n`."""
    import inspect

    strategy = getattr(ray.data, "ActorPoolStrategy", None)
    if strategy is not None and "size" in inspect.signature(strategy).parameters:
        return {"compute": strategy(size=n)}
    return {"concurrency": n}
