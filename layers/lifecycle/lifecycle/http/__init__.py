"""The HTTP edge shared by every API function: caller, problems, models, the handler wrapper."""
