"""Use cases: each loads state through the store, asks the rules, charges, and commits once."""
