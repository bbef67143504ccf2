import subprocess
import sys

from rlcert import cli, demo


def test_demo_environment_section_writes_report_and_frames(tmp_path):
    import matplotlib.image

    assert demo.main(["--quick", "--out", str(tmp_path), "--only", "environments"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Environments" in report and "ContinuousSeek-v0" in report and "(envs/envs.png)" in report
    # the section writes only under its own subfolder; every frame is a titled figure of readable size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["envs", "report.md"]
    for name in ("envs.png", "env_DriveSeek-v0.png", "env_NoisySeek-v0.png", "env_ContinuousSeek-v0.png",
                 "env_BitFlipping-v0.png"):
        h, w = matplotlib.image.imread(tmp_path / "envs" / name).shape[:2]
        assert w >= 800 and h >= 400, (name, w, h)
    # every reference policy solves its task at least sometimes
    rows = [line for line in report.splitlines() if line.startswith("| ") and "-v0" in line]
    assert len(rows) == 4 and all(float(r.split("|")[3]) > 0.5 for r in rows)


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
    assert all(title.lower() in err for title, _ in demo.SECTIONS)  # lists the valid sections
    assert not out.exists()
    assert demo.main(["--out", str(out), "--only", " , "]) == 2 and not out.exists()


def test_cli_registers_sweep_commands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "sweep " in out and "sweep-report" in out
