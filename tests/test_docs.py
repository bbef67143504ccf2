"""Documentation that runs: every ```python / ```bash block of README.md and docs/*.md is executed.

Convention (COMMON rules, enforced here):
* Blocks of one file run in order, each in its own subprocess, from a scratch checkout: a temporary folder whose
  entries link to the repo's (``configs/``, ``rlcert/``, ``docs/``, ...) except ``runs/``, a fresh empty folder
  there. So a block's outputs under ``runs/`` never land in (or read from) the user's ``runs/``: the README's
  sweep command still trains after the docs test ran. ``python`` is this test's interpreter (``sys.executable``,
  first on PATH through a temporary bin folder, next to an ``rlcert`` wrapper), ``bash`` blocks run with
  ``bash -e``. The repo root is on PYTHONPATH.
* An HTML comment on the line just before the fence changes a block:
  ``<!-- doc-test: skip (reason) -->`` does not run it (the reason is required);
  ``<!-- doc-test: replace "old" "new" ["old2" "new2" ...] -->`` applies textual substitutions first (each ``old``
  must occur in the block, so a stale substitution fails loudly).
* Blocks may write only under ``runs/``: a path of the repo that a block adds to ``git status`` through the links
  (a new untracked file, a modified tracked file) fails the test. Editing the worktree while the test runs can
  trip this check too.
* Each file starts with an empty ``runs/``; ``runs/doc-test/`` inside it is the conventional place for replaced
  output paths (``replace "runs/x/" "runs/doc-test/x/"``).
* ```text (or any other tag) is never run.
One test per file; a failure shows the file, the block's line, the code as run and its output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if p.is_file()]
RUN_LANGS = ("python", "bash")
BLOCK_TIMEOUT_S = 600
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<lang>[\w+-]*)\s*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<body>.*?)\s*-->\s*$")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass
class Block:
    """One fenced code block: language, source, 1-based line of the opening fence, directive applied."""

    lang: str
    code: str
    line: int
    skip: str | None = None
    replacements: list[tuple[str, str]] = field(default_factory=list)


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def parse_directive(body: str, where: str) -> tuple[str | None, list[tuple[str, str]]]:
    """``skip (reason)`` -> (reason, []); ``replace "a" "b" ...`` -> (None, [(a, b), ...]); else ValueError."""
    if body.startswith("skip"):
        m = re.fullmatch(r"skip\s*\((?P<reason>.+)\)", body)
        if not m:
            raise ValueError(f"{where}: doc-test skip needs a reason: <!-- doc-test: skip (reason) -->")
        return m.group("reason"), []
    if body.startswith("replace"):
        rest = body[len("replace"):]
        parts = QUOTED.findall(rest)
        if not parts or len(parts) % 2 or QUOTED.sub("", rest).strip():
            raise ValueError(f'{where}: doc-test replace takes pairs of quoted strings: replace "old" "new" ...')
        vals = [_unescape(p) for p in parts]
        return None, list(zip(vals[::2], vals[1::2]))
    raise ValueError(f"{where}: unknown doc-test directive {body!r} (use skip (reason) or replace \"old\" \"new\")")


def parse_blocks(text: str, name: str = "<doc>") -> list[Block]:
    """All fenced blocks of a markdown text, with the directive of the line just before each fence."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group("lang"):
            i += 1
            continue
        indent, ticks, lang = m.group("indent"), m.group("ticks"), m.group("lang")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^{re.escape(indent)}{ticks}\s*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{name}:{start + 1}: unclosed ``` fence")
        i += 1
        block = Block(lang, "\n".join(body) + "\n", start + 1)
        prev = lines[start - 1] if start > 0 else ""
        d = DIRECTIVE.match(prev)
        if d:
            block.skip, block.replacements = parse_directive(d.group("body"), f"{name}:{start}")
        blocks.append(block)
    return blocks


def prepared_code(block: Block, name: str) -> str:
    """The block's code after its replacements (each ``old`` must be present)."""
    code = block.code
    for old, new in block.replacements:
        if old not in code:
            raise ValueError(f"{name}:{block.line}: doc-test replace {old!r} not found in the block")
        code = code.replace(old, new)
    return code


def bin_dir_with_python(tmp: Path) -> Path:
    """A folder with ``python`` and ``rlcert`` wrappers around sys.executable, to put first on PATH (wrappers, not
    symlinks: a venv's interpreter finds its ``pyvenv.cfg`` from the path it was started by)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, args in (("python", ""), ("python3", ""), ("rlcert", " -m rlcert.cli")):
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}"{args} "$@"\n')
        wrapper.chmod(0o755)
    return bin_dir


def scratch_checkout(tmp: Path) -> Path:
    """``tmp/checkout``: a link to every top-level entry of the repo but ``runs/`` (and ``.git``), and an empty
    ``runs/``; the doc blocks' working folder, so their ``runs/...`` outputs stay out of the user's ``runs/``."""
    work = tmp / "checkout"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("runs", ".git"):
            (work / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (work / "runs").mkdir()
    return work


def doc_environment(bin_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env.setdefault("MPLBACKEND", "Agg")
    env.pop("VIRTUAL_ENV", None)
    return env


def _outside_runs() -> set[str] | None:
    """Untracked (not ignored) and modified tracked paths outside runs/, or None without git."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, text=True,
                             capture_output=True, timeout=60, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    return {line[3:] for line in out.splitlines() if line[3:] and not line[3:].startswith("runs/")}


def _report(name: str, k: int, block: Block, code: str, proc: subprocess.CompletedProcess | None,
            note: str) -> str:
    numbered = "\n".join(f"  {j + 1:3d} | {line}" for j, line in enumerate(code.splitlines()))
    out = "" if proc is None else ((proc.stdout or "") + (proc.stderr or ""))
    tail = out[-6000:]
    return (f"\n{name}: block {k} (```{block.lang} at line {block.line}) {note}\n--- code as run ---\n{numbered}\n"
            f"--- output (last {len(tail)} characters) ---\n{tail}\n"
            "(mark a block that is not meant to run with <!-- doc-test: skip (reason) --> on the line before the "
            'fence, or shrink its budget with <!-- doc-test: replace "old" "new" -->)')


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_doc_blocks_run(doc: Path, tmp_path: Path) -> None:
    name = str(doc.relative_to(ROOT))
    blocks = [b for b in parse_blocks(doc.read_text(), name) if b.lang in RUN_LANGS]
    if not any(b.skip is None for b in blocks):
        pytest.skip(f"{name}: no runnable python/bash blocks")
    run_blocks(blocks, name, tmp_path)


def run_blocks(blocks: list[Block], name: str, tmp_path: Path) -> Path:
    """Run the python/bash blocks of one file in order in a fresh scratch checkout (returned); a failing block
    fails the calling test with the file, the line, the code as run and its output."""
    env = doc_environment(bin_dir_with_python(tmp_path))
    work = scratch_checkout(tmp_path)
    before = _outside_runs()
    for k, block in enumerate(blocks, 1):
        if block.skip is not None or block.lang not in RUN_LANGS:
            continue
        code = prepared_code(block, name)
        script = tmp_path / f"block{k}.{'py' if block.lang == 'python' else 'sh'}"
        script.write_text(code)
        cmd = [sys.executable, str(script)] if block.lang == "python" else ["bash", "-e", str(script)]
        try:
            proc = subprocess.run(cmd, cwd=work, env=env, text=True, capture_output=True, timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            partial = subprocess.CompletedProcess(cmd, -1, e.stdout or "", e.stderr or "")
            if isinstance(partial.stdout, bytes):
                partial = subprocess.CompletedProcess(cmd, -1, partial.stdout.decode(errors="replace"),
                                                      (partial.stderr or b"").decode(errors="replace"))
            pytest.fail(_report(name, k, block, code, partial, f"timed out after {BLOCK_TIMEOUT_S} s"),
                        pytrace=False)
        if proc.returncode != 0:
            pytest.fail(_report(name, k, block, code, proc, f"exited with status {proc.returncode}"), pytrace=False)
        if before is not None:
            new = sorted((_outside_runs() or set()) - before)
            if new:
                pytest.fail(_report(name, k, block, code, proc, f"wrote outside runs/: {new}"), pytrace=False)
    return work


# ---- the parser itself ------------------------------------------------------------------------------------------

SAMPLE = '''# t
<!-- doc-test: skip (setup) -->
```bash
bash scripts/setup.sh
```

<!-- doc-test: replace "--n 10000" "--n 50" "a \\"q\\"" "b" -->
```python
run("--n 10000", 'a "q"')
```

```text
not run
```
  ```bash
  echo indented
  ```
'''


def test_parse_blocks_and_directives():
    blocks = parse_blocks(SAMPLE, "sample.md")
    assert [(b.lang, b.line) for b in blocks] == [("bash", 3), ("python", 8), ("text", 12), ("bash", 15)]
    assert blocks[0].skip == "setup" and blocks[1].skip is None
    assert blocks[1].replacements == [("--n 10000", "--n 50"), ('a "q"', "b")]
    assert prepared_code(blocks[1], "sample.md") == 'run("--n 50", \'b\')\n'
    assert blocks[3].code == "echo indented\n"


@pytest.mark.parametrize("comment", ["<!-- doc-test: skip -->", '<!-- doc-test: replace "a" -->',
                                     "<!-- doc-test: frobnicate -->", '<!-- doc-test: replace "a" "b" junk -->'])
def test_bad_directives_are_errors(comment):
    with pytest.raises(ValueError, match="doc-test"):
        parse_blocks(f"{comment}\n```bash\necho hi\n```\n", "bad.md")


def test_stale_replacement_is_an_error():
    block = parse_blocks('<!-- doc-test: replace "absent" "x" -->\n```bash\necho hi\n```\n')[0]
    with pytest.raises(ValueError, match="not found"):
        prepared_code(block, "x.md")


def test_unclosed_fence_is_an_error():
    with pytest.raises(ValueError, match="unclosed"):
        parse_blocks("```python\nprint(1)\n")


def test_blocks_write_into_a_scratch_runs_folder_not_the_users(tmp_path):
    """A block's ``runs/...`` output lands in the scratch checkout, never in the repo's runs/ (where it would, e.g.,
    make the README's sweep command find its sweep finished and train nothing); repo files are still readable."""
    probe = f"doc-test-probe-{os.getpid()}"
    text = (f"```bash\nmkdir -p runs/{probe}\nhead -1 configs/sweeps/tiny.yaml > runs/{probe}/out.txt\n```\n\n"
            f"```python\nfrom pathlib import Path\nassert Path('runs/{probe}/out.txt').read_text()\n```\n")
    work = run_blocks(parse_blocks(text, "probe.md"), "probe.md", tmp_path)
    assert not (ROOT / "runs" / probe).exists()
    first = (ROOT / "configs" / "sweeps" / "tiny.yaml").read_text().splitlines()[0]
    assert (work / "runs" / probe / "out.txt").read_text() == first + "\n"
