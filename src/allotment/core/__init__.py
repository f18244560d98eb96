"""Pure scheduling and policy decisions. Imports nothing from db, api or backends."""

import os as _os

if _os.environ.get("ALLOTMENT_CORE_EXT"):  # the compiled build of these modules, if it matches them (compiled.py)
    from allotment.core.compiled import activate as _activate

    _activate(__path__, _os.environ["ALLOTMENT_CORE_EXT"])
