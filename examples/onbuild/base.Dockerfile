# syntax=docker/dockerfile:1
# onbuild base: an image whose ONBUILD triggers run in every build FROM it (not in this one).
#   pybuild -t onbuild-base -f examples/onbuild/base.Dockerfile examples/onbuild
FROM busybox:latest
WORKDIR /app
RUN echo "base image, no app yet" > /app/README
# copy the child build's app/ directory and stamp it; triggers run right after the child's FROM
ONBUILD COPY app/ /app/
ONBUILD RUN echo "app $(cat /app/VERSION) built on onbuild-base" > /app/build-info.txt
ONBUILD LABEL org.opencontainers.image.base.name="onbuild-base"
CMD ["sh", "/app/run.sh"]
