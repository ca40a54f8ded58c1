"""Command-line interface: one small module per verb (`cnnlab <verb>`)."""
