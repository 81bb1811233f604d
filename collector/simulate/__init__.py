"""``netroom simulate``: a made-up fleet of agents, for demos, dashboards and benchmarks.

- ``fleet``: pure; the fleet (sites, headcounts, PCs) shaped so that each site
  passes every rule or fails chosen ones, deterministic from a seed, and its
  ``sites:`` tree for config.yaml;
- ``messages``: pure; what each PC sends at a given time, built and checked
  with netroom.protocol, and a lazy history of the whole fleet between two times;
- ``publisher``: many MQTT connections from one process, one thread, QoS 1.

Imports only the shared package and the rules' names (collector.compliance).
docs/simulate.md says how to use it.
"""
