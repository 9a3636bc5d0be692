# The Mayak image: collector, stream worker and dashboards (one image, the command picks the role).
FROM node:20-bookworm-slim AS beacon
WORKDIR /src/producers/beacon
COPY producers/beacon/package.json producers/beacon/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY producers/beacon/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MAYAK_DATA_DIR=/var/lib/mayak
WORKDIR /app
COPY pyproject.toml ./
COPY mayak ./mayak
COPY contract ./contract
COPY producers ./producers
COPY stream_jobs ./stream_jobs
COPY warehouse ./warehouse
COPY anonymizer ./anonymizer
COPY dashboards ./dashboards
COPY bench ./bench
COPY --from=beacon /src/producers/beacon/dist ./producers/beacon/dist
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/mayak mayak \
    && mkdir -p /var/lib/mayak && chown mayak /var/lib/mayak
USER mayak
ENTRYPOINT ["mayak"]
CMD ["--help"]
