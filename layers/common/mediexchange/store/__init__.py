"""DynamoDB: the PynamoDB models and the batched, retried, conditional writes over them."""
