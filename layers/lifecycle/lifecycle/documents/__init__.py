"""Documents rendered on request from the ledger: the receipt (PDF, and HTML for the browser)."""
