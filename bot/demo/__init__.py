"""``brincr-bot demo``: the whole bot offline, the terminal standing in for Slack.

- :mod:`bot.demo.world`: the real Runtime with SQLite in a temporary directory, the
  Visma/Brincr stand-in and seeded customers (:class:`~bot.demo.world.Demo`).
- :mod:`bot.demo.slack`: the demo's Slack Web API; every message the bot sends is printed.
- :mod:`bot.demo.printer`: Block Kit as terminal text, buttons numbered for ``click <n>``.
- :mod:`bot.demo.user`: typed commands and clicks as signed Slack requests to the bot.
- :mod:`bot.demo.tour`: the scripted tour; :mod:`bot.demo.cli`: the command itself.
"""
