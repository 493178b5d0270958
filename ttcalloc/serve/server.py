"""``serve``: load the policy, then run the application under uvicorn until SIGTERM/SIGINT.

uvicorn stops accepting connections on SIGTERM, lets the requests in flight finish (at most
``grace`` seconds; those still running then fail with their connection closed), and the
application's shutdown answers what is gathered and closes the ledger.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import replace
from pathlib import Path

from ttcalloc.common.console import warn
from ttcalloc.common.errors import InputError, os_reason
from ttcalloc.common.redact import keep_secret
from ttcalloc.serve.ledger import FleetLedger
from ttcalloc.serve.options import ServeOptions
from ttcalloc.serve.served import load_served
from ttcalloc.serve.service import Service
from ttcalloc.stages.run.models import one_model_price, unpriced


def serve(policy_path: Path, options: ServeOptions) -> None:
    """Serve ``policy_path`` on ``options.sample.model`` until stopped.

    Raises:
        InputError: bad flags, a policy serve cannot run, a budget below its cheapest answer.
    """
    import uvicorn

    from ttcalloc.serve.app import build_app

    options.check()
    # a server scores a few questions at a time: one thread each (an OpenMP pool on a busy
    # machine costs more than the prediction); set before the policy's model is loaded
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    keep_secret(options.api_key)  # masked wherever anything would echo it
    served = load_served(
        Path(policy_path), options.budget, options.max_samples, options.budget_unit,
        options.models, options.sample.model, options.prices, options.sample.prompt_variants,
        options.run_programs,
    )  # fmt: skip
    # the policy's prompt variants, drawn in turn as `run` draws them (none: its one prompt)
    options = replace(options, sample=replace(options.sample, prompt_variants=served.variants))
    if served.plan is None:  # one model: a --price entry for it is its price, as for run
        unpriced(options.sample.model, options.prices)
        options = replace(options, sample=one_model_price(options.sample, options.prices))
    if options.public() and options.api_key is None:
        warn(f"--host {options.host}: reachable from other machines and no --api-key is set")
    _outside(Path(policy_path), options.ledger_dir())
    listening = bound(options.host, options.port)  # before the ledger: one line if in use
    try:
        ledger = FleetLedger(options.ledger_dir())  # held (and checked) before serving
    except BaseException:
        listening.close()
        raise
    config = uvicorn.Config(
        build_app(Service(served, options, ledger)),
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=options.shutdown_grace,  # type: ignore[arg-type]
        lifespan="on",
    )
    # uvicorn raises the signal it stopped on again once it has stopped: a clean stop
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[listening])


def _outside(policy: Path, state: Path) -> None:
    """Refuse a state directory that is the policy folder or inside it (the ledger is an
    output: it would travel with, or be removed with, the policy)."""
    where, folder = state.resolve(), policy.resolve()
    if where == folder or folder in where.parents:
        raise InputError(
            f"--state-dir {state}: inside the policy folder {policy}; give a folder outside it"
        )


def bound(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``SO_REUSEADDR`` as uvicorn sets it).

    Raises:
        InputError: the address is in use or cannot be bound (one line).
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise InputError(f"--host {host}: cannot listen ({os_reason(exc)})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InputError(f"--port {port}: cannot listen on {host} ({os_reason(exc)})") from None
    sock.set_inheritable(True)
    return sock
