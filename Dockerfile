# The image of `pastools api` and `pastools worker` for docker-compose.yml.
FROM python:3.11.7-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
RUN pip install --no-cache-dir . && useradd --create-home pastools
USER pastools
EXPOSE 8000
CMD ["pastools", "api"]
