"""The figures: what they show, computed, and drawn with matplotlib."""
