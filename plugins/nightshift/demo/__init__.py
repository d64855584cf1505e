"""The demo: deterministic data generators and the ``make demo`` driver.

Not part of the production package's import path: no module outside ``nightshift.demo`` imports it,
and production images leave it out.
"""
