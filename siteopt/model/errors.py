"""Errors whose message is meant for the user, each with the exit status it maps to.

The command line (:mod:`siteopt.cli.group`) prints ``str(error)`` to standard error and exits
with ``error.exit_code``; anything else that escapes a command is an internal error
(exit 1, a request for a report, no traceback unless ``SITEOPT_DEBUG=1``).
Library code raises these; it never calls ``sys.exit``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["InfeasibleError", "InputError", "SiteoptError"]


class SiteoptError(Exception):
    """A failure explained to the user (not a bug): exit status 1."""

    exit_code = 1


class InputError(SiteoptError):
    """Bad input: a scenario that fails validation, a flag value out of range: exit 2."""

    exit_code = 2


class InfeasibleError(SiteoptError):
    """No build plan satisfies the constraints: exit 3.

    Parameters
    ----------
    message : str
        One line that says what cannot be done.
    conflicts : sequence of str
        The constraints that conflict, each a plain sentence, e.g. "contract
        hyperscaler-a needs 100 MW by 2027 but eligible sites can host 80 MW within
        the 2027 capital budget"; printed one per line under the message.
    """

    exit_code = 3

    def __init__(self, message: str, conflicts: Sequence[str] = ()) -> None:
        self.message = message
        self.conflicts = tuple(conflicts)
        lines = [message, *(f"  {c}" for c in self.conflicts)]
        super().__init__("\n".join(lines))
