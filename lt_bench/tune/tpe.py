"""TPE whose draws for trial n depend only on the seed, n and the finished trials.

Optuna's ``TPESampler(seed=S)`` draws from one random stream for the whole study, so a tune
killed after n trials and resumed (a new sampler, its stream back at the start, the n trials
loaded from ``study.db``) samples other points than the run that was not killed. This sampler
gives each trial a ``TPESampler`` seeded by ``(S, trial number)``: TPE keeps no state between
trials besides that stream (it refits its estimators from the finished trials each time), so an
interrupted and resumed search runs the points an uninterrupted one runs, as the grid does.
Imported only by ``space.make_sampler`` (Optuna stays out of ``ltbench --help``).
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.samplers import BaseSampler, TPESampler


class TrialSeededTPE(BaseSampler):
    def __init__(self, seed: int):
        self.seed = int(seed)
        self._tpe = self._for(0)

    def _for(self, number: int) -> TPESampler:
        return TPESampler(seed=int(np.random.SeedSequence([self.seed, number]).generate_state(1)[0]))

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._tpe = self._for(trial.number)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:  # Optuna calls it for parallel workers; the seeds are per trial already
        pass
