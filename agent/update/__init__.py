"""Agent self-update (docs/updates.md).

In the agent: ``job`` decides, from the settings' ``update.version``,
whether to update, and runs the update in a child process
(``python -m agent.update``: ``fetch``, ``unpack`` and the new bundle's
``install.sh --update``), so its memory (signature library, tar) and any
crash stay out of the agent. ``files``: the small files the agent, the
installer and the launcher (deploy/linux/netroom-agent-launch) share.
"""
