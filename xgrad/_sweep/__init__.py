"""Sweeps: grids of training runs, in this process or on Dask."""
