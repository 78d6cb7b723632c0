"""Command line: ``cmverify verify | compare | train | proofs | reference`` (``cmverify -h``).

One module per subcommand (``_verify``, ``_compare``, ``_train``, ``_proofs``,
``_reference``); ``_main``
builds the parser, ``_tables`` formats the claims table, ``_load`` loads a user's model.

Every subcommand takes ``--threads N`` (default 1, see :mod:`cmverify._threads`); usage
errors are one line on stderr with exit status 2, Ctrl-C exits with status 130.
"""

from ._main import main

__all__ = ["main"]
