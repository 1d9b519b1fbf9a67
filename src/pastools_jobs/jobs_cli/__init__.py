"""`pastools jobs …`: the REST API from a terminal, for people (tables, progress bars) and
scripts (`--json`, exit codes).

`client` speaks HTTP, `views` types the answers the commands read, `render` draws them,
`commands` ties one to the other, and `parser` declares the flags.
"""
