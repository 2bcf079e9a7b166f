"""lgerisk: cardiac scar analysis of LGE MRI and sudden-cardiac-death risk prediction.

Research software, not a medical device.
"""

__version__ = "0.1.0"
