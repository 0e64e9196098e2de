"""Persona vectors: trait directions in the residual stream, to measure, predict and steer drift.

Layer indices follow the ``hidden_states`` convention of the engine: 0 is the embedding output,
L (1..n_layers) the raw output of decoder block L-1, for L = n_layers too (before the final norm;
see ``models.base.LAYER_CONVENTION``).
"""
