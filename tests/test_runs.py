"""rlcert.runs: settings first and compared, append-only rows with a partial last line dropped, atomic writes,
the Ctrl-C / exit-code wrapper."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from rlcert.runs import (
    Rows,
    SettingsMismatch,
    atomic_path,
    deferred_interrupt,
    ensure_settings,
    run_command,
    settings_diff,
    write_json_atomic,
)


def test_settings_written_first_then_compared(tmp_path):
    path = tmp_path / "a" / "settings.json"
    s = {"sigma": 0.2, "n": 100, "model": "m.pt", "grid": (1, 2)}
    assert ensure_settings(path, s) is False
    assert json.loads(path.read_text()) == {"sigma": 0.2, "n": 100, "model": "m.pt", "grid": [1, 2]}
    assert ensure_settings(path, dict(s)) is True  # tuples compare as the lists they are stored as
    with pytest.raises(SettingsMismatch) as e:
        ensure_settings(path, {**s, "sigma": 0.9, "n": 5}, what="--out x.tsv")
    msg = str(e.value)
    assert "\n" not in msg and "--out x.tsv" in msg and "['n', 'sigma']" in msg and "0.2 -> 0.9" in msg
    assert json.loads(path.read_text())["sigma"] == 0.2  # nothing written on refusal
    with pytest.raises(SettingsMismatch, match="extra"):
        ensure_settings(path, {**s, "extra": 1})  # a key present on one side only differs


def test_settings_ignore_update_and_key(tmp_path):
    path = tmp_path / "s.json"
    ensure_settings(path, {"a": 1, "budget": 10})
    assert ensure_settings(path, {"a": 1, "budget": 20}, ignore=["budget"], update=True)
    assert json.loads(path.read_text())["budget"] == 20
    nested = tmp_path / "n.json"
    ensure_settings(nested, {"a": 1}, key="settings")
    write_json_atomic(nested, {**json.loads(nested.read_text()), "result": 3})
    assert ensure_settings(nested, {"a": 1}, key="settings")
    assert json.loads(nested.read_text()) == {"settings": {"a": 1}, "result": 3}
    with pytest.raises(SettingsMismatch):
        ensure_settings(nested, {"a": 2}, key="settings")
    assert settings_diff({"x": 1, "y": 2}, {"x": 1, "y": 3, "z": 0}, ignore=["z"]) == ["y"]


def test_corrupt_settings_is_one_line(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="s.json is not valid JSON"):
        ensure_settings(path, {"a": 1})


def test_rows_append_read_partial_line_and_keep(tmp_path):
    path = tmp_path / "eval.csv"
    rows = Rows(path, ["step", "value"])
    assert len(rows) == 0 and not path.exists()  # created with the first row, never header-less
    rows.append({"step": 0, "value": 0.5}, (10, "a,b"))
    assert path.read_text() == 'step,value\n0,0.5\n10,"a,b"\n'
    with open(path, "a") as f:
        f.write("20,0.7")  # a killed writer's partial line
    again = Rows(path, ["step", "value"])
    assert again.rows == [{"step": "0", "value": "0.5"}, {"step": "10", "value": "a,b"}]
    assert path.read_text().endswith('"a,b"\n')
    again.append([20, 0.75])
    assert again.keep(lambda r: int(r["step"]) <= 10) == 1
    assert Rows(path, ["step", "value"]).column("step") == ["0", "10"]
    with pytest.raises(ValueError, match="header 'step,other'"):
        Rows(path, ["step", "other"])
    with pytest.raises(ValueError, match="needs 2 values"):
        again.append([1])


def test_rows_tsv_and_partial_header(tmp_path):
    path = tmp_path / "o.tsv"
    path.write_text("idx\tla")  # killed while writing the header
    rows = Rows(path, ["idx", "label"], delimiter="\t")
    assert len(rows) == 0 and path.read_text() == ""
    rows.append([3, 1])
    assert path.read_text() == "idx\tlabel\n3\t1\n"


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
    (tmp_path / ".ckpt.x1y2.tmp.pt").write_text("left by a SIGKILL")
    (tmp_path / ".other.x1y2.tmp.pt").write_text("another file's temporary")
    with atomic_path(path) as tmp:
        assert tmp.suffix == ".pt" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.x1y2.tmp.pt", "ckpt.pt"]


def test_run_command_exit_codes(capsys):
    assert run_command("prog", lambda: None) == 0
    assert run_command("prog", lambda: 3) == 3

    def bad():
        raise ValueError("--x must be >= 1, got 0")

    def interrupted():
        raise KeyboardInterrupt

    assert run_command("prog", bad) == 2
    assert capsys.readouterr().err.strip() == "prog: error: --x must be >= 1, got 0"
    assert run_command("prog", interrupted, lambda: "3 rows kept") == 130
    assert capsys.readouterr().err.strip() == "prog: interrupted; 3 rows kept"


def test_deferred_interrupt_saves_then_stops():
    saved = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # (other tests may have installed their own)
    with deferred_interrupt() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # handled by the flag, not raised here
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.check(lambda: saved.append(1))
    assert saved == [1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_in_a_subprocess_is_one_line_exit_130(tmp_path):
    script = textwrap.dedent("""
        import sys, time
        from rlcert.runs import run_command
        def body():
            print("ready", flush=True)
            time.sleep(30)
        sys.exit(run_command("demo-cmd", body, "rerun to resume"))
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130
    assert err.strip() == "demo-cmd: interrupted; rerun to resume"


def test_results_without_settings_are_refused_and_yaml_format(tmp_path):
    import yaml

    from rlcert.runs import compare_settings

    path = tmp_path / "config.yaml"
    with pytest.raises(SettingsMismatch, match="no settings record config.yaml"):
        ensure_settings(path, {"a": 1}, have_results=True)
    assert not path.exists()
    read = lambda p: yaml.safe_load(p.read_text())  # noqa: E731
    ensure_settings(path, {"a": 1, "b": [1, 2]}, read=read, dump=yaml.safe_dump)
    assert yaml.safe_load(path.read_text()) == {"a": 1, "b": [1, 2]}
    assert compare_settings(path, {"a": 1, "b": [1, 2]}, read=read)
    with pytest.raises(SettingsMismatch, match=r"keys \['b'\]"):
        compare_settings(path, {"a": 1, "b": [1, 3]}, read=read)


def test_rows_create_writes_the_header_once(tmp_path):
    rows = Rows(tmp_path / "t.tsv", ["a", "b"], delimiter="\t")
    rows.create()
    rows.create()
    assert (tmp_path / "t.tsv").read_text() == "a\tb\n"
    rows.append([1, 2])
    rows.create()
    assert (tmp_path / "t.tsv").read_text() == "a\tb\n1\t2\n"


def test_readonly_rows_leave_a_table_being_written_alone(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("step,value\n0,1\n10,2")  # another process is writing the row of step 10
    view = Rows(path, ["step", "value"], readonly=True)
    assert view.column("step") == ["0"] and path.read_text().endswith("10,2")
    for write in (lambda: view.append([1, 2]), lambda: view.keep(lambda r: False), view.create):
        with pytest.raises(ValueError, match="read-only"):
            write()


def test_custom_diff_names_nested_values(tmp_path):
    path = tmp_path / "s.json"
    ensure_settings(path, {"method": "gaussian", "args": {"sigma": "0.5"}})
    flat = lambda old, new: sorted(k for k in old["args"] if old["args"][k] != new["args"].get(k))  # noqa: E731
    with pytest.raises(SettingsMismatch, match=r'keys \[\'sigma\'\]: sigma: "0.5" -> "0.25"'):
        ensure_settings(path, {"method": "gaussian", "args": {"sigma": "0.25"}}, diff=flat)
