"""Pure lifecycle rules: (state, action, clock) in, decision and effects out. No I/O here."""
