FROM alpine
RUN <<E"O"F
x
EOF
COPY <<'A'B /b
y
AB
