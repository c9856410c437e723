"""Numerical differentiation and gradient descent, on the array API only (no
NumPy).
"""
