"""Running sweeps: tidy CSV, finished trials never rerun, interrupted ones resume (kill -9 mid-sweep, sequential
and on a local Ray instance), bad configs refused before anything is written, the hint when Ray is missing."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rlcert.sweep.cli import main as sweep_main

ROOT = Path(__file__).resolve().parents[2]
LONG = 400  # steps of the setting that gets interrupted
TRAIN = {
    "algo": "ReenGAGEDDPG", "env": "rlcert/ContinuousSeek-v0", "env_kwargs": {"d": 2}, "total_timesteps": 100,
    "algo_kwargs": {"replay_buffer_class": "HerReplayBuffer",
                    "replay_buffer_kwargs": {"n_sampled_goal": 2, "goal_selection_strategy": "future"},
                    "action_noise": {"type": "normal", "sigma": 0.1}, "policy_kwargs": {"net_arch": [8]},
                    "batch_size": 8, "learning_starts": 20, "alpha": 0.2, "goal_reduction": "mean"},
    "eval": {"freq": 50, "episodes": 2, "metric": "ever"},
}


def make_sweep(tmp_path, space, seeds=2, **extra):
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(TRAIN))
    sweep = {"name": "tiny", "log_dir": str(tmp_path / "runs"), "methods": {"ReenGAGE": "train.yaml"},
             "search": {"kind": "grid", "space": space}, "seeds": seeds, **extra}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path, tmp_path / "runs" / "tiny"


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def run_folders(sweep_dir):
    return sorted((sweep_dir / "trials").glob("*/seed*"))


def test_sequential_sweep_tidy_csv_skip_and_resume(tmp_path, capsys):
    path, sweep_dir = make_sweep(tmp_path, {"algo_kwargs.learning_rate": [0.001, 0.0005]})
    assert sweep_main(["--config", str(path), "--sequential", "--no-progress"]) == 0
    rows = read(sweep_dir / "results.csv")
    assert list(rows[0]) == ["setting", "method", "algo_kwargs.learning_rate", "seed", "step", "success_rate",
                             "mean_return", "std_return", "episodes", "metric", "wall_time_s"]
    assert len(rows) == 2 * 2 * 3  # settings x seeds x evaluations (0, 50, 100)
    combos = {(r["algo_kwargs.learning_rate"], r["seed"]) for r in rows}
    assert combos == {("0.001", "0"), ("0.001", "1"), ("0.0005", "0"), ("0.0005", "1")}
    folders = run_folders(sweep_dir)
    assert len(folders) == 4 and all((f / "model.zip").exists() for f in folders)
    lr = {yaml.safe_load((f / "config.yaml").read_text())["algo_kwargs"]["learning_rate"] for f in folders}
    assert lr == {0.001, 0.0005}
    stamps = {f: (f / "model.zip").stat().st_mtime_ns for f in folders}
    capsys.readouterr()
    # a rerun finds every trial finished and trains nothing
    assert sweep_main(["--config", str(path), "--sequential", "--no-progress"]) == 0
    assert "4 already finished" in capsys.readouterr().out
    assert {f: (f / "model.zip").stat().st_mtime_ns for f in folders} == stamps
    # a larger budget resumes every seed from its checkpoint: earlier rows kept verbatim, new ones appended
    before = read(folders[0] / "eval.csv")
    sweep = yaml.safe_load(path.read_text())
    sweep["set"] = {"total_timesteps": 150}
    path.write_text(yaml.safe_dump(sweep))
    assert sweep_main(["--config", str(path), "--sequential", "--no-progress"]) == 0
    after = read(folders[0] / "eval.csv")
    assert after[:3] == before and [int(r["timesteps"]) for r in after] == [0, 50, 100, 150]
    assert len(read(sweep_dir / "results.csv")) == 4 * 4


def test_trial_seeds_train_as_one_fleet(tmp_path):
    path, sweep_dir = make_sweep(tmp_path, {"algo_kwargs.learning_rate": [0.001]}, seeds=2, seeds_per_trial=2)
    assert sweep_main(["--config", str(path), "--sequential", "--no-progress"]) == 0
    assert len(list((sweep_dir / "trials").glob("*/fleet_seeds0-1_n2.pt"))) == 1  # the trial's two seeds together
    assert len(read(sweep_dir / "results.csv")) == 2 * 3 and all((f / "model.zip").exists()
                                                                for f in run_folders(sweep_dir))


def test_changed_config_and_bad_values_are_refused_before_writing(tmp_path, capsys):
    path, sweep_dir = make_sweep(tmp_path, {"algo_kwargs.learning_rate": ["abc"]})
    assert sweep_main(["--config", str(path), "--sequential", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "algo_kwargs.learning_rate" in err[-1] and not sweep_dir.exists()
    path, sweep_dir = make_sweep(tmp_path, {"algo_kwargs.learning_rate": [0.001]}, seeds=1)
    assert sweep_main(["--config", str(path), "--sequential", "--no-progress"]) == 0
    sweep = yaml.safe_load(path.read_text())
    sweep["set"] = {"eval.episodes": 3}  # same setting id, different config: not silently reused
    path.write_text(yaml.safe_dump(sweep))
    manifest = (sweep_dir / "sweep.json").read_text()
    capsys.readouterr()
    assert sweep_main(["--config", str(path), "--sequential", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other settings (keys ['eval']" in err[0]
    assert (sweep_dir / "sweep.json").read_text() == manifest


def test_without_ray_the_command_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    path, sweep_dir = make_sweep(tmp_path, {"algo_kwargs.learning_rate": [0.001]}, seeds=1)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    assert sweep_main(["--config", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'rlcert[sweep]'" in err and "--sequential" in err and not sweep_dir.exists()


def _marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries ``RLCERT_TEST_MARKER=marker``: the sweep started by this test and every
    process it started (Ray's GCS, raylet and workers inherit the environment, also if they left its session)."""
    needle = f"RLCERT_TEST_MARKER={marker}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if needle in (d / "environ").read_bytes().split(b"\0"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def _kill_marked(marker: str, timeout: float = 60.0) -> None:
    """SIGKILL every marked process and wait until none is left (a straggling Ray worker would otherwise keep
    writing into the run folders while the test resumes them)."""
    t0 = time.time()
    while (pids := _marked_pids(marker)) and time.time() - t0 < timeout:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    assert not _marked_pids(marker), f"processes of the killed sweep survived: {_marked_pids(marker)}"


def kill_mid_sweep(tmp_path, extra_args, sig=signal.SIGKILL, stall_s=300):
    """Start a sweep (setting A: 100 steps, setting B: LONG steps, 2 seeds) in a subprocess; kill it (``sig`` to
    its process group; SIGINT = Ctrl-C in a terminal) once every A seed is finished and a B seed has a checkpoint
    but no model.zip, then SIGKILL whatever it started that is still alive (Ray processes included). Fails, with
    the sweep's stderr, if it ends early or makes no progress for ``stall_s`` seconds (a loaded machine is slow, not
    stuck). Returns the sweep file, the sweep dir, the state at the kill ({run folder: eval.csv rows}, the finished
    folders' model.zip mtimes) and the process's (return code, stderr)."""
    path, sweep_dir = make_sweep(tmp_path, {"total_timesteps": [100, LONG]})
    marker = f"{os.getpid()}-{time.time_ns()}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", RLCERT_TEST_MARKER=marker)
    err_path = tmp_path / "sweep.stderr"
    with open(err_path, "w") as err_file:  # a file, not a pipe: a full pipe would block the child
        proc = subprocess.Popen([sys.executable, "-m", "rlcert.cli", "sweep", "--config", str(path), "--no-progress",
                                 *extra_args], env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=err_file, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def child_stderr() -> str:
        return f"\n--- the sweep's stderr (last 4000 characters) ---\n{err_path.read_text()[-4000:]}"

    try:
        last_change, last_state = time.time(), None
        while True:
            done, partial, state = [], [], []
            for f in run_folders(sweep_dir):
                steps = yaml.safe_load((f / "config.yaml").read_text())["total_timesteps"] if (
                    f / "config.yaml").exists() else None
                csv_path = f / "eval.csv"
                state.append((str(f), csv_path.stat().st_size if csv_path.exists() else -1))
                if steps == 100 and (f / "model.zip").exists():
                    done.append(f)
                elif steps == LONG and ((f / "checkpoints" / "latest_model.zip").exists() or any(
                        f.parent.glob("fleet_seeds*.pt"))) and not (f / "model.zip").exists():  # seeds or a fleet
                    partial.append(f)
            if len(done) == 2 and partial:
                rows = {f: read(f / "eval.csv") for f in partial}
                os.killpg(proc.pid, sig)
                break
            assert proc.poll() is None, "the sweep ended before it could be interrupted" + child_stderr()
            if state != last_state:
                last_change, last_state = time.time(), state
            assert time.time() - last_change < stall_s, f"the sweep made no progress for {stall_s} s" + child_stderr()
            time.sleep(0.05)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _kill_marked(marker)
    return path, sweep_dir, rows, {f: (f / "model.zip").stat().st_mtime_ns for f in done}, (proc.returncode,
                                                                                          err_path.read_text())


def check_resumed(sweep_dir, rows_at_kill, finished):
    for f, stamp in finished.items():  # finished seeds were not rerun
        assert (f / "model.zip").stat().st_mtime_ns == stamp
    for f, before in rows_at_kill.items():  # the interrupted seed continued from its checkpoint
        after = read(f / "eval.csv")
        steps = [int(r["timesteps"]) for r in after]
        assert steps == list(range(0, LONG + 50, 50))  # every evaluation once, up to the final step
        kept = [r for r in before if int(r["timesteps"]) <= int(before[-1]["timesteps"])]
        assert after[:len(kept) - 1] == kept[:-1]  # rows up to the checkpoint kept verbatim (not retrained)
    results = read(sweep_dir / "results.csv")
    assert len(results) == 2 * 3 + 2 * (LONG // 50 + 1)


@pytest.mark.slow
def test_kill_and_resume_sequential(tmp_path):
    path, sweep_dir, rows_at_kill, finished, (_, err) = kill_mid_sweep(tmp_path, ["--sequential"])
    print(f"the killed sweep's stderr:\n{err[-4000:]}")  # shown by pytest if an assertion below fails
    assert sweep_main(["--config", str(path), "--sequential", "--no-progress"]) == 0
    check_resumed(sweep_dir, rows_at_kill, finished)


@pytest.mark.slow
def test_ctrl_c_sequential_checkpoints_one_line_and_resumes(tmp_path, capsys):
    """Ctrl-C mid-sweep: the running seed checkpoints its current step, one line, exit 130; a rerun finishes it and
    a rerun with another config is refused."""
    path, sweep_dir, rows_at_kill, finished, (rc, err) = kill_mid_sweep(tmp_path, ["--sequential"], signal.SIGINT)
    assert rc == 130 and "Traceback" not in err
    assert [line for line in err.strip().splitlines() if line.strip()] == [
        "rlcert sweep: interrupted; finished seeds are kept; rerun the same command to resume"]
    for f, before in rows_at_kill.items():
        # one seed's own checkpoint, or (a trial the fleet supports trains its seeds together) the fleet's
        own = f / "checkpoints" / "latest_state.json"
        state_files = [own] if own.exists() else list(f.parent.glob("fleet_seeds*.json"))
        assert len(state_files) == 1, f"no checkpoint state for {f}"
        state = yaml.safe_load(state_files[0].read_text())
        assert state["num_timesteps"] >= int(before[-1]["timesteps"])  # the current step, not the last evaluation
    assert sweep_main(["--config", str(path), "--sequential", "--no-progress"]) == 0
    check_resumed(sweep_dir, rows_at_kill, finished)


@pytest.mark.slow
def test_ray_tiny_sweep_kill_and_resume(tmp_path, capsys):
    """2 settings x 2 seeds on a local 2-CPU Ray instance, killed (-9, driver and local Ray processes) mid-sweep,
    rerun to completion on Ray."""
    pytest.importorskip("ray.tune")
    path, sweep_dir, rows_at_kill, finished, (_, err) = kill_mid_sweep(tmp_path, ["--num-cpus", "2"])
    print(f"the killed sweep's stderr:\n{err[-4000:]}")  # shown by pytest if an assertion below fails
    assert sweep_main(["--config", str(path), "--num-cpus", "2", "--no-progress"]) == 0
    check_resumed(sweep_dir, rows_at_kill, finished)
    assert list((sweep_dir / "ray").glob("tune-*/ReenGAGE-*"))  # the trials ran as Ray Tune trials
    capsys.readouterr()
    assert sweep_main(["--config", str(path), "--num-cpus", "2", "--no-progress"]) == 0  # all finished: no Ray
    assert "4 already finished" in capsys.readouterr().out


def test_interrupted_ray_run_ends_with_one_line(tmp_path, capsys, monkeypatch):
    """Ray Tune returns early without errors on Ctrl-C: unfinished trials then mean an interruption (exit 130,
    one line, no traceback), not success."""
    from rlcert.sweep import runner

    path, sweep_dir = make_sweep(tmp_path, {"algo_kwargs.learning_rate": [0.001]}, seeds=1)
    monkeypatch.setattr(runner, "_run_ray", lambda *a, **k: [])  # "Tune stopped before any trial finished"
    monkeypatch.setitem(sys.modules, "ray", type(sys)("ray"))
    monkeypatch.setitem(sys.modules, "ray.tune", type(sys)("ray.tune"))
    assert sweep_main(["--config", str(path), "--no-progress"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == ["rlcert sweep: interrupted; finished seeds are kept; rerun the same command to resume"]


@pytest.mark.parametrize("auth", [True, False])
def test_joining_a_cluster_that_refuses_us_is_one_line(tmp_path, capsys, monkeypatch, auth):
    """Ray 2.60's `ray start --head` uses token authentication once ~/.ray/auth_token exists; a driver given an
    explicit address without RAY_AUTH_MODE=token gets Ray's ConnectionError caused by an AuthenticationError (seen
    against a real `ray start --head`). The sweep ends with one line naming the setting, not a traceback."""
    ray = pytest.importorskip("ray")
    from ray.exceptions import AuthenticationError

    def refused(*args, **kwargs):
        cause = AuthenticationError("RPC error: InvalidAuthToken: Authentication token is missing or incorrect")
        if not auth:
            cause = RuntimeError("GCS at 127.0.0.1:1 did not answer")
        raise ConnectionError("Failed to connect to Ray cluster at 127.0.0.1:1") from cause

    monkeypatch.setattr(ray, "init", refused)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    path, _ = make_sweep(tmp_path, {"algo_kwargs.learning_rate": [0.001]}, seeds=1)
    assert sweep_main(["--config", str(path), "--address", "127.0.0.1:1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rlcert sweep: error: --address 127.0.0.1:1")
    assert ("RAY_AUTH_MODE=token" in err[0]) == auth and ("cannot connect" in err[0]) == (not auth)
