"""Read and validate user files into minewatch's canonical tables (I/O at the edge).

Only this package opens user files: ``concessions``, ``tables`` (production and national
totals), ``activity`` (rasters), and ``results`` (an analysis written to and read back
from an output folder). Everything it returns is plain tables, GeoDataFrames and
objects with no open file handles.
"""
