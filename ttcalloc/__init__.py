"""ttcalloc: decide how much test-time compute each input to a reasoning LLM deserves.

The public library API mirrors the CLI, one module per stage:

- :mod:`ttcalloc.data` builds problems tables (``ttcalloc data``),
- :mod:`ttcalloc.importer` brings existing samples in (``ttcalloc import``),
- :mod:`ttcalloc.grading` grades answers (numeric and math-verify),
- :mod:`ttcalloc.schemas` and :mod:`ttcalloc.io` own the artifact contracts.

Heavy dependencies are imported lazily so that ``import ttcalloc`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
