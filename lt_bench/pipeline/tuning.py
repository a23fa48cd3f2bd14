"""The ``tune`` and ``leaderboard`` steps: the entry points the commands and the demo call.

Each checks its options and output folder before any work, holds the folder's lock for the
whole step (``lt_bench.lock``), claims the folder for this cache (another cache's folder is
refused in one line), writes the resolved config in it (``DIR/config.toml``, a valid
``--config``) and calls ``lt_bench.tune``. A rerun with the same folder reuses the finished
trials and seeds (``lt_bench.tune.study``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..io import check_output
from ..lock import output_lock
from ..log import get_logger
from .configs import LeaderboardConfig, TuneConfig
from .steps import write_resolved_config

log = get_logger(__name__)


@contextlib.contextmanager
def torch_threads(n: int):
    """``torch.set_num_threads(n)`` for the block (0: leave torch's default)."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check(cfg) -> None:
    from ..options import check_options

    check_options(cfg)
    check_output(cfg.out, inputs=[cfg.features], directory=True)


@contextlib.contextmanager
def _claimed(cfg, cache, command: str):
    """The step's folder, locked for the block, checked for this cache (another cache's folder,
    or one of the other command, is refused) and given the resolved config; torch's threads as
    ``cfg.threads`` says."""
    from ..tune import check_tunable, claim_folder_for

    with output_lock(cfg.out, directory=True, stale=("config.toml",)), torch_threads(cfg.threads):
        check_tunable(cache)  # before the folder is claimed: a refused cache leaves nothing
        claim_folder_for(cache, Path(cfg.out), command)
        write_resolved_config(Path(cfg.out), cfg, command)
        yield


def run_tune(cfg: TuneConfig, *, cache=None):
    """Tune ``cfg.method`` on ``cfg.features`` into ``cfg.out``; return ``tune.TuneResult``.

    Args:
        cache: an open ``FeatureCache`` of ``cfg.features`` (opened here when None).
    """
    from ..device import resolve_device
    from ..features import FeatureCache
    from ..heads.methods import get_method
    from ..tune import override_space, tune

    _check(cfg)
    override_space(get_method(cfg.method), cfg.space)  # unknown method or hyperparameter: before any work
    device = str(resolve_device(cfg.device))
    if cache is None:
        with FeatureCache(cfg.features) as c:
            return run_tune(cfg, cache=c)
    with _claimed(cfg, cache, "tune"):
        return tune(cache, cfg.method, cfg.out, trials=cfg.trials, sampler=cfg.sampler, seeds=cfg.seeds,
                    space=cfg.space, views=cfg.views, seed=cfg.seed, device=device)


def run_leaderboard(cfg: LeaderboardConfig, *, cache=None):
    """Tune every method of ``cfg.methods`` and write the leaderboard under ``cfg.out``; return
    ``tune.Board`` (its ``files``: the md, LaTeX, CSV, JSON tables and the plot)."""
    from ..device import resolve_device
    from ..features import FeatureCache
    from ..tune import leaderboard
    from ..tune.board import resolve_methods

    _check(cfg)
    resolve_methods(cfg.methods)  # an unknown name: before any work
    device = str(resolve_device(cfg.device))
    if cache is None:
        with FeatureCache(cfg.features) as c:
            return run_leaderboard(cfg, cache=c)
    with _claimed(cfg, cache, "leaderboard"):
        return leaderboard(cache, cfg.out, methods=cfg.methods, trials=cfg.trials, sampler=cfg.sampler,
                           seeds=cfg.seeds, views=cfg.views, seed=cfg.seed, device=device, plot_best=cfg.plot_best)
