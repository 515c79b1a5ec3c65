FROM alpine
RUN <<EOF
echo hello
echo world
EOF
RUN echo after
