"""wing: the WING-MTL compendium (multi-task wound and wound-tissue segmentation)."""

import sys

# MONAI imports every submodule at `import monai`, MONAI's bundle code imports jsonschema,
# and jsonschema then imports rfc3987-syntax (an optional IRI checker that jupyter's event
# schemas pull in) which compiles a Lark grammar: 1.4 s in every stage's kernel, for a format
# check nothing in wing uses. Marking the module absent makes jsonschema skip that checker
# (its `with suppress(ImportError)`); bench/stage_overhead.py measures the saving.
sys.modules.setdefault("rfc3987_syntax", None)
