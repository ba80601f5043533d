"""The local stack (shared/spec/local.md): DynamoDB Local, tables from template.yaml, and more."""
