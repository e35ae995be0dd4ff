"""Generated documentation: the README's table of every setting, read from the code."""
