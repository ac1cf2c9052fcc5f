from __future__ import annotations

from costmodel.evaluate import Options, Result, evaluate
from costmodel.spec.loader import validate_spec


def run_layers(layers: list[dict], input=(8, 8), in_channels: int = 3,
               options: Options = Options(), **model) -> Result:
    """Evaluate a throwaway spec made of ``layers``."""
    spec = validate_spec({"name": "t", "input": list(input), "in_channels": in_channels,
                          "layers": layers, **model}, "<test>")
    return evaluate(spec, options=options)


import pytest  # noqa: E402


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
    from costmodel.torch.verify import verify_model

    spec = validate_spec({"name": "t", "input": list(input), "in_channels": in_channels,
                          "layers": layers, **model}, "<test>")
    return verify_model(spec)
