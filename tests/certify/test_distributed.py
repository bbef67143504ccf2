"""``--ray``: inputs (episodes) sharded over Ray workers give the single-process rows; resumable; a worker killed
mid-run has its inputs redone. One local Ray instance (2 CPUs) for the whole module."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")

from rlcert.certify.models.digits import digits_cnn  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    from rlcert.certify.distributed import init_ray

    started = init_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    w = tmp_path_factory.mktemp("w") / "w.pt"
    torch.manual_seed(0)
    torch.save(digits_cnn().state_dict(), w)
    return w


def _certify(weights, out, *extra, n="400"):
    from rlcert.certify.cli.certify import main

    return main(["--model", "rlcert.certify.models:digits_cnn", "--weights", str(weights), "--sigma", "0.25",
                 "--n0", "20", "--n", n, "--batch", "200", "--inputs-per-call", "2", "--no-progress",
                 "--out", str(out), *extra])


def _rows(path: Path, drop_time: bool = True) -> list[list[str]]:
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    return [r[:5] + r[6:] for r in rows] if drop_time else rows


def test_ray_rows_equal_one_process_and_resume_after_interrupt(local_ray, weights, tmp_path, monkeypatch, capsys):
    assert _certify(weights, tmp_path / "one.tsv", "--max", "10") == 0
    assert _certify(weights, tmp_path / "ray.tsv", "--max", "10", "--ray", "--workers", "2") == 0
    assert _rows(tmp_path / "ray.tsv") == _rows(tmp_path / "one.tsv")  # same rows, same order (time aside)

    import tqdm.auto

    class Interrupting(tqdm.auto.tqdm):  # Ctrl-C after the second group is written
        calls = 0

        def update(self, n=1):
            Interrupting.calls += 1
            if Interrupting.calls == 2:
                raise KeyboardInterrupt
            return super().update(n)

    out = tmp_path / "cut.tsv"
    import rlcert.certify.cli.certify as certify_cli

    monkeypatch.setattr(certify_cli, "tqdm", Interrupting)
    assert _certify(weights, out, "--max", "30", "--ray", "--workers", "2") == 130
    monkeypatch.undo()
    kept = _rows(out, drop_time=False)[1:]
    assert 4 <= len(kept) < 30  # the written groups and the held ones (flushed on Ctrl-C)
    capsys.readouterr()
    assert _certify(weights, out, "--max", "30", "--ray", "--workers", "2") == 0
    assert f"({len(kept)} already done)" in capsys.readouterr().out.splitlines()[-1]
    rows = _rows(out, drop_time=False)[1:]
    assert rows[:len(kept)] == kept  # finished inputs were not recomputed (same time column)
    assert _certify(weights, tmp_path / "one30.tsv", "--max", "30") == 0
    one = {r[0]: r for r in _rows(tmp_path / "one30.tsv")[1:]}
    assert sorted(_rows(out)[1:], key=lambda r: int(r[0])) == [one[str(i)] for i in range(30)]


def _busy_worker_pids(title: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(title.encode()):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def test_a_worker_killed_mid_run_has_its_inputs_redone(local_ray, weights, tmp_path, capsys):
    killed: list[int] = []

    def killer() -> None:
        t_end = time.monotonic() + 60
        while not killed and time.monotonic() < t_end:
            for pid in _busy_worker_pids("ray::CertifyWorker.run"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.01)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    assert _certify(weights, tmp_path / "ray.tsv", "--max", "8", "--ray", "--workers", "2", n="20000") == 0
    th.join()
    assert killed, "no busy worker was found to kill"
    assert "a worker died; redoing" in capsys.readouterr().err
    assert _certify(weights, tmp_path / "one.tsv", "--max", "8", n="20000") == 0
    assert _rows(tmp_path / "ray.tsv") == _rows(tmp_path / "one.tsv")


def test_policy_episodes_over_ray_equal_one_process(local_ray, tmp_path):
    from rlcert.certify.policy.cli import main
    from tests.certify.policy.test_episodes_cli import _saved_model

    model = _saved_model(tmp_path, "seek")
    args = ["--model", str(model), "--sigma", "0.2", "--episodes", "8", "--steps", "0", "--num-envs", "2",
            "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "one.tsv")]) == 0
    assert main(args + ["--out", str(tmp_path / "ray.tsv"), "--ray", "--workers", "2"]) == 0
    one, par = (sorted((tmp_path / f).read_text().splitlines()) for f in ("one.tsv", "ray.tsv"))
    assert par == one and len(one) == 17
