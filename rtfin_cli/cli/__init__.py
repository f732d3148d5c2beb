"""Typer apps only: parse options, call a stage package, render with rich. No logic here."""
