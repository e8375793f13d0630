"""The SQL dialect of the CLI: a pure parser (``parser``) and its runner (``runner``)."""
