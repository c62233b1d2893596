"""Importers of public wound datasets into the canonical format (``wing.data.format``).

Each reads a dataset's own published layout from a folder the user points at (nothing is
downloaded or copied into the repository) and writes the canonical format into an empty
``out_dir``, returning the metadata it wrote:

- :func:`import_dfutissue`: DFUTissue tissue crops, wound masks from FUSeg or the tissue;
- :func:`import_fuseg`: FUSeg 2021 wound masks (no tissue labels);
- :func:`import_dfutissue_fuseg`: both, split by FUSeg source photograph;
- :func:`import_lutseg`: LUTSeg longitudinal tissue segmentation (patients and visits).
"""

from wing.data.importers.dfutissue import import_dfutissue, import_dfutissue_fuseg
from wing.data.importers.fuseg import duplicate_groups, import_fuseg, leakage_group
from wing.data.importers.lutseg import import_lutseg

__all__ = [
    "duplicate_groups",
    "import_dfutissue",
    "import_dfutissue_fuseg",
    "import_fuseg",
    "import_lutseg",
    "leakage_group",
]
