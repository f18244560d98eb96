"""Pure scheduling and policy decisions. Imports nothing from db, api or backends."""
