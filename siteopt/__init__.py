"""siteopt: which megawatts to keep hashing and which to convert to hosted AI."""

__version__ = "0.1.0"
