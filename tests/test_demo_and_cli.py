import subprocess
import sys

from rlcert import cli, demo


def test_demo_environment_section_writes_report_and_frames(tmp_path):
    assert demo.main(["--quick", "--out", str(tmp_path), "--only", "environments"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Environments" in report and "ContinuousSeek-v0" in report
    for name in ("envs.png", "env_DriveSeek-v0.png", "env_NoisySeek-v0.png", "env_ContinuousSeek-v0.png"):
        assert (tmp_path / name).stat().st_size > 1000
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
