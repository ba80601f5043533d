"""Operating a deployed stack (docs/operations.md): the smoke test and the dead-letter redrives."""
