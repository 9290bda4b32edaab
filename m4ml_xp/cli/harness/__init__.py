"""The comparison harness behind ``m4ml-xp bench``: m4ml_xp on each backend vs the reference tools.

It lives in the CLI package, not beside the asv suite: ``bench`` is a command of
the installed ``m4ml-xp`` (run on a GPU machine without a checkout), and the asv
suite (``benchmarks/``) reuses its data builders and reference implementations
from here, so each exists once.  :mod:`~m4ml_xp.cli.harness.common` holds the
targets, timing, PageRank and MLP sections; :mod:`~m4ml_xp.cli.harness.lsq` and
:mod:`~m4ml_xp.cli.harness.pca` the least-squares and PCA sections;
:mod:`~m4ml_xp.cli.harness.sections` runs one section or all of them.
"""
