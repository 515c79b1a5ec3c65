FROM alpine
RUN ["cat", "<<EOF"]
COPY ["<<EOF", "/x"]
EOF
