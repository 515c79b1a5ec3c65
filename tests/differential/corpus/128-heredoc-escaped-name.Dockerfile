FROM alpine
RUN <<E\OF
x
EOF
RUN <<\EOG
y
EOG
