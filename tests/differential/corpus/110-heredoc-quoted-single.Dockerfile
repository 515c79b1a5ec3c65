FROM alpine
RUN <<'EOF'
echo $HOME
EOF
