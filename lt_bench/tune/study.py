"""Tune one method: select its hyperparameters on val (Optuna), then fit them with several seeds
on all of train and evaluate on test.

The two phases are two functions with different inputs, so that "selection never reads test" is
structural: ``select`` is given a ``MethodData`` (train and val) and a folder, nothing else;
``final_fits`` is given the test split, which ``tune_method`` reads only after ``select`` has
returned (``read_test``: a callable, so a leaderboard reads test once for all its methods).

A tune folder ``DIR``::

    DIR/study.db          Optuna's SQLite storage: every finished trial, its params and val score.
                          A killed tune resumes (finished trials are kept; the one cut off runs again).
    DIR/cache.json        the cache it was made for; another cache is refused
    DIR/results/seed<S>.json       one ``ltbench eval --json`` result per final seed (+ "tune")
    DIR/results/seed<S>.pred.npy   that seed's test predictions (the leaderboard's bootstrap)
    DIR/tune.json         the summary: selected params, val score, seconds, test mean and 95 % CI
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LTBenchError
from ..heads.methods import Method, MethodData, Param, SplitData, fit_method, mean_class_accuracy
from ..io import atomic_path, write_json
from ..log import get_logger
from .data import cache_identity, describe_identity
from .space import describe_space, grid_size, make_sampler, sampler_id, suggest

log = get_logger(__name__)

STUDY_DB = "study.db"
CACHE_JSON = "cache.json"
SUMMARY_JSON = "tune.json"
BOOTSTRAP_REPS = 1000


@contextlib.contextmanager
def quiet_fits():
    """Heads log every epoch; a tune logs one line per trial and seed instead."""
    heads = get_logger("lt_bench.heads")
    level = heads.level
    heads.setLevel(max(logging.WARNING, level))
    try:
        yield
    finally:
        heads.setLevel(level)


@dataclass
class Selection:
    params: dict  # the selected hyperparameters (empty: the method has none to tune)
    val_score: float  # mean per-class accuracy (%) on val
    trials: int  # completed trials in the study
    reused: int = 0  # of which were finished by an earlier run
    trial_seconds: list = field(default_factory=list)  # wall time of each trial run now, bookkeeping included
    fit_seconds: list = field(default_factory=list)  # wall time of fit_method inside each of them
    train_seconds: list = field(default_factory=list)  # the training time each fit reports


@dataclass
class TuneResult:
    method: str
    out: Path
    selection: Selection
    records: list  # one result record per seed
    summary: dict


def claim_folder(out: Path, identity: dict, what: str) -> None:
    """Record the cache ``out`` is made for, or refuse ``out`` when it was made for another."""
    path = out / CACHE_JSON
    if path.is_file():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            kind, old = record.get("format"), record.get("cache")
        except (OSError, ValueError, AttributeError):
            kind, old = None, None
        if kind != f"lt_bench.{what}" and isinstance(kind, str) and kind.startswith("lt_bench."):
            raise LTBenchError(f"{out} is a {kind.removeprefix('lt_bench.')} folder, not a {what} folder: "
                               "give another --out")
        if old != identity:
            there = describe_identity(old) if isinstance(old, dict) else "an unreadable record"
            raise LTBenchError(f"{out} is a {what} folder of another cache ({there}; this one: "
                               f"{describe_identity(identity)}): give another --out")
        return
    if out.is_dir() and any(p.name not in (".lock",) and not p.name.startswith(".") for p in out.iterdir()):
        raise LTBenchError(f"{out} is not empty and is no {what} folder (it has no {CACHE_JSON}): give another --out")
    write_json(path, {"format": f"lt_bench.{what}", "cache": identity})


def claim_folder_for(cache, out: Path, what: str) -> None:
    """``claim_folder`` for an open cache."""
    claim_folder(out, cache_identity(cache), what)


# -- selection (train + val only) --------------------------------------------------------------

def _storage(out: Path):
    """Optuna's SQLite storage in ``out``, in WAL mode with ``synchronous=NORMAL``: a commit is an
    append to the log, not an fsync (which cost more than a small head's trial); a killed
    process loses nothing committed (only a power cut could lose the last trials)."""
    import sqlite3

    import optuna
    import sqlalchemy

    path = (out / STUDY_DB).absolute()
    with contextlib.closing(sqlite3.connect(path)) as con:  # WAL is a property of the file
        con.execute("PRAGMA journal_mode=WAL")
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 60}})
    sqlalchemy.event.listen(storage.engine, "connect", lambda con, _: con.execute("PRAGMA synchronous=NORMAL"))
    storage.engine.dispose()  # connections made from here on take the pragma
    return storage


def searched(method: Method, space: dict[str, Param]) -> dict[str, Param]:
    """The part of ``space`` Optuna searches: all but the method's post-hoc parameters, which each
    trial's fit selects on val over their whole grid without refitting (``heads.methods``:
    ``Fitted.with_posthoc``), so a trial is one training, not one per post-hoc value."""
    return {k: p for k, p in space.items() if k not in method.posthoc}


def _open_studies(out: Path, method: Method, space: dict[str, Param], sampler: str, seed: int):
    """(the study in ``out/study.db``, an in-memory copy of its finished trials to search with).

    Trials run in memory and each finished one is added to the stored study in one transaction:
    a trial costs one write instead of one per suggested value and attribute, and a kill never
    leaves a half-recorded trial. The grid sampler numbers its points by trial number, so a
    resumed search runs the points an uninterrupted one would.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stored = optuna.create_study(study_name=method.name, storage=_storage(out), direction="maximize",
                                 load_if_exists=True)
    recorded = {"space": describe_space(space), "sampler": sampler_id(sampler), "seed": seed}
    old = {k: stored.user_attrs.get(k) for k in recorded}
    finished = [t for t in stored.get_trials(deepcopy=False) if t.state.is_finished()]
    if finished and old != recorded:
        diff = ", ".join(k for k in recorded if old[k] != recorded[k])
        raise LTBenchError(f"{out / STUDY_DB} holds trials of another search ({diff} differ): rerun with the "
                           "same options, or give another --out")
    for k, v in recorded.items():
        if old[k] != v:
            stored.set_user_attr(k, v)
    memory = optuna.create_study(direction="maximize", sampler=make_sampler(sampler, searched(method, space), seed))
    memory.add_trials(finished)
    return stored, memory


def select(data: MethodData, method: Method, space: dict[str, Param], out: Path, *, trials: int, sampler: str,
           seed: int = 0, device: str = "cpu") -> Selection:
    """Search ``space`` for the best mean per-class accuracy on ``data.val``.

    Args:
        data: train and the val to score on (never test).
        method: the method (``heads.methods.METHODS``).
        space: its search space (``method.space``, maybe overridden).
        out: the tune folder (Optuna's storage ``study.db`` lives there).
        trials: finished trials wanted in the study in all (a grid stops at its size); trials
            finished by an earlier run count.
        sampler: ``grid`` or ``tpe``.
        seed: the sampler's seed and every trial's fit seed.
    """
    import optuna
    from optuna.trial import TrialState

    if data.val is None:
        raise LTBenchError("selection needs a val split (tune.data.tuning_data makes one)")
    stored, study = _open_studies(out, method, space, sampler, seed)
    spent = (TrialState.COMPLETE, TrialState.PRUNED)  # pruned: a point this data cannot take; it used the budget
    done = len(study.get_trials(deepcopy=False, states=spent))
    optuna_space = searched(method, space)
    want = min(trials, grid_size(optuna_space)) if sampler == "grid" or not optuna_space else trials
    sel = Selection({}, float("nan"), done, reused=done)
    fits: dict[int, tuple[float, float]] = {}  # trial number -> (fit_method's wall time, its training time)

    def objective(trial) -> float:
        params = suggest(trial, optuna_space)
        t0 = time.perf_counter()
        try:
            with quiet_fits():
                fitted = fit_method(method.name, data, params, seed=seed, device=device, space=space)
        except LTBenchError as e:  # a point this data cannot take (e.g. k > the train set): skip it
            log.warning("%s trial %d: %s: %s; skipped", method.name, trial.number, params, e)
            trial.set_user_attr("error", str(e))
            raise optuna.TrialPruned(str(e)) from None
        fits[trial.number] = (time.perf_counter() - t0, fitted.seconds)
        score = mean_class_accuracy(fitted.logits(data.val.features), data.val.labels)
        trial.set_user_attr("train_seconds", fitted.seconds)
        trial.set_user_attr("posthoc", fitted.posthoc)  # the post-hoc values this fit selected on val
        log.info("%s trial %d: %s -> val %.2f (%.1f s)", method.name, trial.number, params or "defaults", score,
                 fitted.seconds)
        return score

    clock = [time.perf_counter()]

    writer = ThreadPoolExecutor(max_workers=1)  # stores while the next trial trains (in C, GIL released)
    pending = []

    def finished(_, trial) -> None:  # after each trial: store it (one transaction); its wall time, storing included
        pending.append(writer.submit(stored.add_trial, trial))
        now = time.perf_counter()
        if trial.number in fits:
            sel.trial_seconds.append(now - clock[0])
            sel.fit_seconds.append(fits[trial.number][0])
            sel.train_seconds.append(fits[trial.number][1])
        clock[0] = now

    if want > done:
        log.info("%s: %d of %d trials done; running %d (%s sampler, val only)", method.name, done, want, want - done,
                 sampler)
        try:
            study.optimize(objective, n_trials=want - done, callbacks=[finished])
        finally:  # every finished trial stored (an error or Ctrl-C included; a kill -9 loses the one in flight)
            writer.shutdown(wait=True)
            for f in pending:
                f.result()
    else:
        log.info("%s: all %d trials done; reusing them", method.name, want)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        errors = [t.user_attrs.get("error") for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))]
        raise LTBenchError(f"no trial of {method.name} succeeded ({errors[-1] if errors else 'none ran'}): "
                           "narrow its search space with --space")
    best = study.best_trial
    sel.params, sel.val_score = {**best.params, **best.user_attrs.get("posthoc", {})}, float(best.value)
    sel.trials = len(study.get_trials(deepcopy=False, states=spent))
    return sel


# -- the final fits (after selection: now test may be read) ----------------------------------------

def _seed_result(out: Path, seed: int) -> tuple[Path, Path]:
    return out / "results" / f"seed{seed}.json", out / "results" / f"seed{seed}.pred.npy"


def _reusable(path: Path, pred_path: Path, tune_entry: dict) -> dict | None:
    """A seed's result of these selected params on this cache, or None."""
    if not (path.is_file() and pred_path.is_file()):
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    old = rec.get("tune") or {}
    same = all(old.get(k) == tune_entry[k] for k in ("method", "params", "cache", "val_source"))
    return rec if same else None


def final_fits(cache, method: Method, final: MethodData, test: SplitData, sel: Selection, out: Path, *,
               seeds: list[int], val_source: str, device: str = "cpu") -> tuple[list[dict], np.ndarray]:
    """Fit the selected params with each seed on ``final`` and evaluate on ``test``; write one
    result per seed (reusing those already written for these params). Returns the records and
    the (S, N) correctness of each seed's test predictions."""
    from ..metrics import evaluate
    from ..report.results import result_record, write_result

    identity = cache_identity(cache)
    records, correct = [], []
    for s in seeds:
        path, pred_path = _seed_result(out, s)
        entry = {"method": method.name, "params": sel.params, "val_score": sel.val_score, "val_source": val_source,
                 "trials": sel.trials, "cache": identity}
        rec = _reusable(path, pred_path, entry)
        if rec is not None:
            log.info("%s seed %d: %s holds it; reusing it", method.name, s, path)
            pred = np.load(pred_path)
        else:
            with quiet_fits():
                fitted = fit_method(method.name, final, sel.params, seed=s, device=device)
            logits = fitted.logits(test.features)
            pred = logits.argmax(axis=1).astype(np.int32)
            ev = evaluate(logits, test.labels, cache.train_counts)
            config = {**fitted.config, "method": method.name}
            rec = result_record(ev, head=method.name, kind=method.kind, split="test", cache=cache, config=config,
                                seed=s, label=method.name, device=device)
            extra = {k: v for k, v in fitted.extra.items() if isinstance(v, (int, float, str, list)) or v is None}
            rec["tune"] = {**entry, "train_seconds": float(fitted.seconds), "fit": extra}
            with atomic_path(pred_path) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, pred)
            write_result(path, rec)  # after its predictions: a result file implies them
            log.info("%s seed %d: test %.2f (%.1f s)", method.name, s, rec["metrics"]["overall"], fitted.seconds)
        records.append(rec)
        correct.append(pred == test.labels)
    return records, np.asarray(correct)


def bootstrap_ci(correct: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = 0, level: float = 0.95
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval (%) of overall top-1 averaged over seeds, resampling test
    images (the same resample for every seed: the seeds share the test set).

    Args:
        correct: (S, N) bool, seed x test image.
    """
    per_image = np.asarray(correct, dtype=np.float64).mean(axis=0)
    n = len(per_image)
    rng = np.random.default_rng(seed)
    means = np.empty(reps)
    chunk = max(1, (1 << 22) // max(n, 1))  # bounded memory on a large test set
    for s in range(0, reps, chunk):
        idx = rng.integers(0, n, size=(min(chunk, reps - s), n))
        means[s:s + len(idx)] = per_image[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return 100.0 * float(lo), 100.0 * float(hi)


def tune_method(cache, method: Method, space: dict[str, Param], tuning: MethodData, final: MethodData,
                read_test: Callable[[], SplitData], out: Path, *, val_source: str, trials: int, sampler: str,
                seeds: int, seed: int = 0, device: str = "cpu") -> TuneResult:
    """Select on ``tuning`` (no test), then read test and make the final fits; write DIR/tune.json.

    The caller holds ``out``'s lock and has claimed it for this cache (``claim_folder``).
    """
    from ..provenance import environment, now_iso

    t0 = time.perf_counter()
    sel = select(tuning, method, space, out, trials=trials, sampler=sampler, seed=seed, device=device)
    test = read_test()  # selection is over
    seed_list = [seed + i for i in range(seeds)]
    records, correct = final_fits(cache, method, final, test, sel, out, seeds=seed_list, val_source=val_source,
                                  device=device)
    lo, hi = bootstrap_ci(correct, seed=seed)
    summary = {
        "format": "lt_bench.tune", "method": method.name, "kind": method.kind, "base": method.base,
        "fixed": method.fixed, "paper": method.paper, "cache": cache_identity(cache),
        "space": describe_space(space), "sampler": sampler, "trials": sel.trials, "val_source": val_source,
        "selected": sel.params, "val_score": sel.val_score, "seeds": seed_list,
        "train_seconds": [r["tune"]["train_seconds"] for r in records],
        "results": [str(_seed_result(out, s)[0].relative_to(out)) for s in seed_list],
        "test": {m: [r["metrics"][m] for r in records] for m in ("overall", "many", "medium", "few")},
        "overall_ci95": [lo, hi], "bootstrap": {"reps": BOOTSTRAP_REPS, "seed": seed, "resampled": "test images"},
        "seconds": time.perf_counter() - t0, "environment": environment(device), "created": now_iso()}
    write_json(out / SUMMARY_JSON, summary)
    return TuneResult(method.name, out, sel, records, summary)


def tune(cache, method: str, out: str | Path, *, trials: int = 20, sampler: str = "grid", seeds: int = 3,
         space: tuple[str, ...] = (), views: bool = True, seed: int = 0, device: str = "cpu") -> TuneResult:
    """Tune ``method`` on an open ``FeatureCache``: select on val (or a holdout of train), then fit
    the selection with ``seeds`` seeds on all of train and evaluate on test.

    Args:
        cache: an open ``FeatureCache`` (read once here: train and val, then test after selection).
        method: a name of ``heads.methods.METHODS``.
        out: the tune folder (module docstring); a rerun reuses its finished trials and seeds.
        trials: completed trials wanted (``grid``: at most the grid's size).
        sampler: ``grid`` or ``tpe``.
        seeds: final fits, seeds ``seed .. seed + seeds - 1``.
        space: ``NAME=LOW:HIGH`` / ``NAME=V1,V2`` overrides of the method's search space.
        views: trained heads draw the cached augmented train views.
        seed: the sampler's and the trials' seed, and the first final seed.
        device: where heads train (resolved: ``cpu`` / ``cuda``).
    """
    from ..heads.methods import get_method
    from ..lock import output_lock
    from .data import check_tunable, final_data, read_method_data, read_test, tuning_data
    from .space import override_space

    m = get_method(method)
    full_space = override_space(m, space)
    check_budget(trials, seeds)
    out = Path(out)
    check_tunable(cache)
    with output_lock(out, directory=True, stale=(SUMMARY_JSON, CACHE_JSON, "results")):
        claim_folder(out, cache_identity(cache), "tune")
        data = read_method_data(cache, views=views)
        tuning, val_source = tuning_data(data)
        return tune_method(cache, m, full_space, tuning, final_data(data, val_source), lambda: read_test(cache), out,
                           val_source=val_source, trials=trials, sampler=sampler, seeds=seeds, seed=seed,
                           device=device)


def check_budget(trials: int, seeds: int) -> None:
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise LTBenchError(f"--trials {trials}: give at least 1 trial")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise LTBenchError(f"--seeds {seeds}: give at least 1 seed")
