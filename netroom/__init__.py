"""netroom's shared contract, imported by the agent and the collector alike.

Only the standard library, paho-mqtt and PyYAML may be imported here, so the
agent (on every PC) pays for nothing the collector needs.

- ``protocol``: the wire contract (topics, kinds, fields, limits, fit());
- ``schema``: measurement, tag and field names, time constants, ids, windows;
- ``mqtt``: the one paho wrapper (config, client, TLS, session);
- ``settings``: typed reading of config.yaml sections with one-line errors;
- ``agentsettings``: what an agent runs beyond identity and broker, and its reader;
- ``central``: the settings document the collector publishes to each site's agents;
- ``ratelimit``: rate-limited logging;
- ``durable``: files written whole or not at all, renames made durable;
- ``release``: agent releases' signed manifest and key text (docs/updates.md);
- ``signing``: their Ed25519 signatures; the one module importing a third
  library (python-ecdsa, 4.5 MB), so only the agent's update process and
  ``netroom release`` import it.
"""

__version__ = "0.1.0"
