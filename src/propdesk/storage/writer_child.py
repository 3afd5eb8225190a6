"""Entry point of the journal's writer subprocess: ``python -m propdesk.storage.writer_child IN_FD OUT_FD`` (see
:mod:`propdesk.storage.writer`; a module of its own so ``-m`` does not run a module the package already imported)."""

from __future__ import annotations

import sys

from propdesk.storage.writer import child_main

if __name__ == "__main__":
    raise SystemExit(child_main(sys.argv))
