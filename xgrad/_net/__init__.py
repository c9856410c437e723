"""The two-layer network: its building blocks, its pure forward and backward
pass, the network object, its file and its gradient checks.
"""
