"""Reports for people and programs: ``format`` (cells, numbers, grids, once),
``output`` (table, JSON, CSV dispatch), ``html`` (printable A4), ``i18n``
(zh default, en)."""
