"""ttcalloc: decide how much test-time compute each input to a reasoning LLM deserves.

The library mirrors the CLI: :mod:`ttcalloc.stages` holds one module per command (load ->
compute -> write), over :mod:`ttcalloc.learn` (features, learners, policies),
:mod:`ttcalloc.backends` (LLM calls), :mod:`ttcalloc.artifacts` (schemas, atomic IO,
provenance), :mod:`ttcalloc.text` (grading, prompts) and :mod:`ttcalloc.core` (pure math on
arrays).  docs/architecture.md draws the layers.

Heavy dependencies are imported lazily so that ``import ttcalloc`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = ["__version__"]
