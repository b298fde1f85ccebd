"""Tournament results as plain data read from the store, for the CLI (and later the API) to render."""
