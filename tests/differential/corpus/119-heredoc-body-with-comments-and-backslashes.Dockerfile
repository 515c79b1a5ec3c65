FROM alpine
RUN <<EOF
# this is not a Dockerfile comment
echo a \
  b
   # indented
EOF
