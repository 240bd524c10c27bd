# wsdev in a container: a slim Python, wsdev installed from this folder, an unprivileged user.
# docs/deploy.md ("A container") says how to build and run it.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml README.md /tmp/wsdev/
COPY src /tmp/wsdev/src
RUN pip install /tmp/wsdev && rm -rf /tmp/wsdev \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /app wsdev

USER wsdev
WORKDIR /app
EXPOSE 8080

# docker stop waits 10 s after its SIGTERM: the drain ends before that.
HEALTHCHECK --interval=30s --timeout=3s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/_wsdev/health', timeout=2)"]
ENTRYPOINT ["wsdev", "--address=0.0.0.0", "--port=8080", "--no-dashboard", "--no-reload", "--drain=8"]
CMD ["cat"]
