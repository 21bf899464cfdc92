"""The one exception type for bad input and failed preconditions.

``zhllama`` prints a ``UserError`` as one line (no traceback unless ``ZHLLAMA_DEBUG=1``) and exits 2, so its
message must name the file (and line) or the option, and say what to do.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a failed precondition the user can fix; the message is the whole report."""
