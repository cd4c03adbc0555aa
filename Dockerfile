# The hub and the mock government systems, one image; the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY adapters ./adapters
COPY schemas ./schemas
COPY mocks ./mocks
COPY routes ./routes
RUN pip install . && useradd --system --home /app hub && mkdir -p /app/var && chown hub /app/var
USER hub
EXPOSE 8080
CMD ["hub", "run"]
