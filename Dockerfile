# One image for every connext service: the node, the deploy step, the chain (anvil from
# npm) and the web wallet (htmx and the Socket.IO client from npm, served from
# node_modules). Services differ only by their `connext ...` command.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY pyproject.toml README.md ./
COPY connext ./connext
COPY app ./app
COPY templates ./templates
COPY static ./static
# editable: the wallet app finds templates/, static/ and node_modules/ beside app/
RUN pip install --no-cache-dir -e .

ENV CONNEXT_DATA_DIR=/data \
    ANVIL_BIN=/app/node_modules/.bin/anvil
VOLUME /data
ENTRYPOINT ["connext"]
