"""Data files of the corpus recipes, shipped inside the package.

``seqprop.recipes.timit`` holds the TIMIT phone list (the class order of
prepared TIMIT datasets), the Lee & Hon 61 -> 48 -> 39 phone folding and the
core test set speakers. The same files appear under ``datasets/timit/`` of the
source tree (as links) beside the recipe's README and ``run.sh``.
"""
