"""Notices about the workspace rather than the run: a training state resumed or discarded.

A stage's executed notebook is a hashed DVC output, so two runs that compute the same must
leave the same bytes in it, whether or not one of them was killed and resumed on the way
(README, "A killed run resumes"). Such a notice is printed with :data:`PREFIX`; the stage
runner (:func:`wing.stage.strip_volatile`) moves every line that carries it out of the
notebook's outputs and onto the stage's console (stderr), where ``dvc repro`` shows it. In a
plain Python session it is an ordinary printed line. Kept free of imports, so the stage
runner reads the prefix without loading torch.
"""

from __future__ import annotations

import sys

PREFIX = "[wing: workspace] "


def notice(message: str) -> None:
    """Print ``message`` as one line with :data:`PREFIX`, in one write (so a notebook's
    stream output holds it whole)."""
    sys.stdout.write(f"{PREFIX}{message}\n")
    sys.stdout.flush()
