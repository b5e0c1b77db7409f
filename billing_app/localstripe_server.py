"""Run the embedded Stripe emulator (localstripe) for test mode.

    python -m billing_app.localstripe_server [--port N] [--store PATH | --in-memory]

(defaults: `LOCALSTRIPE_PORT` and `<BILLING_DATA_DIR>/localstripe.pickle` from the settings)

Two differences from localstripe's own `localstripe` command:

* it listens on 127.0.0.1 only (the stock command binds every interface, which
  would expose a fake payment API, test cards included, to the network);
* its store lives in PATH instead of the fixed, machine-wide
  `/tmp/localstripe.pickle`, so two checkouts or a test run never share or
  clobber each other's data. `--in-memory` keeps nothing on disk.

localstripe saves the whole store on every single `store[key] = ...` and again
after each POST/PUT/DELETE request. Here the per-item saves are turned off and
the once-per-request save (its `save_store_middleware`) is kept, written
atomically, so a crash mid-write cannot leave a truncated pickle.

Webhook endpoints registered through `/_config/webhooks/{id}` are not part of
the store: whoever registers them must do so again after a restart.

Before serving, `billing_app.stripe.emulator.install()` adds the Stripe semantics
localstripe lacks (Prices, payment_behavior, prorations, idempotency keys, ...).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

from aiohttp import web
from localstripe import resources  # type: ignore[import-untyped]
from localstripe.server import app  # type: ignore[import-untyped]

from billing_app.stripe import emulator

HOST = "127.0.0.1"


def configure_store(path: Path | None) -> None:
    """Point localstripe's global store at `path`, or keep it only in memory."""
    store_cls = resources.Store
    # One save per mutating request (from localstripe's middleware) is enough.
    store_cls.__setitem__ = dict.__setitem__
    store_cls.__delitem__ = dict.__delitem__

    if path is None:
        store_cls.try_load_from_disk = lambda self: None
        store_cls.dump_to_disk = lambda self: None
        return

    def try_load_from_disk(self: resources.Store) -> None:
        try:
            with open(path, "rb") as handle:
                data = pickle.load(handle)
        except FileNotFoundError:
            return
        except (
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            ImportError,
            IndexError,
            TypeError,
            ValueError,
        ) as exc:  # unreadable (e.g. written by another localstripe version)
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            print(
                f"localstripe store {path} unreadable ({exc!r}); moved to {aside}", file=sys.stderr
            )
            return
        self.clear()
        self.update(data)

    def dump_to_disk(self: resources.Store) -> None:
        tmp = path.with_name(path.name + ".tmp")
        # 0600: even test-mode card data is nobody else's business.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(dict(self), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    store_cls.try_load_from_disk = try_load_from_disk
    store_cls.dump_to_disk = dump_to_disk


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", type=Path, help="pickle file keeping the emulator's data")
    where.add_argument("--in-memory", action="store_true", help="keep nothing on disk")
    args = parser.parse_args(argv)

    if args.port is None or not (args.store or args.in_memory):
        from billing_app.settings import get_settings

        settings = get_settings()
        if args.port is None:
            args.port = settings.localstripe_port
        if args.store is None:
            args.store = settings.localstripe_store

    store_path: Path | None = None
    if not args.in_memory:
        store_path = args.store.resolve()
        store_path.parent.mkdir(parents=True, exist_ok=True)
    emulator.install()
    configure_store(store_path)
    resources.store.try_load_from_disk()

    web.run_app(app, host=HOST, port=args.port, print=lambda msg: print(msg, flush=True))


if __name__ == "__main__":
    main()
