"""Pure computations on minewatch's canonical tables: no file paths, no Dash.

Modules are grouped by kind of operation: ``crs`` and ``periods`` (units and time),
``zonal`` and ``footprints`` (raster to numbers and shapes), ``overlay`` and ``inforce``
(licence geometry and law), ``flags`` (the discrepancy vocabulary), ``analysis`` (one
result object), ``export`` (serialisers to text; writing files is ``layers.results``).
"""
