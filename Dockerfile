# vpipe on CPU, offline: the YOLO11 weights are in the image (models/), nothing is downloaded at run
# time. Data (the cameras list, the config, the run folders, the store, the export cache) lives in the
# /data volume. See docs/deploy.md.
#
#   docker build -t vpipe .
#   docker run -d --name vpipe --restart unless-stopped -v /srv/vpipe:/data -p 127.0.0.1:8080:8080 vpipe
FROM python:3.11-slim

# OpenCV's libraries (opencv-python links libGL and glib).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 YOLO_OFFLINE=1 XDG_CACHE_HOME=/data/.cache
WORKDIR /opt/vpipe

# PyTorch's CPU wheels first (the default index would bring the CUDA ones, gigabytes more).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch torchvision
COPY pyproject.toml README.md ./
COPY pipeline/ pipeline/
RUN pip install '.[postgres]'
COPY models/ models/
COPY configs/ configs/

RUN useradd --system --uid 10001 --home-dir /data vpipe && mkdir -p /data && chown vpipe:vpipe /data
USER vpipe
VOLUME /data
EXPOSE 8080

# /health answers 503 once a camera has sent no frame for 10 s.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]

# Inside the container the page listens on every interface of the container's own network; publish it
# on the host's loopback (-p 127.0.0.1:8080:8080) unless the network is trusted.
ENTRYPOINT ["vpipe"]
CMD ["run", "/data/cameras.streams", "--config", "/data/config.yaml", "--output", "/data/runs", \
     "--serve", "8080", "--host", "0.0.0.0", "--rotate", "1h", "--quiet"]
