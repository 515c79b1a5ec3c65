FROM alpine
RUN apt-get update \
# install curl
    && apt-get install -y curl \
    # trailing comment with backslash \
    && rm -rf /var/lib/apt/lists/*
