# One image for every connext service: the node, the deploy step, the chain (anvil from
# npm) and, later, the web wallet. Services differ only by their `connext ...` command.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY pyproject.toml README.md ./
COPY connext ./connext
RUN pip install --no-cache-dir .

ENV CONNEXT_DATA_DIR=/data \
    ANVIL_BIN=/app/node_modules/.bin/anvil
VOLUME /data
ENTRYPOINT ["connext"]
