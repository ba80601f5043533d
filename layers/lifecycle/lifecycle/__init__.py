"""The integration lifecycle and billing layer: rules, store, payments and the glue handlers use."""
