"""The HTTP API: routes, thin endpoints, multipart parsing and the error table."""
