"""The bottom floor of file handling: the atomic writer and the strict readers. Imports nothing
from kfunc but ``kfunc.errors``; every reader takes the error class its caller raises."""
