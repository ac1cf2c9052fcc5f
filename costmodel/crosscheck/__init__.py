"""The cross-check against real torch modules (``costmodel verify``).

``builder`` turns an evaluated spec into a ``torch.nn.Module``; ``verify`` runs fvcore and
PyTorch's flop counter on it and compares them with the analytic numbers; ``report`` turns a
verification into tables. Only ``builder`` and ``verify`` import torch and fvcore, and nothing
outside this package imports them: this ``__init__`` and ``report`` stay importable without
the ``torch`` extra.
"""

from costmodel import DISTRIBUTION

EXTRA_HINT = f'pip install "{DISTRIBUTION}[torch]"'
"""How to get what ``builder`` and ``verify`` need."""
