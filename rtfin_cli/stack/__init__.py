"""The local dev stack on top of the stage packages and the local servers (``rtfin local up|down|status``).

- ``plan``: which stages run, in what order, through which ``rtfin`` command;
- ``supervise``: ``Stack`` starts them with health checks, stops them, reports their state;
- ``watch`` / ``refresh``: the watchdog and the dbt refresher, run as hidden ``rtfin local`` commands;
- ``state``: what is remembered per stage between commands.

Nothing below this package imports it.
"""
