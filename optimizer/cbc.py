"""PuLP's CBC command with its process in reach, so that Ctrl-C can end it.

PuLP's ``COIN_CMD`` starts CBC and waits for it inside one method, so nothing outside
can stop it; run from :func:`.interrupt.call_interruptibly`, the CLI would exit on
Ctrl-C and leave CBC running until its time limit. :class:`StoppableCbc` keeps the
process and kills it on :meth:`~StoppableCbc.stop`.
"""

from __future__ import annotations

import os
import subprocess
import threading

import pulp


class StoppableCbc(pulp.COIN_CMD):
    """PuLP's CBC command, with the CBC process in reach so that an interrupt can end it.

    ``solve_CBC`` is PuLP's own, cut to the options used here (an MPS file, no MIP
    start), except that the process is kept and :meth:`stop` kills it.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._stopped = False

    def stop(self) -> None:
        """Kill CBC (from another thread); the solve then raises PulpSolverError."""
        with self._lock:
            self._stopped = True
            if self._process is not None and self._process.poll() is None:
                self._process.kill()

    def solve_CBC(self, lp, use_mps=True):
        mps, sol = self.create_tmp_files(lp.name, "mps", "sol")
        variables, var_names, con_names, _ = lp.writeMPS(mps, rename=1)
        args = [self.path, mps, *(["-max"] if lp.sense == pulp.LpMaximize else [])]
        if self.timeLimit is not None:
            args += ["-sec", str(self.timeLimit)]
        for option in self.options + self.getOptions():
            args += f"-{option}".split()
        args += ["-solve", "-printingOptions", "all", "-solution", sol]
        with open(self.optionsDict["logPath"], "w") as log:
            with self._lock:
                if self._stopped:
                    raise pulp.PulpSolverError("CBC was stopped before it started")
                self._process = subprocess.Popen(
                    args, stdout=log, stderr=log, stdin=subprocess.DEVNULL
                )
            code = self._process.wait()
        if code != 0 or not os.path.exists(sol):
            raise pulp.PulpSolverError(f"CBC stopped with exit status {code}")
        status, values, reduced, duals, slacks, sol_status = self.readsol_MPS(
            sol, lp, variables, var_names, con_names
        )
        lp.assignVarsVals(values)
        lp.assignVarsDj(reduced)
        lp.assignConsPi(duals)
        lp.assignConsSlack(slacks, activity=True)
        lp.assignStatus(status, sol_status)
        self.delete_tmp_files(mps, sol)
        return status
