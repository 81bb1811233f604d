"""The notice's standards, pure: no I/O, no clock, imports only the shared package.

``model`` (the org tree), ``orgconfig`` (reading it from config.yaml),
``ruleparams``, ``facts`` (what a rule sees of a site), ``availability``
(opening maths), ``rules/`` (one module per rule), ``evaluate`` (verdicts,
roll-ups, procurement).
"""
