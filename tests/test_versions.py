import importlib.metadata

import pyproj
import rasterio

from layers.versions import software_versions


def test_versions_name_the_libraries_and_each_package_asked_for():
    versions = software_versions(("numpy", "no-such-package-minewatch-test"))
    assert versions["gdal"] == rasterio.__gdal_version__ and versions["proj"] == pyproj.proj_version_str
    assert versions["numpy"] == importlib.metadata.version("numpy")
    assert versions["minewatch"] == importlib.metadata.version("minewatch")
    assert versions["no-such-package-minewatch-test"] == "not installed"


def test_a_caller_changing_its_copy_changes_no_other_callers():
    versions = software_versions(("numpy",))
    versions["numpy"] = "edited"
    assert software_versions(("numpy",))["numpy"] == importlib.metadata.version("numpy")
