"""Training the network: the settings, the data on the device, the loop, its
record, checkpoints and result.
"""
