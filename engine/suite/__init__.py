"""The suite job kind: methods x seeds trained, evaluated and attacked, as one job of typed items."""
