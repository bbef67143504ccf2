"""Hyper-parameter sweeps over ``rlcert train`` configs x seeds (Ray Tune) and their best-setting report.

``rlcert sweep --config sweep.yaml`` runs them (:mod:`rlcert.sweep.runner`, schema in :mod:`rlcert.sweep.spec`);
``rlcert sweep-report SWEEP_DIR`` summarises them (:mod:`rlcert.sweep.report`). Ray is an optional extra:
``pip install 'rlcert[sweep]'``; nothing here imports it at module level.
"""

from rlcert.sweep.spec import Setting, SweepSpec, Trial, expand_settings, expand_trials, load_sweep

__all__ = ["Setting", "SweepSpec", "Trial", "expand_settings", "expand_trials", "load_sweep"]
