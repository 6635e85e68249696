"""The core floor: ``Variable`` and the per-trace binding of values to variables, the autocast
scope of mixed precision, and the paths of weights in parameter pytrees. Imports nothing above
``kfunc.errors``, ``kfunc.naming``, ``kfunc.seeding`` and ``kfunc.initializers``."""
