"""The integrations function (template.yaml); a placeholder until its issue lands."""

from lifecycle.placeholder import not_implemented as lambda_handler

__all__ = ["lambda_handler"]
