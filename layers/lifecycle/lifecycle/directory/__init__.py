"""The user directory: the port the users use cases call, Cognito behind it, an in-memory fake."""
