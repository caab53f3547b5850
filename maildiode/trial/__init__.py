"""A pair on one machine: the folders, keys and configs ``maildiode init`` writes, a carrier
standing for the linkage product, and the agents run as processes.

Used by ``maildiode init``, ``maildiode carry`` and ``maildiode demo``, and by the end-to-end
tests and benchmarks, so all of them run exactly what an administrator runs. It imports the
agents' configuration (for the example files) and nothing of the command line.
"""
