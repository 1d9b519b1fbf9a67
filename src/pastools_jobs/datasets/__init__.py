"""Projects' datasets: records keyed per project, their JSON Schema and test suite."""
