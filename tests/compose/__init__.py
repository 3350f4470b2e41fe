"""The compose test's machinery: a Docker engine to run on (tests/compose/engine.py) and
the offline stand-ins for the images docker-compose.yml pulls (tests/compose/images.py)."""
