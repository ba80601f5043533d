"""The only boto3 DynamoDB code: keys, item mapping, conditional writes."""
