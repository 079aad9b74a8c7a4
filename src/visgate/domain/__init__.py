"""The deployment record, its statuses and the one transition table, plus the error tree.

Imports nothing from the rest of the package: every other layer imports from here.
"""
