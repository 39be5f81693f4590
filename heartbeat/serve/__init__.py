"""Using the models: inference runners, export and conversion, reading a user's input, the CLI."""
