"""The services a hub installs beside its own work: each module's ``install(hub)`` adds
one to the hub's task group (:data:`agent.hub_app.DEFAULT_INSTALLERS` lists the servers
every agent runs): the data API, the dashboard, the ``--demo`` exporter and the toasts."""
