"""The paper's experiments on a trained run: cross-modal density (IWAE, Fig. 3) and scene classification (Eq. 6,
Fig. 4). ``gmn-eval`` (cli/evaluate.py) runs them and writes JSON tables and PNG plots into ``RUN/eval/``. They
read a split's recordings as observations and render and score through the public API (``gmn_plugins.api``)."""
