"""Formats every tier reads, written and parsed in one place each; standard library only (it ships in the image)."""
