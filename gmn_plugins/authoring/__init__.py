"""Tools for plugin authors: the conformance check of a modality (``conformance``) and the package scaffold of
``gmn-plugins new`` (``scaffold``).
"""
