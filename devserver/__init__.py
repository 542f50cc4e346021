"""`make run` without Docker: the template's routes served through the real handlers, on moto."""
