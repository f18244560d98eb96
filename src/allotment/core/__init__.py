"""Pure scheduling and policy decisions. Imports nothing from db, api or backends.

Its cycle's modules also run compiled (mypyc) when a build made from exactly these sources is present: see
allotment/compiled_core.py, which chooses at import; the sources are the reference either way."""
