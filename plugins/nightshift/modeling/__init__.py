"""Modeling: the model's input, training sets and splits, LightGBM, the evaluation gate, the registry.

Scoring may import :mod:`~nightshift.modeling.inputs` and :mod:`~nightshift.modeling.registry`;
nothing below this stage imports it.
"""
