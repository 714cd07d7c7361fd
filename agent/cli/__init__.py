"""``pdh``, the command line: :mod:`agent.cli.main` builds the parser from one module per
command family (``register`` functions that add subcommands, ``cmd_*`` handlers that
return an exit code); :mod:`agent.cli.support` is what they share. Nothing here is
imported by the rest of the agent."""
