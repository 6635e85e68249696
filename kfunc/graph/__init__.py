"""The graph IR: symbolic tensors, nodes, ordering and the interpreter."""
