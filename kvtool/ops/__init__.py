"""Operations: one module per command's library function, usable from Python without the CLI."""
