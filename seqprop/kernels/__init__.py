"""Private numba kernels. Inputs are validated by the callers in seqprop.layers."""
