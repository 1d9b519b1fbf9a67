# The image of `pastools api` and `pastools worker` for docker-compose.yml.
FROM python:3.11.7-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
# The data dir exists, and is the user's, before a named volume is mounted on it: Docker
# copies its ownership into a new volume (else root's, which the user cannot write).
RUN pip install --no-cache-dir . && useradd --create-home pastools \
    && install -d -o pastools -g pastools /var/lib/pastools
USER pastools
EXPOSE 8000
CMD ["pastools", "api"]
