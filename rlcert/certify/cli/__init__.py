"""Command line: ``rlcert certify`` (certify.py), ``rlcert plot-certified`` (plot.py), data loaders, TSV."""
