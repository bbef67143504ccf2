import csv
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlcert import cli
from rlcert.demo import main as demo

ROOT = Path(__file__).resolve().parents[1]


def test_demo_environment_section_writes_report_and_frames(tmp_path):
    import matplotlib.image

    assert demo.main(["--quick", "--out", str(tmp_path), "--only", "environments"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Environments" in report and "ContinuousSeek-v0" in report and "(envs/envs.png)" in report
    # the section writes only under its own subfolder (next to the demo's settings and the report)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json", "envs", "report.md"]
    for name in ("envs.png", "env_DriveSeek-v0.png", "env_NoisySeek-v0.png", "env_ContinuousSeek-v0.png",
                 "env_BitFlipping-v0.png"):
        h, w = matplotlib.image.imread(tmp_path / "envs" / name).shape[:2]
        assert w >= 800 and h >= 400, (name, w, h)
    # every reference policy solves its task at least sometimes
    rows = [line for line in report.splitlines() if line.startswith("| ") and "-v0" in line]
    assert len(rows) == 4 and all(float(r.split("|")[3]) > 0.5 for r in rows)


class FakeSections:
    """Three cheap sections that count their runs; ``fail`` names a section that is interrupted once."""

    def __init__(self, fail: str | None = None):
        self.calls: list[str] = []
        self.fail = fail

    def make(self, name: str):
        def run(out: Path, quick: bool) -> list[str]:
            (out / name).mkdir(parents=True, exist_ok=True)
            self.calls.append(name)
            if name == self.fail:
                self.fail = None
                raise KeyboardInterrupt
            k = self.calls.count(name)
            return [f"{name} body, run {k}, quick={quick}"]
        return run

    def sections(self):
        return [(name.upper(), name, self.make(name)) for name in ("a", "b", "c")]


def test_demo_rerun_skips_finished_resumes_interrupted_and_keeps_every_section(tmp_path, monkeypatch, capsys):
    fake = FakeSections(fail="b")
    monkeypatch.setattr(demo, "SECTIONS", fake.sections())
    out = tmp_path / "demo"
    # interrupted in section b: a is kept, b and c are listed as not run, exit code 130
    assert demo.main(["--quick", "--out", str(out)]) == 130
    report = (out / "report.md").read_text()
    assert "## A" in report and "## B" not in report and "Not run yet" in report and "B, C" in report
    # rerun: a is skipped, b runs again, c runs; the report holds all three in order
    assert demo.main(["--quick", "--out", str(out)]) == 0
    assert fake.calls == ["a", "b", "b", "c"]
    report = (out / "report.md").read_text()
    assert report.index("## A") < report.index("## B") < report.index("## C") and "Not run yet" not in report
    # a third run trains nothing and rewrites the same report
    before = report
    assert demo.main(["--quick", "--out", str(out)]) == 0
    assert fake.calls == ["a", "b", "b", "c"] and (out / "report.md").read_text() == before
    # --only b --redo replaces just section b
    assert demo.main(["--quick", "--out", str(out), "--only", "b", "--redo"]) == 0
    report = (out / "report.md").read_text()
    assert fake.calls[-1] == "b" and "b body, run 3" in report and "a body, run 1" in report and "## C" in report
    # other settings in the same folder are refused in one line, naming the key, and change nothing
    capsys.readouterr()
    assert demo.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "quick" in err and str(out) in err
    assert (out / "report.md").read_text() == report and json.loads((out / "demo.json").read_text()) == {"quick": True}


def test_cli_lists_commands_and_rejects_unknown(capsys):
    assert cli.main(["--help"]) == 0
    assert "certify" in capsys.readouterr().out
    assert cli.main(["no-such-command"]) == 2


def test_cli_entry_point_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "rlcert.cli", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout


def test_demo_refuses_unknown_sections_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--quick", "--out", str(out), "--only", "environments,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bogus" in err
    assert all(title.lower() in err for title, _, _ in demo.SECTIONS)  # lists the valid sections
    assert not out.exists()
    assert demo.main(["--out", str(out), "--only", " , "]) == 2 and not out.exists()


def test_cli_registers_sweep_commands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "sweep " in out and "sweep-report" in out


@pytest.mark.slow
def test_demo_runs_from_an_installed_wheel_outside_the_checkout(tmp_path):
    """Build the wheel, install it (no deps) into a fresh venv that sees the current venv's site-packages through a
    .pth file, and run ``rlcert demo --quick --only environments`` twice from a folder outside the checkout."""
    import shutil
    import site
    import venv

    src, dist = tmp_path / "src", tmp_path / "dist"  # build from a copy: setuptools writes build/ next to the sources
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("rlcert", "configs"):  # configs/: the targets of the demo's config links
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=skip)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                            "-w", str(dist), str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    assert "deprecat" not in (build.stdout + build.stderr).lower()  # e.g. the licence as a TOML table
    (wheel,) = dist.glob("rlcert-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    new_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    # the dependencies come from the running venv (torch etc. are not reinstalled); its editable rlcert finder is
    # installed by a .pth file there, which a .pth-added directory does not run, so only the wheel's rlcert is seen.
    # Written after the install, so that pip never sees (nor touches) the running venv's own rlcert
    (new_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1"}
    where = subprocess.run([str(py), "-c", "import rlcert.demo.main as m, rlcert.demo.certify_policy as p; "
                            "print(m.__file__); print(all(f.is_file() for f in p.CONFIGS.iterdir()))"],
                           cwd=outside, env=env, capture_output=True, text=True, timeout=300)
    assert where.returncode == 0, where.stderr
    assert where.stdout.splitlines() == [str(new_site / "rlcert" / "demo" / "main.py"), "True"]
    assert not (new_site / "rlcert" / "demo" / "configs" / "continuous_seek_d2_smoothed.yaml").is_symlink()
    for attempt in range(2):  # the second run skips the finished section and keeps the report
        res = subprocess.run([str(env_dir / "bin" / "rlcert"), "demo", "--quick", "--only", "environments"],
                             cwd=outside, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (attempt, res.stderr[-3000:])
        report = (outside / "runs" / "demo" / "report.md").read_text()
        assert "## Environments" in report and "ContinuousSeek-v0" in report
    assert "skipped" in res.stdout
    assert (outside / "runs" / "demo" / "envs" / "envs.png").stat().st_size > 10_000
    # the running venv still has its own rlcert (the test must not uninstall the developer's install)
    assert importlib.metadata.distribution("rlcert") is not None


@pytest.mark.slow
def test_demo_killed_inside_the_agents_section_resumes_on_rerun(tmp_path):
    """kill -9 while the first agent of the "Agents" section trains (it has a checkpoint, no model.zip), then the
    same command again: it resumes that run, trains the second, and the report holds the section; every evaluation
    step appears once per run. A third run skips the section."""
    out = tmp_path / "demo"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "rlcert.demo", "--quick", "--only", "agents", "--out", str(out)]
    err_path = tmp_path / "first.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
    try:
        t0 = time.time()
        while True:
            ckpts = [p for p in out.glob("agents/runs/*/seed0/checkpoints/latest_model.zip")
                     if not (p.parents[1] / "model.zip").exists()]
            if ckpts:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            assert proc.poll() is None, "the demo ended before it could be killed:\n" + err_path.read_text()[-3000:]
            assert time.time() - t0 < 600, "no checkpoint within 600 s:\n" + err_path.read_text()[-3000:]
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "agents" / "section.json").exists()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert "## Agents" in report and "(agents/reengage_vs_ddpg.png)" in report
    for eval_csv in sorted(out.glob("agents/runs/*/seed0/eval.csv")):
        with open(eval_csv) as f:
            steps = [int(r["timesteps"]) for r in csv.DictReader(f)]
        assert steps == [0, 200, 400, 600], (eval_csv, steps)
    assert len(list(out.glob("agents/runs/*/seed0/model.zip"))) == 2
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "skipped" in res.stdout and (out / "report.md").read_text() == report
