"""One thin module per trigger: parse the event, call the domain in ``shared``, return."""
