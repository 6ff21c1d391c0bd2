"""Files and terminal output: atomic writes, YAML reading, text decoding, background I/O, progress bars."""
