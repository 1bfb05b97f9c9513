"""Training a GMN from a spec: the experiment's model and dataset (``experiment``), the loop (``trainer``), its
validation, checkpoints, multi-process training and the run's figures.
"""
