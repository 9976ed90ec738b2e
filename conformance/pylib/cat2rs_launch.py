"""Which server process the conformance tests start.

`CAT2RS_BIN` chooses it:

* unset or empty: ``<repo>/target/debug/cat2rs``, run as ``cat2rs serve FLAGS``;
* ``reference``: the reference Python server of the installed caterva2 wheel,
  ``[sys.executable, "-mcaterva2.services.server", FLAGS]``;
* anything else: the path of a cat2rs binary, run as ``BIN serve FLAGS``.

Both take the same flags (``--conf``, ``--statedir``, ``--listen``, ``--loglevel``).
"""

import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "cat2rs"
REFERENCE = "reference"


def server_spec():
    """The raw `CAT2RS_BIN` choice: ``"reference"`` or an absolute binary path."""
    value = os.environ.get("CAT2RS_BIN", "").strip()
    if value == REFERENCE:
        return REFERENCE
    path = pathlib.Path(value) if value else DEFAULT_BIN
    return str(path.resolve()) if path.is_absolute() or os.sep in value else value


def server_prefix(spec=None):
    """The argv that precedes the server flags."""
    spec = server_spec() if spec is None else spec
    if spec == REFERENCE:
        return [sys.executable, "-mcaterva2.services.server"]
    return [spec, "serve"]


def describe(spec=None):
    spec = server_spec() if spec is None else spec
    return "reference Python server (caterva2.services.server)" if spec == REFERENCE else f"cat2rs ({spec})"


def check_available(spec=None):
    """Return None when the server can be started, else a reason."""
    spec = server_spec() if spec is None else spec
    if spec == REFERENCE:
        import importlib.util

        try:
            found = importlib.util.find_spec("caterva2.services.server") is not None
        except ImportError:
            found = False
        if not found:
            return f"the reference server (caterva2.services.server) is not installed for {sys.executable}"
        return None
    path = pathlib.Path(spec)
    if not path.is_file() or not os.access(path, os.X_OK):
        return f"no executable server binary at {spec} (build it with `cargo build`, or set CAT2RS_BIN)"
    return None
