from __future__ import annotations

from costmodel.api import evaluate_layers, layers_spec
from costmodel.engine import Result
from costmodel.options import Options


def run_layers(layers: list[dict], input=(8, 8), in_channels: int = 3,
               options: Options = Options(), **model) -> Result:
    """Evaluate a throwaway spec made of ``layers`` (named ``t``; 3×8×8 unless told)."""
    return evaluate_layers(layers, input=input, in_channels=in_channels, name="t",
                           options=options, **model)


import pytest  # noqa: E402

_FOLDER_MARKS = {"crosscheck": "torch", "zoo": "zoo", "fuzz": "fuzz"}


def pytest_collection_modifyitems(items):
    """Tests are in folders by what they need: ``analytic/`` (the fast analytic tests),
    ``zoo/`` (every published network, to the integer), ``crosscheck/`` (torch and fvcore),
    ``fuzz/`` (property tests of the command line on random, mostly invalid input, a process
    per example). The folder's mark selects them: ``pytest -m "not torch and not fuzz"``."""
    for item in items:
        folder = item.path.parent.name
        if folder in _FOLDER_MARKS:
            item.add_marker(_FOLDER_MARKS[folder])


@pytest.fixture(autouse=True, scope="session")
def _spec_cache_in_a_temporary_folder(tmp_path_factory):
    """Tests never read or write the user's spec cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COSTMODEL_CACHE_DIR", str(tmp_path_factory.mktemp("spec-cache")))
    yield
    mp.undo()


def verify_layers(layers: list[dict], input=(8, 8), in_channels: int = 3, **model):
    """Build a throwaway spec made of ``layers`` in torch and verify it against fvcore
    (imports torch: only the verify tests call it)."""
    from costmodel.crosscheck.verify import verify_model

    return verify_model(layers_spec(layers, input=input, in_channels=in_channels, name="t",
                                    **model))


def fake_capture(monkeypatch, folder, source: str, import_module) -> None:
    """Stand a fake ``costmodel.capture`` in for the importer (its ``import_module`` is the
    test's; its YAML is plain safe_dump), write ``source`` as ``nets.py`` in ``folder``, work
    there, and start from an empty target cache: what the target tests of the commands and of
    building share."""
    import sys
    import types

    import yaml

    import costmodel.targets as targets

    (folder / "nets.py").write_text(source)
    fake = types.ModuleType("costmodel.capture")
    fake.import_module = import_module
    fake.to_yaml = lambda doc: yaml.safe_dump(doc, sort_keys=False)
    monkeypatch.setitem(sys.modules, "costmodel.capture", fake)
    monkeypatch.setattr(targets, "_LOADED", {})
    monkeypatch.chdir(folder)
