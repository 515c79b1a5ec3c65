FROM alpine
RUN ["echo", "a b"]
CMD ["sh", "-c", "echo $HOME"]
ENTRYPOINT ["/bin/tini", "--"]
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
