"""Adoption: the package installs as itself, and CI adopts costmodel by copy-paste.

The examples are copied into a scratch git repository exactly as examples/README.md says
(budgets.yaml and its spec at the root, the pre-commit config at the root, the workflow in
.github/workflows/), and the hook's entry and the action's check step are run there as
pre-commit and GitHub Actions run them. With pre-commit installed, ``pre-commit try-repo``
against this checkout runs the real hook (it is not a dependency: that test skips without it).
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

import costmodel
import costmodel.api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SHELL_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


# --- the package ---------------------------------------------------------------------------

def test_the_distribution_name_is_costmodels_own_and_the_torch_extra_keeps_the_users_torch():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # `costmodel` on the public index is an unrelated project: pip must not be sent there.
    assert project["name"] == costmodel.DISTRIBUTION != "costmodel"
    assert project["scripts"] == {"costmodel": "costmodel.cli:main"}
    extras = project["optional-dependencies"]
    torch = [r for r in extras["torch"] if re.match(r"torch\b", r)]
    assert torch and not any("==" in r for r in torch), torch  # a range: the user's GPU torch stays
    # The exact CPU pin is the test suite's alone (the build on this project's machines' disk).
    assert "torch==2.13.0" in extras["test"]
    assert f"{costmodel.DISTRIBUTION}[torch,plots]" in extras["test"]


def test_py_typed_ships_in_the_package():
    assert (ROOT / "costmodel" / "py.typed").is_file()
    wheel = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'packages = ["costmodel"]' in wheel  # hatch ships every file of the package


def test_the_public_api_is_importable_from_costmodel_api_and_annotated():
    import pandas

    from costmodel.api import (CostModelError, Options, Result, compare,  # noqa: F401
                               compare_frame, evaluate_model, load)
    from costmodel.engine import Result as EngineResult
    from costmodel.errors import CostModelError as BaseError
    from costmodel.options import Options as OptionsClass

    assert (Options, Result, CostModelError) == (OptionsClass, EngineResult, BaseError)
    for name in costmodel.api.__all__:
        assert hasattr(costmodel.api, name), name
        fn = getattr(costmodel.api, name)
        if not inspect.isfunction(fn):
            continue
        hints = typing.get_type_hints(fn, localns={"pd": pandas})  # resolvable, every one
        missing = [p for p in inspect.signature(fn).parameters if p not in hints]
        assert not missing and "return" in hints, (name, missing)


# --- the manifests -------------------------------------------------------------------------

def test_the_pre_commit_hook_manifest():
    (hook,) = HOOKS
    assert {"id", "name", "entry", "language"} <= hook.keys()  # what pre-commit requires
    assert hook["id"] == "costmodel-check" and hook["language"] == "python"
    assert shlex.split(hook["entry"]) == ["costmodel", "check"]
    assert hook["pass_filenames"] is False
    assert hook["args"] == ["--budgets", "budgets.yaml"]
    files = re.compile(hook["files"])
    assert all(files.search(f) for f in ["budgets.yaml", "specs/net.yml", "out/x.json"])
    assert not any(files.search(f) for f in ["train.py", "README.md", "yaml.txt"])


def test_the_action_manifest_is_composite_and_its_steps_use_only_its_inputs():
    assert {"name", "description", "runs"} <= ACTION.keys()
    assert set(ACTION["inputs"]) == {"budgets", "python-version"}
    assert ACTION["inputs"]["budgets"]["default"] == "budgets.yaml"
    assert all("description" in i for i in ACTION["inputs"].values())
    assert ACTION["runs"]["using"] == "composite"
    steps = ACTION["runs"]["steps"]
    allowed = {f"inputs.{name}" for name in ACTION["inputs"]} | {"github.action_path"}
    used = set(EXPRESSION.findall(yaml.safe_dump(steps)))
    assert used <= allowed, used - allowed
    assert steps[0]["uses"].startswith("actions/setup-python@")
    assert steps[0]["with"]["python-version"] == "${{ inputs.python-version }}"
    for step in steps:
        if "run" not in step:
            continue
        assert step["shell"] == "bash"  # a composite run step must name its shell
        # Values come through the step's environment, never pasted into the script.
        assert "${{" not in step["run"], step["run"]
        env = step.get("env", {})
        assert set(SHELL_VARIABLE.findall(step["run"])) <= set(env), step["run"]
    install, check = (s for s in steps if "run" in s)
    assert "pip install" in install["run"]
    assert install["env"] == {"COSTMODEL_ACTION_PATH": "${{ github.action_path }}"}
    assert shlex.split(check["run"])[:3] == ["costmodel", "check", "--budgets"]


# --- the examples, copied into another repository --------------------------------------------

def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "commit.gpgsign=false", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """Another repository with the examples copied in as examples/README.md says."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "their-repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    for name in ["budgets.yaml", "tiny_net.yaml", ".pre-commit-config.yaml"]:
        shutil.copy(EXAMPLES / name, repo / name)
    shutil.copy(EXAMPLES / "github-actions" / "costmodel-budgets.yml",
                repo / ".github" / "workflows" / "costmodel-budgets.yml")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "budgets")
    return repo


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment where ``costmodel`` on PATH is this checkout's, as an install gives."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "costmodel"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m costmodel "$@"\n')
    shim.chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}"
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT),
                                                          environ.get("PYTHONPATH")]))
    return environ


def test_the_examples_name_every_placeholder_they_hold():
    workflow = (EXAMPLES / "github-actions" / "costmodel-budgets.yml").read_text()
    config = (EXAMPLES / ".pre-commit-config.yaml").read_text()
    (action_step,) = [s for s in yaml.safe_load(workflow)["jobs"]["budgets"]["steps"]
                      if "/costmodel@" in s.get("uses", "")]
    assert action_step["uses"] == "OWNER/costmodel@REV"
    assert "OWNER/costmodel" in workflow.split("\nname:")[0]  # explained above the YAML ...
    assert "REV " in workflow.split("\nname:")[0]
    (repo,) = yaml.safe_load(config)["repos"]
    assert (repo["repo"], repo["rev"]) == ("https://github.com/OWNER/costmodel", "REV")
    assert [h["id"] for h in repo["hooks"]] == [h["id"] for h in HOOKS]
    header = config.split("\nrepos:")[0]
    assert "https://github.com/OWNER/costmodel" in header and "REV" in header


def test_the_hook_passes_in_a_repository_set_up_as_documented(scratch, env):
    """pre-commit runs a ``language: python`` hook as entry + args from the repository root,
    once (pass_filenames: false), when a staged file matches ``files``."""
    (hook,) = HOOKS
    (configured,) = yaml.safe_load((scratch / ".pre-commit-config.yaml").read_text())["repos"]
    args = configured["hooks"][0].get("args", hook["args"])
    assert any(re.search(hook["files"], f) for f in _git(scratch, "ls-files").split())
    command = [*shlex.split(hook["entry"]), *args]
    res = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "all 10 limits met" in res.stdout

    # The same hook fails the commit once the network grows past its budget.
    budgets = scratch / "budgets.yaml"
    budgets.write_text(budgets.read_text().replace("flops: 25M", "flops: 1M"))
    res = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "over budget: tiny-net" in res.stderr


def test_the_actions_check_step_passes_as_the_example_workflow_calls_it(scratch, env, tmp_path):
    """The action's check step, with the inputs the copied workflow gives, run by bash from
    the repository root as a composite step runs (installing is left to the real action)."""
    workflow = yaml.safe_load(
        (scratch / ".github" / "workflows" / "costmodel-budgets.yml").read_text())
    (call,) = [s for s in workflow["jobs"]["budgets"]["steps"] if "/costmodel@" in s.get("uses", "")]
    inputs = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    inputs.update({k: str(v) for k, v in call.get("with", {}).items()})
    assert set(inputs) == set(ACTION["inputs"])  # the workflow passes nothing unknown

    def expand(value: str) -> str:
        def one(m: re.Match) -> str:
            ref = m.group(1)
            return str(ROOT) if ref == "github.action_path" else inputs[ref.split(".", 1)[1]]
        return EXPRESSION.sub(one, value)

    summary = tmp_path / "summary.md"
    (check,) = [s for s in ACTION["runs"]["steps"] if s.get("run", "").startswith("costmodel")]
    step_env = {**env, "GITHUB_STEP_SUMMARY": str(summary),
                **{k: expand(v) for k, v in check.get("env", {}).items()}}
    res = subprocess.run(["bash", "-e", "-c", check["run"]], cwd=scratch, env=step_env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "all 10 limits met" in res.stdout
    assert "| tiny-net" in summary.read_text()


def test_pre_commit_try_repo_runs_the_hook_from_this_checkout(scratch, tmp_path):
    """The real thing: pre-commit builds the hook's environment from this checkout (pip
    installs it, with its dependencies: a minute or more) and runs it on the scratch repo."""
    pytest.importorskip("pre_commit")
    if not (ROOT / ".git").exists():
        pytest.skip("this checkout is not a git repository")
    # No PYTHONPATH into the hook: it must run the costmodel pre-commit installed, not ours.
    environ = {k: v for k, v in os.environ.items()
               if k not in {"GITHUB_STEP_SUMMARY", "PYTHONPATH", "VIRTUAL_ENV"}}
    environ["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    res = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT),
                          "costmodel-check", "--all-files", "--verbose"], cwd=scratch,
                         env=environ, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"costmodel cost budgets\.+Passed", res.stdout), res.stdout
    assert "all 10 limits met" in res.stdout
