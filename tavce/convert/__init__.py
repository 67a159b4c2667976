"""Official checkpoint layouts -> tavce components.

This package is the only place that knows the original key names. One module per
official file family holds its rename table; ``common`` holds the machinery.
"""
