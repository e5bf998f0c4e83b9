"""Deprecated home of the demo's steps and gallery: :mod:`tfviz.cli.demo.tour` (the demo
runs tfviz commands, so it lives with the command line)."""
from .cli.demo.tour import *  # noqa: F401,F403
