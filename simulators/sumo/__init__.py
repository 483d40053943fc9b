"""Everything SUMO: reading a network's traffic lights (``network``, the only sumolib user), the
closed loop (``loop``), co-simulation through the broker (``cosim``) and seeded evaluations
(``evaluation``). The signal cores stay free of SUMO: they see ``signals.model`` types only.
"""
