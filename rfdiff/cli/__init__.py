"""Stage 6, the ``rfdiff`` command line (entry point :func:`rfdiff.cli.main`)."""

from .main import build_parser as build_parser, main as main
