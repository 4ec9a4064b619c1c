"""rxgate: pharmacy order validation against drug monographs."""


def package_version() -> str:
    """rxgate's version from the installed package's metadata ("unknown" when run from a
    source tree that was never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rxgate")
    except PackageNotFoundError:
        return "unknown"
