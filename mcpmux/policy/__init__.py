"""Policy decisions: pure functions from (rules, tool, host, arguments) to a decision naming its rule."""
