"""The conda environment and the pip metadata name the same dependencies; modules and
functions of the package stay within the house style's sizes."""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}
CONDA_ONLY = {"python", "pip"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in meta["dependencies"]}
    pip_names |= {_name(r) for r in meta["optional-dependencies"]["test"]}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda_names |= {_name(r) for r in dep["pip"]}
        else:
            conda_names.add(CONDA_TO_PIP.get(_name(dep), _name(dep)))
    conda_names -= CONDA_ONLY
    assert conda_names == pip_names, (
        f"only in environment.yml: {sorted(conda_names - pip_names)}; "
        f"only in pyproject.toml: {sorted(pip_names - conda_names)}"
    )
    assert "conda-forge" in env["channels"]


def test_console_script_is_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["scripts"]["disrnn"] == "disrnn.cli:main"


@pytest.mark.parametrize("module", ["disrnn", "disrnn.cli"])
def test_python_dash_m_runs_the_command(module):
    """``python -m disrnn`` (and ``-m disrnn.cli``) is the console script's parser."""
    from disrnn.cli import build_parser

    run = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    subcommands = build_parser()._subparsers._group_actions[0].choices
    assert set(subcommands) == {
        "simulate",
        "fetch",
        "bin",
        "fit",
        "select",
        "evaluate",
        "reference",
        "report",
    }
    assert all(name in run.stdout for name in subcommands)


# ------------------------------------------------------------------------------- sizes
#: the limits of the house style, stated once: lines of a module (the whole file) and of a
#: function or method (from its ``def`` or first decorator to its last line, docstring
#: included: what a reader scrolls through; nested functions count inside their parent)
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
#: the code the limits hold for: the package and the workflow's scripts
SIZED = ("disrnn", "workflow/scripts")
#: modules and functions still over a limit while their owners cut them (relative path,
#: or "path:function"); remove an entry when its cut lands
SIZE_EXCEPTIONS: set[str] = set()


def _function_lengths(path: Path) -> list[tuple[str, int, int]]:
    """(name, first line, lines) of every function and method in the Python file ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out.append((node.name, first, node.end_lineno - first + 1))
    return out


def oversized(root: Path = ROOT) -> list[str]:
    """Every module over MAX_MODULE_LINES and function over MAX_FUNCTION_LINES under
    SIZED, as "path: N lines" / "path:line name: N lines" (exceptions included)."""
    found = []
    for folder in SIZED:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            n = len(path.read_text().splitlines())
            if n > MAX_MODULE_LINES:
                found.append((rel, f"{rel}: {n} lines"))
            for name, first, length in _function_lengths(path):
                if length > MAX_FUNCTION_LINES:
                    found.append((f"{rel}:{name}", f"{rel}:{first} {name}: {length} lines"))
    return found


def test_modules_and_functions_stay_short():
    over = [text for key, text in oversized() if key not in SIZE_EXCEPTIONS]
    assert not over, (
        f"over the limits ({MAX_MODULE_LINES} lines a module, {MAX_FUNCTION_LINES} a "
        f"function): {over}; cut along the steps, or move a responsibility to its own module"
    )


def test_size_exceptions_are_still_needed():
    """An exception whose module or function is back under the limit must be removed."""
    keys = {key for key, _ in oversized()}
    assert SIZE_EXCEPTIONS <= keys, f"no longer over a limit: {sorted(SIZE_EXCEPTIONS - keys)}"


def test_size_check_sees_a_long_function_and_module(tmp_path):
    """The measure itself: a function at the limit passes; one a line over it (its
    decorator counted) is found at its decorator's line; so is a module a line over."""
    (tmp_path / "disrnn").mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1))
    src = f"def at_limit():\n{body}\n\n\n@staticmethod\ndef over():\n{body}\n"
    (tmp_path / "disrnn" / "m.py").write_text(src)
    (tmp_path / "disrnn" / "n.py").write_text("x = 1\n" * MAX_MODULE_LINES)
    (tmp_path / "disrnn" / "o.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    found = [text for _, text in oversized(tmp_path)]
    line = MAX_FUNCTION_LINES + 3  # after at_limit and two blank lines
    assert found == [
        f"disrnn/m.py:{line} over: {MAX_FUNCTION_LINES + 1} lines",
        f"disrnn/o.py: {MAX_MODULE_LINES + 1} lines",
    ]


if __name__ == "__main__":  # python tests/test_packaging.py: list what is over a limit
    for key, text in oversized():
        print(text, "(excepted)" if key in SIZE_EXCEPTIONS else "")
