"""Infrastructure: the array libraries, argument checks, the host edge, files,
signals, threads. Nothing here knows about derivatives or networks.
"""
