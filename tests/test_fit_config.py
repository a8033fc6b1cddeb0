"""One path for a fit's configuration: CLI, workflow and Python build the same FitConfig."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from disrnn.cli import build_parser, fit_config
from disrnn.fit.config import METHODS, POSTHOC_METHODS, TRAINED_METHODS, FitConfig

ROOT = Path(__file__).resolve().parents[1]


def _workflow_fit_config(method: str, options: dict) -> FitConfig:
    """workflow/scripts/fit.py's config of the rule params ``method``, ``options``."""
    spec = importlib.util.spec_from_file_location("wf_fit", ROOT / "workflow/scripts/fit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fit_config(SimpleNamespace(method=method, options=options))


@pytest.mark.parametrize("method", ["lrRNN", "DisRNN", "LINT", "DisRNN-full"])
def test_cli_workflow_and_python_build_the_same_config(method):
    argv = ["fit", "d.nc", "--method", method, "--out", "f", "--groups", "3,3"]
    argv += ["--lr", "0.005", "--init", "random", "--restarts", "2", "--pc-batch", "64"]
    argv += ["--schedule", "constant", "--epochs", "7"]
    from_cli = fit_config(build_parser().parse_args(argv))
    # the workflow's options dict: YAML lists, nulls for "the default"
    options = {"groups": [3, 3], "lr": 0.005, "init": "random", "restarts": 2}
    options |= {"pc_batch": 64, "schedule": "constant", "epochs": 7, "beta": None}
    from_workflow = _workflow_fit_config(method, options)
    from_python = FitConfig.from_options(method, options)
    kwargs = {"lr": 0.005, "init": "random", "restarts": 2, "pc_batch": 64}
    kwargs |= {"schedule": "constant", "epochs": 7}
    if METHODS[method].one_group:
        kwargs["rank"] = 6
    else:
        kwargs["groups"] = (3, 3)
    created = FitConfig.create(method, **kwargs)
    assert from_cli == from_workflow == from_python == created
    assert created.rank == 6 and created.lr == 0.005 and created.restarts == 2


def test_one_group_methods_take_the_sum_of_the_groups():
    assert FitConfig.from_options("lrRNN", {"groups": [3, 3]}).groups == (6,)
    assert FitConfig.from_options("DisRNN", {"groups": [2, 4]}).groups == (2, 4)
    assert FitConfig.from_options("DisRNN", {}) == FitConfig.create("DisRNN")
    with pytest.raises(ValueError, match="one latent group"):  # create itself is exact
        FitConfig.create("lrRNN", groups=(3, 3))


def test_cli_help_takes_defaults_and_methods_from_the_config():
    sub = build_parser()._subparsers._group_actions[0].choices["fit"]
    text = sub.format_help()
    assert f"AdamW learning rate (default {FitConfig.lr})" in " ".join(text.split())
    assert "--init" in text and "--restarts" in text and "--pc-batch" in text
    method = next(a for a in sub._actions if a.dest == "method")
    assert list(method.choices) == list(METHODS)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "d.nc", "--method", "FooRNN", "--out", "f"])


def test_registry_names_each_kind_of_method_once():
    assert set(POSTHOC_METHODS) | set(TRAINED_METHODS) == set(METHODS)
    assert not set(POSTHOC_METHODS) & set(TRAINED_METHODS)
    assert POSTHOC_METHODS == ("lrRNN+ICA", "LINT")


def test_config_registry_imports_without_torch():
    code = "import sys, disrnn.fit.config, disrnn.fit.tensors; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
