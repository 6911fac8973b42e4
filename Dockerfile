# One image for billflow's processes (api, worker, sandbox); docker-compose picks the command.
FROM node:20-bookworm-slim
# Chromium renders invoice PDFs; without the fonts, text renders as boxes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-liberation fonts-dejavu-core ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY worker ./worker
COPY sandbox ./sandbox
COPY lib ./lib
COPY db ./db
COPY templates ./templates
ENV NODE_ENV=production CHROMIUM_PATH=/usr/bin/chromium
USER node
CMD ["node", "--import", "tsx", "api/main.ts"]
