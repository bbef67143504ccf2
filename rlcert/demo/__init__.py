"""The main demo, shipped with the package: ``rlcert demo`` (runner in :mod:`rlcert.demo.main`).

One module per report section (``envs``, ``agents``, ``multi_goal``, ``certify``, ``certify_deterministic``,
``certify_ablation_wasserstein``, ``certify_policy``); each has ``run(out, quick) -> list[str]`` (markdown lines)
and writes only under its own folder of ``out``. The configs the sections train from ship in ``configs/``.
"""
