"""``ttcalloc serve``: an OpenAI-compatible endpoint answering with a trained policy under a
fleet budget (a layer above the stages: it answers with ``run``'s own decision code).

- :mod:`~ttcalloc.serve.server`: :func:`serve`, uvicorn until SIGTERM
- :mod:`~ttcalloc.serve.options`: :class:`ServeOptions`
- :mod:`~ttcalloc.serve.served`: the policy, loaded and checked as ``run`` does
- :mod:`~ttcalloc.serve.app`: the routes (Starlette), the key check, errors
- :mod:`~ttcalloc.serve.wire`: the OpenAI wire format (the question, the reply, chunks)
- :mod:`~ttcalloc.serve.service`: the backend, the ledger and the windows of one server
- :mod:`~ttcalloc.serve.windows`: requests gathered into windows, each answered as one batch
- :mod:`~ttcalloc.serve.answering`: a window answered with ``run``'s drivers and votes
- :mod:`~ttcalloc.serve.pacer`: each window's budget, holding the fleet's mean cost at B
- :mod:`~ttcalloc.serve.ledger`: the fleet ledger in SQLite (survives restarts)
- :mod:`~ttcalloc.serve.metrics`: ``/metrics`` in the Prometheus text format
"""

from ttcalloc.serve.options import ServeOptions
from ttcalloc.serve.server import serve

__all__ = ["ServeOptions", "serve"]
