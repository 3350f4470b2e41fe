# One image for every connext service: the node, the deploy step, the chain (anvil from
# npm) and the web wallet (htmx and the Socket.IO client from npm, served from
# node_modules). Services differ only by their `connext ...` command.
# The base images are build arguments only so that the compose test can build this file on
# offline stand-ins (tests/compose/); people build it as it is.
ARG NODE_IMAGE=node:22-slim
ARG PYTHON_IMAGE=python:3.11-slim

# npm ci installs the lock file as committed (it covers every platform anvil ships for).
# anvil's platform packages want Node >= 20: the official node image pins it, whatever
# Debian the Python image is on.
FROM ${NODE_IMAGE} AS js
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM ${PYTHON_IMAGE}
WORKDIR /app
# anvil runs as its native binary from here (connext finds it), so no Node at run time
COPY --from=js /app/node_modules ./node_modules
# the dependencies first, on empty packages, so a change of the sources rebuilds from here on
COPY pyproject.toml README.md ./
RUN mkdir connext app && touch connext/__init__.py app/__init__.py \
    && pip install --no-cache-dir -e .
# editable: the wallet app finds templates/, static/ and node_modules/ beside app/
COPY connext ./connext
COPY app ./app
COPY templates ./templates
COPY static ./static

ENV CONNEXT_DATA_DIR=/data
VOLUME /data
ENTRYPOINT ["connext"]
